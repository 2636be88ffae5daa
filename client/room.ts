// One room as the client holds it: its cursor (epoch, last id), its connection, its outbox, and
// what arrives, each event once and in order, as typed events.
import { Connection, type ConnectionRoom, type EndReason, type StateInfo } from './connection.js'
import { Emitter } from './emitter.js'
import type { FollowStream, StreamRide } from './follow.js'
import type { Net, StorageLike } from './net.js'
import { ChatError, Outbox, type ReplyTo, type Sent } from './outbox.js'
import { isEvent, newClientId, readError, roomPath, type ChatEvent, type DeleteEvent, type EditEvent, type Item, type JoinEvent, type LeaveEvent, type MessageEvent, type ModerationEvent, type PresenceSignal, type ReactionEvent, type Transport, type TypingSignal } from './protocol.js'

export interface RoomEvents {
  /** Everything new of one delivery, in order: events (each once) and typing signals. */
  batch: [items: Item[]]
  message: [event: MessageEvent]
  join: [event: JoinEvent]
  leave: [event: LeaveEvent]
  edit: [event: EditEvent]
  delete: [event: DeleteEvent]
  /** A moderator acted (a message deleted by them comes as a `delete` too). */
  moderation: [event: ModerationEvent]
  /** Someone added or took back a reaction on a message (its totals as they stand come with the message in history). */
  reaction: [event: ReactionEvent]
  typing: [signal: TypingSignal]
  /** Someone opened or closed the room (rooms other than the lobby; the lobby's log says it). */
  presence: [signal: PresenceSignal]
  /** The cursor could not be resumed (a new log, or too far behind): what follows starts over from the newest. */
  reset: [info: { epoch: string }]
  state: [info: StateInfo]
  /** The room was let go for good: the name is taken, the user left or was signed out, or the room does not exist for them. */
  end: [reason: EndReason]
  /** A problem the server reported that is not about one message. */
  error: [message: string]
}

/** Who is in the room, as of event `lastId`. */
export interface Roster {
  lastId: number
  /** Each with their presence as a person (online, away, offline). */
  users: { name: string; avatar?: string; presence?: 'online' | 'away' | 'offline' }[]
  /** How many in all (past the server's limit, only a count). */
  count?: number
  /** The list is the room's members (every room but the lobby), not who has it open. */
  members?: boolean
}

export interface RoomSettings {
  net: Net
  transports: readonly Transport[]
  upgradeAfterMs: number
  storage: StorageLike | undefined
  storageKey: string
  tab: string | undefined
  epoch: string
  lastId: number
  /** The person's stream to ride instead of a connection of its own (ChatClient.join with `via`). */
  via?: FollowStream | undefined
}

export class ChatRoom extends Emitter<RoomEvents> {
  readonly outbox: Outbox
  private readonly net: Net
  private readonly link: Connection | StreamRide
  private cursor: { epoch: string; lastId: number }
  private info: StateInfo

  constructor(
    readonly name: string,
    settings: RoomSettings,
  ) {
    super()
    this.net = settings.net
    this.cursor = { epoch: settings.epoch, lastId: settings.lastId }
    this.info = { state: 'connecting', transport: settings.transports[0]!, fallback: false }
    this.outbox = new Outbox({ current: () => (this.link.link?.live ? this.link.link : null), signedOut: () => this.signedOut() }, settings.storage, settings.storageKey)
    // What the connection and its links may do to the room (not part of its public face).
    const cursor = () => this.cursor
    const inner: ConnectionRoom = {
      name,
      net: settings.net,
      tab: settings.tab,
      get epoch() {
        return cursor().epoch
      },
      get lastId() {
        return cursor().lastId
      },
      receive: (items) => this.receive(items),
      adopt: (epoch) => this.adopt(epoch),
      reset: (epoch) => this.reset(epoch),
      error: (message) => this.emit('error', message),
      state: (info) => {
        this.info = info
        this.emit('state', info)
      },
      setLive: (live) => this.outbox.setLive(live),
      ended: (reason) => this.ended(reason),
      whyRefused: () => this.whyRefused(),
    }
    // On the person's stream, no connection of its own: it rides the stream's.
    this.link = settings.via ? settings.via.ride(inner) : new Connection(inner, settings.transports, settings.upgradeAfterMs)
  }

  /** The log the ids belong to ('' until the server says). */
  get epoch(): string {
    return this.cursor.epoch
  }

