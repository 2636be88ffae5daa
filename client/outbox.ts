// The outbox: what was written and the server has not confirmed yet. Each message gets a client
// id when it is written, is kept in the storage given (per room; a reload keeps it), and is sent
// by itself, in order, whenever the room is live, over whatever way it has then. A resend
// carries the same client id, so the server answers it with the first event: nothing is posted twice.
import { Emitter } from './emitter.js'
import type { Link } from './link.js'
import type { StorageLike } from './net.js'
import { newClientId, type ChatEvent } from './protocol.js'

export interface OutboxEntry {
  clientId: string
  text: string
  /** A reply: the message it answers, and whether a thread's reply also shows in the room. */
  replyTo?: number
  alsoToRoom?: true
  /** When it was written (ms since the epoch). */
  at: number
  /** Refused for good: why (it waits for retry() or discard()). */
  failed?: string
}

/** What makes a message a reply: the message it answers; `alsoToRoom` shows a thread's reply in the room too. */
export interface ReplyTo {
  replyTo?: number
  alsoToRoom?: boolean
}

/**
 * Where an entry stands: `queued` (live: it goes next), `held` (sent once reconnected),
 * `sending`, `slow` (over the rate limit: it goes by itself at `until`), `failed` (refused: see
 * `message`).
 */
export interface EntryStatus {
  state: 'queued' | 'held' | 'sending' | 'slow' | 'failed'
  message?: string
  until?: number
}

/** A message the server committed: its id (for a resend, the first event's). */
export interface Sent {
  id: number
  clientId: string
  text: string
  /** It had been posted before (this was a resend): nothing new was posted. */
  duplicate: boolean
}

export interface OutboxEvents {
  /** A new entry (written here, or by another page with the same storage). */
  add: [entry: OutboxEntry]
  /** An entry's state changed. */
  update: [entry: OutboxEntry, status: EntryStatus]
  /** The server has it, as event `id`: out of the outbox. */
  sent: [entry: OutboxEntry, id: number]
  /** Discarded (here or by another page): out of the outbox, not sent. */
  drop: [clientId: string]
}

/** Why a send did not go: refused for good (`status` the HTTP status), discarded, or the client closed. */
export class ChatError extends Error {
  constructor(
    readonly kind: 'refused' | 'discarded' | 'closed' | 'signedOut' | 'unreachable' | 'conflict',
    message: string,
    readonly status?: number,
  ) {
    super(message)
    this.name = 'ChatError'
  }
}

/** How long a transient failure (503, a dropped request) waits before the next try, growing to 10 s. */
const transientWait = (n: number) => Math.min(10_000, 1000 * 2 ** n)

export interface OutboxOwner {
  /** The live link sends go through now, or null. */
  current(): Link | null
  signedOut(): void
}

export class Outbox extends Emitter<OutboxEvents> {
  private list: OutboxEntry[]
  private readonly promises = new Map<string, { resolve: (sent: Sent) => void; reject: (error: ChatError) => void }>()
  private running = false
  private timer: ReturnType<typeof setTimeout> | undefined
  private transientFailures = 0
  private live = false
  private closed = false
  private sending: OutboxEntry | null = null
  /** Sending again after a 429: not before this time; the entry that waits, and the server's words. */
  private notBefore = 0
  private slow: { clientId: string; message: string } | null = null

  constructor(
    private readonly owner: OutboxOwner,
    private readonly storage: StorageLike | undefined,
    /** The storage key of this room's outbox. */
    readonly key: string,
  ) {
    super()
    this.list = this.load()
  }

  /** What waits, in order (refused ones included). */
  get entries(): readonly OutboxEntry[] {
    return this.list
  }

  /** How many wait to be sent (refused ones not counted). */
  get pending(): number {
    return this.list.filter((e) => !e.failed).length
  }

  private load(): OutboxEntry[] {
    try {
      const saved: unknown = JSON.parse(this.storage?.getItem(this.key) ?? '[]')
      return Array.isArray(saved) ? saved.filter((e): e is OutboxEntry => typeof e?.clientId === 'string' && typeof e.text === 'string') : []
    } catch {
      return []
    }
  }

  private save(): void {
    try {
      if (this.list.length === 0) this.storage?.removeItem(this.key)
      else this.storage?.setItem(this.key, JSON.stringify(this.list))
    } catch {
      // Storage full or refused: the outbox still works while this client runs.
    }
  }

  /** Another page with the same storage sent (or discarded) some: follow it. */
  sync(): void {
    const saved = this.load()
    const ids = new Set(saved.map((e) => e.clientId))
    for (const entry of this.list) {
      if (ids.has(entry.clientId)) continue
      this.promises.get(entry.clientId)?.reject(new ChatError('discarded', 'Taken out of the outbox elsewhere.'))
      this.promises.delete(entry.clientId)
      this.emit('drop', entry.clientId)
    }
    const known = new Map(this.list.map((e) => [e.clientId, e]))
    this.list = saved.map((e) => known.get(e.clientId) ?? e)
    for (const entry of this.list) {
      if (!known.has(entry.clientId)) this.emit('add', entry)
      else this.update(entry)
    }
    void this.pump()
  }

  /** A message written: into the outbox, sent as soon as possible. */
  add(text: string, reply?: ReplyTo): OutboxEntry {
    return this.enqueue(text, undefined, reply)
  }

