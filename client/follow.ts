// The person's stream: one connection, whatever the number of rooms, that follows every room the
// person belongs to (now and later) and their own events (rooms joined, left, invited to, DMs
// opened to them, read markers), with a cursor per room and one of their own (`me`). It falls
// back and comes back up as a room's connection does (Connection), and every way in resumes
// every room from its cursor: each event is handed on once, in order per room.
import { Connection, type ConnectionRoom, type EndReason, type StateInfo } from './connection.js'
import { Emitter } from './emitter.js'
import { HttpLink, Link, type LinkOwner, type LinkRoom, type LostReason, type Outgoing, type SendResult } from './link.js'
import type { Net } from './net.js'
import { CloseCode, newClientId, parse, readError, readItems, roomPath, type ChatEvent, type Item, type PresenceSignal, type Transport } from './protocol.js'
import { removalMessage } from './render.js'
import { readEventStream } from './sse.js'

/** The cursor name of the person's own events. */
export const ME = 'me'

/** One of the person's own events: a room joined, left, invited to, a DM opened to them, a read marker moved. */
export interface PersonEvent {
  id: number
  type: 'person'
  /** handled: a message they reported (`at`, in `room`) was handled by a moderator (`user`). */
  /** removed: a moderator (`user`) put them out of the room (`action` kick or ban, `reason`, `until`). */
  kind: 'joined' | 'left' | 'invited' | 'direct' | 'read' | 'renamed' | 'handled' | 'removed'
  /** The room it is about. */
  room: string
  /** Where the room is followed from (joined, invited, direct), or the read marker (read). */
  at?: number
  /** Who did it (the person, or who invited them or opened the DM). */
  user: string
  action?: 'kick' | 'ban'
  reason?: string
  until?: number
  timestamp: number
}

export interface FollowEvents {
  /** A room's events (each once, in order), and its signals (typing). */
  room: [room: string, items: Item[]]
  /** One of the person's own events. */
  person: [event: PersonEvent]
  /** Someone who shares a room with the person is online, away or offline. */
  presence: [signal: PresenceSignal]
  /** The rooms followed changed (one joined or left). */
  rooms: [names: string[]]
  /** A room's cursor could not be resumed: what follows starts over from its newest. */
  reset: [room: string, epoch: string]
  /** A moderator put the person out of a room (kicked or banned): it is no longer followed; the server's words say who and why. */
  removed: [room: string, message: string]
  state: [info: StateInfo]
  end: [reason: EndReason]
}

/** What a follow link needs of the stream (beyond a room's link room). */
interface FollowRoom extends LinkRoom {
  /** Every room's cursor, `me` included, as the query of a connection. */
  cursorQuery(): string
  /** A room's items (events and signals) as they came. */
  deliver(room: string, items: Item[]): void
  /** One of the person's own events (or a presence signal) as it came. */
  own(item: unknown): void
  /** The server says it follows this room from `lastId` of log `epoch` (a room new to the client). */
  follows(room: string, epoch: string, lastId: number): void
  /** A room is no longer followed (left), or must start over (409: its epoch, its newest). */
  drop(room: string): void
  /** A room the person was put out of (kick, ban), with the server's words. */
  removed(room: string, message: string): void
  startOver(room: string, epoch: string, lastId: number): void
  /** A room's cursor, if followed. */
  cursor(room: string): { epoch: string; lastId: number } | undefined
  /** The link in use is told of rooms visited and let go of (undefined: no longer in use). */
  onVisits(listener: ((room: string, visiting: boolean) => void) | undefined): void
  /** The rooms visited that the server has not started yet (cursorQuery names them, from now). */
  visitsToStart(): string[]
}

const cursorParam = (room: string, epoch: string, lastId: number) => `cursor=${encodeURIComponent(`${room}:${epoch}:${lastId}`)}`