  /** The last event delivered: the cursor resumes after it. */
  get lastId(): number {
    return this.cursor.lastId
  }

  /** The connection as it is now. */
  get connection(): StateInfo {
    return this.info
  }

  /** Connects (the client calls it once the caller could listen). */
  start(): void {
    this.link.start()
  }

  /**
   * A message, through the outbox: resolves once the server committed it (once, however often it
   * was sent). With `replyTo` it answers that message, in its thread (`alsoToRoom`: shown in the room too).
   */
  send(text: string, reply?: ReplyTo): Promise<Sent> {
    return this.outbox.send(text, reply)
  }

  /** Adds one's `emoji` to message `id` (or takes it back): the reaction event, or the message as it stands when that changed nothing. */
  async react(id: number, emoji: string, action: 'add' | 'remove' = 'add'): Promise<ReactionEvent | MessageEvent> {
    const res = await this.http(roomPath('', this.name, `/messages/${id}/reactions`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ emoji, action }) })
    const answer: unknown = await res.json().catch(() => undefined)
    if (!res.ok) throw failure(res.status, answer)
    return answer as ReactionEvent | MessageEvent
  }

  /**
   * Sends a file (a Blob, or a Buffer wrapped in one, named `name`) in a message with an optional
   * caption, exactly once: one client id for every try, tried again after a dropped answer or a
   * 5xx. Resolves with the message event (`file` says what was kept); a refusal (413 too big, 429
   * over the day's quota, 404 no such room) rejects with why.
   */
  async upload(file: Blob, name: string, options: { text?: string; replyTo?: number; alsoToRoom?: boolean; clientId?: string } = {}): Promise<MessageEvent> {
    const clientId = options.clientId ?? newClientId()
    for (let attempt = 0; ; attempt++) {
      const form = new FormData()
      form.set('file', file, name)
      form.set('clientId', clientId)
      if (options.text) form.set('text', options.text)
      if (options.replyTo !== undefined) form.set('replyTo', String(options.replyTo))
      if (options.alsoToRoom) form.set('alsoToRoom', 'true')
      let res: Response
      try {
        res = await this.net.request(roomPath('', this.name, '/files'), { method: 'POST', body: form })
      } catch {
        if (attempt >= 3) throw new ChatError('unreachable', 'The server cannot be reached right now; try again once reconnected.')
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt))
        continue
      }
      const answer: unknown = await res.json().catch(() => undefined)
      if (res.ok) return answer as MessageEvent
      if (res.status >= 500 && attempt < 3) continue
      throw failure(res.status, answer)
    }
  }

  /** Message `id` as it stands now (edited, deleted, its reactions and replies counted). */
  async message(id: number): Promise<MessageEvent> {
    const res = await this.http(roomPath('', this.name, `/messages/${id}`))
    const answer: unknown = await res.json().catch(() => undefined)
    if (!res.ok) throw failure(res.status, answer)
    return answer as MessageEvent
  }

  /** The thread message `id` is in (its first message, and its replies oldest first, 200 at a time after `after`). */
  async thread(id: number, after = 0): Promise<{ epoch: string; root: MessageEvent | null; replies: MessageEvent[]; more: boolean }> {
    const res = await this.http(roomPath('', this.name, `/messages/${id}/thread${after > 0 ? `?after=${after}` : ''}`))
    const answer: unknown = await res.json().catch(() => undefined)
    if (!res.ok) throw failure(res.status, answer)
    return answer as { epoch: string; root: MessageEvent | null; replies: MessageEvent[]; more: boolean }
  }

  /** One's own message `id` now reads `text`: the edit event. */
  edit(id: number, text: string): Promise<EditEvent> {
    return this.change(id, 'edit', { text }) as Promise<EditEvent>
  }

  /** One's own message `id` deleted: the deletion event. */
  delete(id: number): Promise<DeleteEvent> {
    return this.change(id, 'delete', {}) as Promise<DeleteEvent>
  }

  /** "I am typing" (others see it for a few seconds). */
  typing(): void {
    this.link.link?.typing()
  }

  /** Ends the wait before the next try at once. */
  retryNow(): void {
    this.link.retryNow()
  }

  /** Lets go of the room here (connections closed, sending stopped; the outbox stays in storage). */
  close(): void {
    this.link.close()
    this.outbox.close()
  }

  /**
   * Events before `before` (default: the newest), oldest first, as they stand now (edits and
   * deletions applied), at most `limit` (≤ 200, default 50). A cursor from another log starts over.
   */
  async history(options: { before?: number; limit?: number } = {}): Promise<{ epoch: string; events: ChatEvent[] }> {
    const query = [options.before !== undefined && `before=${options.before}`, `limit=${options.limit ?? 50}`, this.epoch && `epoch=${encodeURIComponent(this.epoch)}`].filter(Boolean).join('&')
    const res = await this.http(roomPath('', this.name, `/history?${query}`))
    const body: unknown = await res.json().catch(() => undefined)
    if (res.status === 409) {
      this.reset(readError(body)?.epoch)
      throw new ChatError('conflict', readError(body)?.message ?? 'Another log of this room: started over.', 409)
    }
    if (!res.ok) throw failure(res.status, body)
    return body as { epoch: string; events: ChatEvent[] }
  }

  /** Who is in the room now. */
  async users(): Promise<Roster> {
    const res = await this.http(roomPath('', this.name, '/users'))
    const body: unknown = await res.json().catch(() => undefined)
    if (!res.ok) throw failure(res.status, body)
    return body as Roster
  }

  /** Tells the server this room is read up to event `id` (so it is not new on one's other devices). */
  async markRead(id: number): Promise<void> {
    const res = await this.http(`/rooms/${encodeURIComponent(this.name)}/read`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id }) })
    if (!res.ok) throw failure(res.status, await res.json().catch(() => undefined))
  }

  private async change(id: number, kind: 'edit' | 'delete', body: object): Promise<ChatEvent> {
    const res = await this.http(roomPath('', this.name, `/messages/${id}/${kind}`), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    const answer: unknown = await res.json().catch(() => undefined)
    if (!res.ok) throw failure(res.status, answer)
    return answer as ChatEvent
  }

  private async http(path: string, init?: RequestInit): Promise<Response> {
    try {
      return await this.net.request(path, init)
    } catch {
      throw new ChatError('unreachable', 'The server cannot be reached right now; try again once reconnected.')
    }
  }

  private receive(items: Item[]): void {
    const fresh: Item[] = []
    for (const item of items) {
      if (isEvent(item)) {
        // Each event once: a switch of ways, or a resend of the window, may repeat some.
        if (item.id <= this.cursor.lastId) continue
        this.cursor.lastId = item.id
      }
      fresh.push(item)
    }
    if (fresh.length === 0) return
    this.emit('batch', fresh)
    for (const item of fresh) this.emitItem(item)
    this.outbox.seen(fresh.filter(isEvent))
  }

  private emitItem(item: Item): void {
    // One switch, so that each name is typed with its own event.
    switch (item.type) {
      case 'message':
        return this.emit('message', item)
      case 'join':
        return this.emit('join', item)
      case 'leave':
        return this.emit('leave', item)
      case 'edit':
        return this.emit('edit', item)
      case 'delete':
        return this.emit('delete', item)
      case 'moderation':
        return this.emit('moderation', item)
      case 'reaction':
        return this.emit('reaction', item)
      case 'typing':
        return this.emit('typing', item)
      case 'presence':
        return this.emit('presence', item)
    }
  }

  private adopt(epoch: string): void {
    if (epoch && this.cursor.lastId === 0) this.cursor.epoch = epoch
  }

  private reset(epoch?: string): void {
    this.cursor = { epoch: epoch ?? '', lastId: 0 }
    this.emit('reset', { epoch: this.cursor.epoch })
  }

  private ended(reason: EndReason): void {
    this.outbox.close()
    this.emit('end', reason)
  }

  private async whyRefused(): Promise<EndReason | undefined> {
    try {
      const res = await this.net.request(roomPath('', this.name, '/users'))
      // Banned (a socket's refused upgrade says nothing): the server's words, then the end.
      if (res.status === 403) {
        this.emit('error', readError(await res.json().catch(() => undefined))?.message ?? 'You may not read this room.')
        return 'removed'
      }
      await res.body?.cancel()
      return res.status === 401 ? 'signedOut' : res.status === 404 ? 'missing' : undefined
    } catch {
      return undefined
    }
  }

  private signedOut(): void {
    this.link.close()
    this.ended('signedOut')
  }
}

/** A refused request as an error: its status and the server's words. */
function failure(status: number, body: unknown): ChatError {
  const message = readError(body)?.message ?? `HTTP ${status}`
  return new ChatError(status === 401 ? 'signedOut' : 'refused', message, status)
}