  /** add(), and the promise of what the server answers: resolved once committed, rejected when refused for good. */
  send(text: string, reply?: ReplyTo): Promise<Sent> {
    return new Promise((resolve, reject) => {
      if (this.closed) reject(new ChatError('closed', 'The client is closed.'))
      else this.enqueue(text, { resolve, reject }, reply)
    })
  }

  private enqueue(text: string, promise?: { resolve: (sent: Sent) => void; reject: (error: ChatError) => void }, reply?: ReplyTo): OutboxEntry {
    const entry: OutboxEntry = { clientId: newClientId(), text, at: Date.now() }
    if (reply?.replyTo !== undefined) entry.replyTo = reply.replyTo
    if (reply?.replyTo !== undefined && reply.alsoToRoom) entry.alsoToRoom = true
    if (promise) this.promises.set(entry.clientId, promise)
    this.list.push(entry)
    this.save()
    this.emit('add', entry)
    this.update(entry)
    void this.pump()
    return entry
  }

  status(entry: OutboxEntry): EntryStatus {
    if (entry.failed !== undefined) return { state: 'failed', message: entry.failed }
    if (entry === this.sending) return { state: 'sending' }
    if (this.slow?.clientId === entry.clientId && this.notBefore > Date.now()) return { state: 'slow', message: this.slow.message, until: this.notBefore }
    return { state: this.live ? 'queued' : 'held' }
  }

  private update(entry: OutboxEntry): void {
    this.emit('update', entry, this.status(entry))
  }

  /** The room is live (or not): sending starts (or waits). */
  setLive(live: boolean): void {
    this.live = live
    for (const entry of this.list) this.update(entry)
    if (live) {
      this.transientFailures = 0
      void this.pump()
    }
  }

  /** Sends what waits, one at a time, in order; stops at the first that cannot go now. */
  async pump(): Promise<void> {
    if (this.running || this.closed) return
    this.running = true
    clearTimeout(this.timer)
    this.timer = undefined
    try {
      for (;;) {
        const entry = this.list.find((e) => e.failed === undefined)
        if (!entry) return
        const wait = this.notBefore - Date.now()
        if (wait > 0) return this.later(wait)
        const link = this.owner.current()
        if (!link) return
        this.sending = entry
        this.update(entry)
        const result = await link.send(entry)
        this.sending = null
        if (this.closed) return
        if (!this.list.includes(entry)) continue
        if (result.kind === 'ok') {
          this.transientFailures = 0
          this.confirm(entry.clientId, result.id, result.duplicate)
        } else if (result.kind === 'signedOut') {
          this.update(entry)
          return this.owner.signedOut()
        } else if (result.kind === 'slow') {
          // Too many too fast: this one goes first again once the limit allows.
          this.notBefore = Date.now() + result.retryAfter * 1000
          this.slow = { clientId: entry.clientId, message: result.message }
          this.update(entry)
        } else if (result.kind === 'refused') {
          entry.failed = result.message
          this.save()
          this.update(entry)
          this.promises.get(entry.clientId)?.reject(new ChatError('refused', result.message, result.status))
          this.promises.delete(entry.clientId)
        } else {
          // The server could not take it now (503, a dropped connection): again shortly, or when live again.
          this.update(entry)
          return this.later(transientWait(this.transientFailures++))
        }
      }
    } finally {
      this.running = false
    }
  }

  private later(ms: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => void this.pump(), ms)
  }

  /** The server has it (an ack, 201 or 200, or its client id seen in the stream): out of the outbox. */
  confirm(clientId: string, id: number, duplicate = false): void {
    const i = this.list.findIndex((e) => e.clientId === clientId)
    if (i < 0) return
    const [entry] = this.list.splice(i, 1) as [OutboxEntry]
    this.save()
    if (this.slow?.clientId === clientId) this.slow = null
    this.emit('sent', entry, id)
    this.promises.get(clientId)?.resolve({ id, clientId, text: entry.text, duplicate })
    this.promises.delete(clientId)
  }

  /** Events that arrived: one of ours (by its client id) is confirmed by it. */
  seen(events: readonly ChatEvent[]): void {
    for (const event of events) if (event.type === 'message' && typeof event.clientId === 'string') this.confirm(event.clientId, event.id)
  }

  /** A refused entry, sent again: last in line (what was written after it may have gone already). */
  retry(clientId: string): void {
    const i = this.list.findIndex((e) => e.clientId === clientId)
    if (i < 0) return
    const [entry] = this.list.splice(i, 1) as [OutboxEntry]
    delete entry.failed
    this.list.push(entry)
    this.save()
    this.update(entry)
    void this.pump()
  }

  /** An entry taken out, not sent. */
  discard(clientId: string): void {
    if (!this.list.some((e) => e.clientId === clientId)) return
    this.list = this.list.filter((e) => e.clientId !== clientId)
    this.save()
    this.promises.get(clientId)?.reject(new ChatError('discarded', 'Discarded before it was sent.'))
    this.promises.delete(clientId)
    this.emit('drop', clientId)
  }

  /** Stops sending; what waits stays in the storage for the next time. */
  close(): void {
    this.closed = true
    clearTimeout(this.timer)
    for (const { reject } of this.promises.values()) reject(new ChatError('closed', 'The client was closed before the server confirmed it.'))
    this.promises.clear()
  }
}