/** WebSocket: `/websocket/socket?follow=me&cursor=…`; frames say their room. */
class FollowSocketLink extends Link {
  private socket: ReturnType<Net['openSocket']> | undefined
  constructor(room: LinkRoom, owner: LinkOwner) {
    super('websocket', room, owner)
  }
  private get stream(): FollowRoom {
    return this.room as FollowRoom
  }
  start(): void {
    // A room visited: subscribed on this socket from now (once it is open: those visited before are in its address); let go of: unsubscribed.
    let open = false
    this.stream.onVisits((room, visiting) => open && this.socket?.send(JSON.stringify(visiting ? { type: 'subscribe', room } : { type: 'unsubscribe', room })))
    const inAddress = new Set(this.stream.visitsToStart())
    this.socket = this.openSocket(
      `/websocket/socket?follow=me${this.stream.cursorQuery()}`,
      (data) => {
        const frame = (data ?? {}) as { type?: unknown; room?: unknown; events?: unknown; epoch?: unknown; lastId?: unknown; from?: unknown; reason?: unknown; status?: unknown; message?: unknown }
        const room = typeof frame.room === 'string' ? frame.room : undefined
        if (frame.type === 'hello') {
          open = true
          for (const visited of this.stream.visitsToStart()) if (!inAddress.has(visited)) this.socket?.send(JSON.stringify({ type: 'subscribe', room: visited }))
          return this.greeted('')
        }
        if (room === undefined) return
        if (Array.isArray(frame.events)) {
          if (room === ME) for (const item of frame.events) this.stream.own(item)
          else this.stream.deliver(room, readItems(frame.events))
        } else if (frame.type === 'subscribed' && typeof frame.epoch === 'string') {
          this.stream.follows(room, frame.epoch, typeof frame.from === 'number' ? frame.from : Number(frame.lastId) || 0)
        } else if (frame.type === 'unsubscribed' && frame.reason === 'removed') {
          this.stream.removed(room, String(frame.message ?? ''))
        } else if (frame.type === 'unsubscribed') {
          // Lagged: subscribe again from its cursor; left: no longer followed.
          const cursor = this.stream.cursor(room)
          if (frame.reason === 'lagged' && cursor) this.subscribe(room, cursor)
          else this.stream.drop(room)
        } else if (frame.type === 'refused') {
          if (frame.status === 409 && typeof frame.epoch === 'string') {
            this.stream.startOver(room, frame.epoch, Number(frame.lastId) || 0)
            this.subscribe(room, this.stream.cursor(room)!)
          } else if (frame.status === 403) this.stream.removed(room, String(frame.message ?? ''))
          else this.stream.drop(room)
        }
      },
      (code, opened) => {
        if (code === CloseCode.left || code === CloseCode.nameTaken) return this.end(code === CloseCode.left ? 'left' : 'nameTaken')
        this.end(code === CloseCode.unauthorized || !opened ? 'maybeSignedOut' : 'dropped')
      },
    )
  }
  private subscribe(room: string, cursor: { epoch: string; lastId: number }): void {
    this.socket?.send(JSON.stringify({ type: 'subscribe', room, epoch: cursor.epoch, lastReceived: cursor.lastId }))
  }
  override stop(): void {
    super.stop()
    this.stream.onVisits(undefined)
    this.socket?.close(CloseCode.normal, 'switching')
  }
  send(_entry: Outgoing): Promise<SendResult> {
    return Promise.resolve({ kind: 'transient', message: 'Send through the room (FollowStream.send).' })
  }
  typing(): void {}
}

/** Server-Sent Events: `/sse/events?follow=me&cursor=…`; data carries its room, the person's own events are `type: person`. */
class FollowEventStreamLink extends HttpLink {
  private readonly again = new Again(this.abort.signal)
  constructor(room: LinkRoom, owner: LinkOwner) {
    super('sse', room, owner)
  }
  private get stream(): FollowRoom {
    return this.room as FollowRoom
  }
  start(): void {
    // A room visited: the stream opens again with its cursor too (one connection still); one let go of goes on until the next.
    this.stream.onVisits((_room, visiting) => visiting && this.again.now())
    void this.read()
  }
  override stop(): void {
    super.stop()
    this.stream.onVisits(undefined)
  }
  private async read(): Promise<void> {
    const signal = this.again.signal()
    let res: Response
    try {
      res = await this.room.net.request(`/sse/events?follow=me${this.stream.cursorQuery()}`, { headers: { accept: 'text/event-stream' }, signal })
    } catch {
      if (this.again.asked()) return this.read()
      return this.end(this.live ? 'dropped' : 'maybeSignedOut')
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel()
      return this.end(res.status === 401 ? 'signedOut' : 'maybeSignedOut')
    }
    const dispatch = (event: string, text: string): void => {
      const value = parse(text) as Record<string, unknown> | undefined
      if (!value) return
      const room = typeof value.room === 'string' ? value.room : undefined
      if (event === 'hello') {
        const rooms = (value.rooms ?? {}) as Record<string, { epoch: string; lastId: number; from?: number }>
        for (const [name, cursor] of Object.entries(rooms)) this.stream.follows(name, cursor.epoch, cursor.from ?? cursor.lastId)
        return this.greeted('')
      }
      if (event === 'presence') return this.stream.own(value)
      if (room === undefined) return
      if (event === 'message') {
        if (value.type === 'person') this.stream.own(value)
        else this.stream.deliver(room, readItems([value]))
      } else if (event === 'typing') this.stream.deliver(room, readItems([value]))
      else if (event === 'subscribed' && typeof value.epoch === 'string') this.stream.follows(room, value.epoch, typeof value.from === 'number' ? value.from : Number(value.lastId) || 0)
      else if (event === 'removed') this.stream.removed(room, String(value.message ?? ''))
      else if (event === 'unsubscribed') {
        // A lagged room: the stream is ended by the server and resumed from every cursor.
        if (value.reason !== 'lagged') this.stream.drop(room)
      } else if (event === 'refused') {
        if (value.status === 409 && typeof value.epoch === 'string') this.stream.startOver(room, value.epoch, Number(value.lastId) || 0)
        else if (value.status === 403) this.stream.removed(room, String(value.message ?? ''))
        else this.stream.drop(room)
      }
    }
    await readEventStream(res.body, (event, text) => {
      if (this.stopped || signal.aborted) return false
      dispatch(event, text)
      return !this.stopped && !signal.aborted
    }).catch(() => undefined)
    if (this.again.asked()) return this.read()
    this.end(this.live ? 'dropped' : 'maybeSignedOut')
  }
}

/** Long polling: `/longpolling/messages?follow=me&cursor=…`, again and again with every room's cursor. */
class FollowPollLink extends HttpLink {
  private readonly again = new Again(this.abort.signal)
  constructor(room: LinkRoom, owner: LinkOwner) {
    super('longpolling', room, owner)
  }
  private get stream(): FollowRoom {
    return this.room as FollowRoom
  }
  start(): void {
    // A room visited: the waiting poll is asked again at once with its cursor too; one let go of is left out of the next.
    this.stream.onVisits((_room, visiting) => visiting && this.again.now())
    void this.poll()
  }
  override stop(): void {
    super.stop()
    this.stream.onVisits(undefined)
  }
  private async poll(): Promise<void> {
    while (!this.stopped) {
      try {
        const res = await this.room.net.request(`/longpolling/messages?follow=me&typing=1${this.stream.cursorQuery()}`, { signal: this.again.signal() })
        const body = (await res.json().catch(() => undefined)) as
          | { events?: Record<string, unknown>[]; rooms?: Record<string, { epoch: string; lastId: number }>; refused?: Record<string, unknown>[]; signals?: unknown[] }
          | undefined
        if (this.stopped) return
        if (res.status === 401) return this.end('signedOut')
        if (!res.ok || !body) throw new Error(`HTTP ${res.status}`)
        this.greeted('')
        // What happened (a room new to this client from its start here), then the cursors of the
        // rooms new to it (where the next poll goes on from), then refusals and signals.
        const left = new Set<unknown>()
        for (const event of body.events ?? []) {
          if (event.type === 'person') {
            this.stream.own(event)
            if (event.kind === 'left' || event.kind === 'removed') left.add(event.room)
          } else if (typeof event.room === 'string') this.stream.deliver(event.room, readItems([event]))
        }
        // A room left in this very answer was polled one last time: not followed again.
        for (const [room, { epoch, lastId }] of Object.entries(body.rooms ?? {})) if (!this.stream.cursor(room) && !left.has(room)) this.stream.follows(room, epoch, lastId)
        for (const refused of body.refused ?? []) {
          const room = String(refused.room)
          // A long poll's refusal is the room's JSON error (Conflict: start over from where it stands).
          if ((refused.status === 409 || refused.error === 'Conflict') && typeof refused.epoch === 'string') this.stream.startOver(room, refused.epoch, Number(refused.lastId) || 0)
          else if (refused.error === 'Forbidden') this.stream.removed(room, String(refused.message ?? ''))
          // Refused for now (the store did not answer, too many at once): polled again from its cursor.
          else if (refused.error !== 'Service Unavailable' && refused.error !== 'Too Many Requests') this.stream.drop(room)
        }
        // Signals: a room's (typing, with its room) or the person's (presence).
        for (const signal of body.signals ?? []) {
          const room = (signal as { room?: unknown }).room
          if (typeof room === 'string') this.stream.deliver(room, readItems([signal]))
          else this.stream.own(signal)
        }
      } catch {
        if (this.again.asked()) continue
        return this.end('dropped')
      }
    }
  }
}

/**
 * A request of a link that can be made again at once (a room visited): its own abort signal,
 * following the link's; aborted by now(), after which asked() says so once.
 */
class Again {
  private current: AbortController | undefined
  private wanted = false
  constructor(private readonly link: AbortSignal) {}
  /** The signal of the next request. */
  signal(): AbortSignal {
    const current = (this.current = new AbortController())
    if (this.link.aborted) current.abort()
    else this.link.addEventListener('abort', () => current.abort(), { once: true })
    return current.signal
  }
  /** Ends the request under way so that it is made again. */
  now(): void {
    if (this.link.aborted || !this.current) return
    this.wanted = true
    this.current.abort()
  }
  /** Whether the request just ended was ended by now() (and the link goes on). */
  asked(): boolean {
    const asked = this.wanted && !this.link.aborted
    this.wanted = false
    return asked
  }
}

/** A room's sends over plain HTTP, for a room that rides the person's stream (it never reads: the stream does). */
class SenderLink extends HttpLink {
  constructor(room: LinkRoom, owner: LinkOwner) {
    super('longpolling', room, owner)
  }
  start(): void {}
}

/**
 * What a ChatRoom rides instead of a connection of its own (ChatClient.join with `via`): the
 * stream's events of that room, its state, and sends over plain HTTP while the stream is live.
 */
export class StreamRide implements LinkOwner {
  readonly link: Link
  private stops: (() => void)[] = []
  constructor(
    private readonly stream: FollowStream,
    private readonly room: ConnectionRoom,
  ) {
    this.link = new SenderLink(room, this)
  }
  live(): void {}
  lost(): void {}
  start(): void {
    const { stream, room } = this
    const state = (info: StateInfo) => {
      this.link.live = info.state === 'live'
      room.state(info)
      room.setLive(this.link.live)
    }
    this.stops = [
      stream.on('room', (name, items) => name === room.name && room.receive(items)),
      stream.on('state', state),
      stream.on('reset', (name, epoch) => name === room.name && room.reset(epoch)),
      stream.on('person', (event) => event.kind === 'left' && event.room === room.name && this.end('left')),
      // Kicked or banned: the room is told why (its error), then ends as removed.
      stream.on('removed', (name, message) => {
        if (name !== room.name) return
        room.error(message)
        this.end('removed')
      }),
      stream.on('end', (reason) => this.end(reason)),
    ]
    state(stream.connectionState)
  }
  private end(reason: EndReason): void {
    this.close()
    this.room.ended(reason)
  }
  retryNow(): void {
    this.stream.retryNow()
  }
  close(): void {
    for (const stop of this.stops) stop()
    this.stops = []
    this.link.live = false
    this.room.setLive(false)
  }
}

const followLinks: Record<Transport, new (room: LinkRoom, owner: LinkOwner) => Link> = { websocket: FollowSocketLink, sse: FollowEventStreamLink, longpolling: FollowPollLink }

export interface FollowSettings {
  net: Net
  transports: readonly Transport[]
  upgradeAfterMs: number
  tab: string | undefined
  /** Cursors to resume from (one's own saved ones), `me` included. */
  cursors?: Record<string, { epoch: string; lastId: number }>
}

/**
 * The person's stream. Listen to it right away (it connects on the next tick): `room` for each
 * room's events, `person` for the person's own, `presence`, `rooms`, `state`. `cursors` is what
 * to save to resume later, exactly once.
 */
export class FollowStream extends Emitter<FollowEvents> {
  private readonly net: Net
  private readonly tab: string | undefined
  private readonly known = new Map<string, { epoch: string; lastId: number }>()
  private readonly connection: Connection
  private info: StateInfo
  /** Rooms read without being the person's (a public room shown to a visitor): carried while visited. */
  private readonly visiting = new Set<string>()
  /** Rooms visited and let go of: an answer still under way that names one does not carry it again. */
  private readonly letGo = new Set<string>()
  private visits: ((room: string, visiting: boolean) => void) | undefined

  constructor(settings: FollowSettings) {
    super()
    this.net = settings.net
    this.tab = settings.tab
    for (const [room, cursor] of Object.entries(settings.cursors ?? {})) this.known.set(room, { ...cursor })
    this.info = { state: 'connecting', transport: settings.transports[0]!, fallback: false }
    const stream = this
    const room: ConnectionRoom & FollowRoom = {
      name: ME,
      net: this.net,
      tab: this.tab,
      get epoch() {
        return stream.known.get(ME)?.epoch ?? ''
      },
      get lastId() {
        return stream.known.get(ME)?.lastId ?? 0
      },
      receive: () => {},
      adopt: () => {},
      reset: () => {},
      error: () => {},
      state: (info) => {
        this.info = info
        this.emit('state', info)
      },
      setLive: () => {},
      ended: (reason) => this.emit('end', reason),
      whyRefused: async () => {
        try {
          const res = await this.net.request('/rooms')
          await res.body?.cancel()
          return res.status === 401 ? 'signedOut' : undefined
        } catch {
          return undefined
        }
      },
      cursorQuery: () => this.query(),
      deliver: (name, items) => this.deliver(name, items),
      own: (item) => this.own(item),
      follows: (name, epoch, lastId) => this.follows(name, epoch, lastId),
      drop: (name) => this.drop(name),
      removed: (name, message) => this.removedFrom(name, message),
      startOver: (name, epoch, lastId) => this.startOver(name, epoch, lastId),
      cursor: (name) => this.known.get(name),
      onVisits: (listener) => {
        this.visits = listener
      },
      visitsToStart: () => this.visitsToStart(),
    }
    this.connection = new Connection(room, settings.transports, settings.upgradeAfterMs, followLinks)
  }

  /** Connects (the client calls it once the caller could listen). */
  start(): void {
    this.connection.start()
  }

  /** Every room followed, with its cursor (`me` included): save it to resume exactly once. */
  get cursors(): Record<string, { epoch: string; lastId: number }> {
    return Object.fromEntries([...this.known].map(([room, cursor]) => [room, { ...cursor }]))
  }

  /** The rooms followed now (not `me`, nor the rooms visited). */
  get rooms(): string[] {
    return [...this.known.keys()].filter((room) => room !== ME && !this.visiting.has(room))
  }

  /**
   * Carries a room that is not the person's (a public room they read without joining; never one
   * of theirs, which unvisit would let go of) on this
   * same connection, from now, until unvisit(): a socket subscribes to it, an event stream or a
   * long poll is made again with it. Its events come as the person's rooms' do.
   */
  visit(room: string): void {
    if (room === ME || this.visiting.has(room)) return
    this.visiting.add(room)
    this.letGo.delete(room)
    // Named by the cursors it was made with: carried already.
    if (!this.known.has(room)) this.visits?.(room, true)
  }

  /** Lets go of a room visited (a room the person joined meanwhile is theirs now, and stays). */
  unvisit(room: string): void {
    if (!this.visiting.delete(room)) return
    this.known.delete(room)
    this.letGo.add(room)
    this.visits?.(room, false)
  }

  get connectionState(): StateInfo {
    return this.info
  }

  /**
   * A message into one of the person's rooms, exactly once: posted with a client id, sent again
   * with the same id after a dropped answer (the server answers the first event then).
   */
  async send(room: string, text: string, clientId = newClientId(), reply?: { replyTo?: number; alsoToRoom?: boolean }): Promise<{ id: number; duplicate: boolean }> {
    const said = { text, clientId, ...(reply?.replyTo !== undefined && { replyTo: reply.replyTo, ...(reply.alsoToRoom && { alsoToRoom: true }) }) }
    for (let attempt = 0; ; attempt++) {
      let res: Response
      try {
        res = await this.net.post(roomPath('longpolling', room, '/messages'), said, AbortSignal.timeout(10_000))
      } catch (error) {
        if (attempt >= 4) throw error
        await new Promise((resolve) => setTimeout(resolve, 500 * 2 ** attempt))
        continue
      }
      const body = (await res.json().catch(() => undefined)) as { id?: number } | undefined
      if (res.ok) return { id: body?.id ?? 0, duplicate: res.status === 200 }
      if (res.status >= 500 && attempt < 4) continue
      throw new Error(readError(body)?.message ?? `HTTP ${res.status}`)
    }
  }

  /** Ends the wait before the next try at once. */
  retryNow(): void {
    this.connection.retryNow()
  }

  /** What a ChatRoom of one of the person's rooms rides instead of a connection of its own. */
  ride(room: ConnectionRoom): StreamRide {
    return new StreamRide(this, room)
  }

  /** Lets go of the stream (its connection closed). */
  close(): void {
    this.connection.close()
  }

  private query(): string {
    let out = ''
    for (const [room, { epoch, lastId }] of this.known) out += `&${cursorParam(room, epoch, lastId)}`
    // A room visited that the server has not started yet: from now.
    for (const room of this.visitsToStart()) out += `&cursor=${encodeURIComponent(`${room}::`)}`
    if (this.tab) out += `&tab=${encodeURIComponent(this.tab)}`
    return out
  }

  /** The rooms visited that the server has not started yet (it says `follows` once it has). */
  private visitsToStart(): string[] {
    return [...this.visiting].filter((room) => !this.known.has(room))
  }

  private follows(room: string, epoch: string, lastId: number): void {
    const known = this.known.get(room)
    // Resumed from its cursor, or a room new to the client (from where the server starts it).
    if ((known && known.epoch === epoch) || this.letGo.has(room)) return
    this.known.set(room, { epoch, lastId })
    if (!known && room !== ME && !this.visiting.has(room)) this.emit('rooms', this.rooms)
  }

  /** Put out of a room: said once, by whichever comes first (the room's end, or the person's own event). */
  private removedFrom(room: string, message: string): void {
    if (!this.known.has(room) && !this.visiting.has(room)) return
    this.drop(room)
    this.emit('removed', room, message)
  }

  private drop(room: string): void {
    if (this.visiting.delete(room)) {
      this.known.delete(room)
      return
    }
    if (room === ME || !this.known.delete(room)) return
    this.emit('rooms', this.rooms)
  }

  private startOver(room: string, epoch: string, lastId: number): void {
    this.known.set(room, { epoch, lastId })
    this.emit('reset', room, epoch)
  }

  /** A room's items: events past its cursor, each once (a link that repeats itself is skipped), and signals. */
  private deliver(room: string, items: Item[]): void {
    const cursor = this.known.get(room)
    const fresh: Item[] = []
    for (const item of items) {
      const id = (item as ChatEvent).id
      if (typeof id !== 'number') {
        fresh.push(item)
        continue
      }
      if (cursor) {
        if (id <= cursor.lastId) continue
        cursor.lastId = id
      }
      fresh.push(item)
    }
    if (fresh.length > 0) this.emit('room', room, fresh)
  }

  /** The person's own events (each once) and presence signals. */
  private own(value: unknown): void {
    const item = value as Record<string, unknown>
    if (item.type === 'presence' && typeof item.user === 'string') {
      const { user, presence } = item
      if (presence === 'online' || presence === 'away' || presence === 'offline') this.emit('presence', { type: 'presence', user, presence })
      return
    }
    if (item.type !== 'person' || typeof item.id !== 'number' || typeof item.room !== 'string') return
    const cursor = this.known.get(ME)
    if (cursor) {
      if (item.id <= cursor.lastId) return
      cursor.lastId = item.id
    }
    const event = item as unknown as PersonEvent
    // A room visited that the person joined is theirs now: followed, and listed.
    if (event.kind === 'joined' || event.kind === 'invited' || event.kind === 'direct') {
      this.letGo.delete(event.room)
      if (this.visiting.delete(event.room) && this.known.has(event.room)) this.emit('rooms', this.rooms)
    }
    this.emit('person', event)
    if (event.kind === 'left') this.drop(event.room)
    else if (event.kind === 'removed') this.removedFrom(event.room, removalMessage({ action: event.action ?? 'kick', by: event.user, reason: event.reason ?? '', until: event.until }))
  }
}

export type { LostReason }
