import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import type { Room } from '../chatroom/room.js'
import type { Removal, Subscription } from '../chatroom/subscription.js'
import { backendUnavailable } from '../chatroom/deadline.js'
import { Follower } from '../chatroom/follower.js'
import { memberKey } from '../chatroom/presence.js'
import { ackFrame, act, CloseCode, errorFrame, moderationAnswer, moderationForm, readChange, reasons, removalBody } from './protocol.js'
import { currentUser } from '../plugins/session.js'
import type { RoomCursor } from '../validation.js'
import { enterFollowing, enterMe, followNews, ME } from './person-stream.js'
import { enterRooms, inRoom, roomFrame, roomWsFrame, type RoomEntry } from './rooms-connection.js'
import { tabOf } from './http.js'
import { release } from './socket-writer.js'

/** Invalid frames in a row before the socket is closed (1007), as on a one-room socket. */
const MAX_BAD_FRAMES = 5

type ClientFrame =
  | { type: 'subscribe'; room: string; epoch?: string; lastReceived?: number }
  | { type: 'unsubscribe'; room: string }
  | { type: 'act'; room: string; act: Parameters<typeof act>[2]; ref?: string }
  | { type: 'typing'; room: string }
  | { type: 'presence'; away: boolean }
  | { type: 'moderation'; room: string; form: Record<string, unknown>; ref?: string }

/** A client frame of a socket of several rooms, checked by hand (as readClientFrame is), or why not. */
function readFrame(data: RawData, isBinary: boolean): ClientFrame | string {
  if (isBinary) return 'Frames are JSON text.'
  let value: unknown
  try {
    value = JSON.parse(data.toString())
  } catch {
    return 'A frame must be JSON.'
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'A frame must be a JSON object.'
  const f = value as Record<string, unknown>
  // The page is hidden or idle (away), or in use again: the person's, not a room's.
  if (f.type === 'presence') {
    if (f.presence !== 'away' && f.presence !== 'online') return 'presence takes "presence": "away" or "online".'
    return { type: 'presence', away: f.presence === 'away' }
  }
  if (typeof f.room !== 'string' || f.room.length === 0 || f.room.length > 64) return 'A frame names its room: "room": "NAME".'
  const room = f.room
  if (f.type === 'subscribe') {
    const epochOk = f.epoch === undefined || (typeof f.epoch === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(f.epoch))
    const lastOk = f.lastReceived === undefined || (Number.isSafeInteger(f.lastReceived) && (f.lastReceived as number) >= 0)
    if (!epochOk || !lastOk) return 'subscribe takes "epoch" (the room\'s) and "lastReceived" (an event id).'
    return { type: 'subscribe', room, ...(f.epoch !== undefined && { epoch: f.epoch as string }), ...(f.lastReceived !== undefined && { lastReceived: f.lastReceived as number }) }
  }
  if (f.type === 'unsubscribe') return { type: 'unsubscribe', room }
  if (f.type === 'typing') return { type: 'typing', room }
  if (f.ref !== undefined && !(typeof f.ref === 'string' && f.ref.length <= 40)) return '"ref" is a string of at most 40 characters.'
  const ref = f.ref as string | undefined
  // A moderator's action, as POST /rooms/:room/moderation takes it (action, user or id, minutes, reason).
  if (f.type === 'moderation') return { type: 'moderation', room, form: moderationForm(f), ref }
  if (f.type === 'say' || (f.type === undefined && 'text' in f)) return { type: 'act', room, act: { kind: 'say', text: f.text, clientId: f.clientId, replyTo: f.replyTo, alsoToRoom: f.alsoToRoom }, ref }
  if (f.type === 'edit' || f.type === 'delete' || f.type === 'react') {
    const change = readChange(f)
    if (!change) return `${f.type} takes the message's "id"${f.type === 'edit' ? ' and its new "text"' : f.type === 'react' ? ' and an "emoji"' : ''}.`
    return { type: 'act', room, act: change, ref }
  }
  return 'A frame is {"type": "subscribe" | "unsubscribe" | "say" | "edit" | "delete" | "react" | "typing" | "moderation", "room", …} or {"type": "presence", "presence"}.'
}

/**
 * One WebSocket for several rooms (`/websocket/socket`): the client subscribes to each room with
 * that room's cursor and unsubscribes; every server frame says its room: `{"room", "events":
 * [...]}`, `{"type": "subscribed", "room", "epoch", "lastId"}`, `{"type": "unsubscribed", "room",
 * "reason"}` (lagged: subscribe again from your cursor; left), `{"type": "refused", "room",
 * "status", …}` (404 for a room you may not read, 409 start over with where it stands), acks and
 * errors with their room. A slow client is handled as on a one-room socket: past the buffer
 * limit nothing is written, the room's queue fills and that room is unsubscribed as lagged.
 */
export class RoomsSocket {
  /** Each room's subscription, by the room's name (`me`: the person's own events); the room is its owner. */
  private readonly subscriptions = new Map<string, Subscription>()
  /** Following the person: the rooms read in the background, with no subscription each (see Follower). */
  private follower: Follower | undefined
  private readonly pending = new Set<string>()
  private badFrames = 0
  private waitingForDrain = false
  private closed = false
  /** This connection as a page of its person, for their presence: the page's id, else one of its own. */
  private readonly page: string
  /** The page's id when it gave one (?tab=): its leave (the page closing) ends this socket's rooms at once. */
  private readonly tab: string | undefined

  constructor(
    private readonly socket: WebSocket,
    private readonly request: FastifyRequest,
    private readonly limit: number,
    private readonly maxRooms: number,
  ) {
    this.tab = tabOf(request)
    this.page = this.tab ?? `ws-${randomBytes(9).toString('base64url')}`
    release(socket, request.raw.socket, request.server.log)
    socket.on('close', () => {
      this.closed = true
      for (const subscription of this.subscriptions.values()) subscription.cancel()
      this.subscriptions.clear()
      this.follower?.cancel()
    })
    socket.on('message', (data, isBinary) => this.receive(data, isBinary))
    this.send(JSON.stringify({ type: 'hello' }))
  }

  /** Every room's onReadable: one function for the socket, not one per room. */
  private readonly readable = (subscription: Subscription): void => this.flush(subscription.label!)

  private send(frame: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame)
  }

  private receive(data: RawData, isBinary: boolean): void {
    const frame = readFrame(data, isBinary)
    if (typeof frame === 'string') {
      if (++this.badFrames >= MAX_BAD_FRAMES) return this.socket.close(CloseCode.invalidData, 'too many invalid frames')
      return this.send(JSON.stringify({ error: 'Bad Request', message: frame }))
    }
    if (frame.type === 'subscribe') return void this.subscribe(frame)
    if (frame.type === 'unsubscribe') return this.unsubscribe(frame.room, 'unsubscribed')
    if (frame.type === 'presence') return this.request.server.chatroom.people.setAway(currentUser(this.request), this.page, frame.away)
    if (frame.type === 'moderation') return void this.moderate(frame)
    const room = (this.subscriptions.get(frame.room)?.owner ?? this.follower?.room(frame.room)) as Room | undefined
    if (!room || frame.room === ME) return this.send(JSON.stringify({ error: 'Bad Request', message: 'Subscribe to the room first.', room: frame.room }))
    const user = currentUser(this.request)
    if (frame.type === 'typing') return room.typing(user)
    const { ref } = frame
    void act(room, user, frame.act).then((said) => {
      if (said.outcome === 'ok') {
        this.badFrames = 0
        if (ref !== undefined) this.send(`{"room":${JSON.stringify(frame.room)},${ackFrame(ref, said.stored.event.id, said.duplicate).slice(1)}`)
      } else this.send(`{"room":${JSON.stringify(frame.room)},${errorFrame(said, ref).slice(1)}`)
    })
  }

  /** A moderator's frame: answered with an ack of the moderation event, or the refusal (its status and why), with its room and ref. */
  private async moderate(frame: Extract<ClientFrame, { type: 'moderation' }>): Promise<void> {
    const done = await this.request.server.chatroom.moderate(currentUser(this.request), frame.room, frame.form)
    this.send(inRoom(frame.room, moderationAnswer(done, frame.ref).frame))
  }

  private async subscribe(frame: Extract<ClientFrame, { type: 'subscribe' }>, following = false): Promise<void> {
    const { room: name } = frame
    if (this.subscriptions.has(name) || this.pending.has(name) || this.follower?.has(name)) {
      if (following) return
      return this.send(JSON.stringify({ error: 'Bad Request', message: 'Subscribed to that room already.', room: name }))
    }
    // The person's stream follows every room of theirs; a socket that names rooms one by one is bounded.
    if (!following && this.subscriptions.size + this.pending.size + (this.follower?.size ?? 0) >= this.maxRooms) {
      return this.send(JSON.stringify({ type: 'refused', room: name, status: 429, error: reasons[429], message: `At most ${this.maxRooms} rooms on one connection.` }))
    }
    this.pending.add(name)
    try {
      const cursor = { room: name, epoch: frame.epoch, lastReceived: frame.lastReceived }
      const [entry] =
        name === ME
          ? [await enterMe(this.request, cursor, 'websocket', false, this.page)]
          : // On the person's stream a room named with no cursor starts from now, as on its event stream and long poll (a room visited: its history is paged).
            await enterRooms(this.request, [cursor], 'websocket', { typing: true, fromNow: following || this.follower !== undefined, following, page: this.page, tab: this.tab, follower: following ? this.follower : undefined })
      if (entry) this.attach(entry)
    } catch (error) {
      // The store did not answer. On the person's stream (a room joined, or visited) the socket is
      // closed to come back (1013), so its resume takes the room in; a room named by the client
      // alone is refused (503, subscribe it again shortly) while the others go on.
      this.request.log[backendUnavailable(error) ? 'warn' : 'error']({ err: error }, 'a socket could not subscribe a room')
      if (following || this.follower) {
        if (!this.closed) this.socket.close(CloseCode.tryAgainLater, 'The chat is unavailable right now; reconnect shortly.')
      } else this.send(JSON.stringify({ type: 'refused', room: name, status: 503, error: reasons[503], message: 'The chat is unavailable right now; subscribe again shortly.' }))
    } finally {
      this.pending.delete(name)
    }
  }

  /**
   * Follows the person (`?follow=me`): their own events (`me`) and every room they belong to,
   * now and later: a room they join (a DM opened to them, an invitation, on another device) is
   * subscribed from where they joined it, a room they leave is unsubscribed (`left`).
   */
  async follow(cursors: RoomCursor[]): Promise<void> {
    for (const cursor of cursors) this.pending.add(cursor.room)
    const user = currentUser(this.request)
    const follower = (this.follower = new Follower(memberKey(user), user.name, 'websocket', this.tab))
    follower.onReadable = () => this.flushFollowed()
    try {
      const { me, rooms } = await enterFollowing(this.request, cursors, 'websocket', { typing: true, page: this.page, tab: this.tab, follower })
      for (const cursor of cursors) this.pending.delete(cursor.room)
      // Rooms first: a room left while the connection was cut is handed what was said before the
      // leave, then her own events (the leave among them) take it off.
      for (const entry of rooms) this.attach(entry)
      if (me) this.attach(me)
    } catch (error) {
      // The store did not answer (many connections opening at once, a database away): nothing was
      // entered; the client is told to come back shortly rather than left following nothing.
      this.request.log[backendUnavailable(error) ? 'warn' : 'error']({ err: error }, 'a socket could not follow its person')
      if (!this.closed) this.socket.close(CloseCode.tryAgainLater, 'The chat is unavailable right now; reconnect shortly.')
    } finally {
      for (const cursor of cursors) this.pending.delete(cursor.room)
    }
  }

  /** A room entered for this socket: subscribed (its frames follow), or said refused. */
  private attach(entry: RoomEntry): void {
    if (!entry.ok) return this.send(JSON.stringify({ type: 'refused', status: entry.status, ...entry.body }))
    const { subscription, of: room } = entry
    if (!subscription) {
      // Read by the follower: said subscribed, its events come with the follower's (unless a subscription reads it already).
      if (this.closed) return
      if (this.subscriptions.has(room.name)) return void this.follower?.unfollow(room.name)
      return this.send(JSON.stringify({ type: 'subscribed', room: room.name, epoch: room.epoch, lastId: room.lastId, from: entry.from }))
    }
    // Keyed by the room's own name (one string for every reader of it, not one per cursor); `me` for the person's own events.
    const name = entry.room === room.name ? room.name : entry.room
    if (this.closed || this.subscriptions.has(name) || this.follower?.has(name)) return subscription.cancel()
    this.subscriptions.set(name, subscription)
    subscription.label = name
    subscription.onReadable = this.readable
    // `from`: the id its events start after (its cursor until one comes).
    this.send(JSON.stringify({ type: 'subscribed', room: name, epoch: room.epoch, lastId: room.lastId, from: entry.from }))
    if (subscription.pending) this.flush(name)
  }

  private unsubscribe(name: string, reason: string, removal?: Removal): void {
    if (this.follower?.unfollow(name)) return this.send(unsubscribedFrame(name, reason, removal))
    const subscription = this.subscriptions.get(name)
    if (!subscription) return
    this.subscriptions.delete(name)
    subscription.cancel()
    this.send(unsubscribedFrame(name, reason, removal))
  }

  /** Past the buffer limit nothing is written until the socket drains (then every room is flushed): the queues fill and a slow room lags. */
  private full(): boolean {
    if (this.socket.bufferedAmount <= this.limit) return false
    if (!this.waitingForDrain) {
      this.waitingForDrain = true
      this.request.raw.socket.once('drain', () => {
        this.waitingForDrain = false
        for (const room of this.subscriptions.keys()) this.flush(room)
        this.flushFollowed()
      })
    }
    return true
  }

  /** Sends what the rooms read by the follower have, a frame per room, and says which ended (lagged: subscribe again from your cursor; left). */
  private flushFollowed(): void {
    const follower = this.follower
    if (!follower?.pending || this.socket.readyState !== this.socket.OPEN || this.full()) return
    // No compression negotiated: an event alone goes as bytes made once for every connection, straight to the wire (as a one-room socket's do).
    const raw = this.socket.extensions === '' ? this.request.raw.socket : undefined
    for (const { room, events, signals, ended, removal } of follower.take()) {
      if (ended === 'closed') return this.socket.close(CloseCode.goingAway, 'server shutting down')
      if (ended) this.send(unsubscribedFrame(room.name, ended, removal))
      else if (raw && events.length === 1 && signals.length === 0) raw.write(roomWsFrame(room.name, events[0]!))
      else this.send(roomFrame(room.name, events, signals))
    }
  }

  /** Sends what the room has queued as one frame, or says why its subscription ended. */
  private flush(name: string): void {
    const subscription = this.subscriptions.get(name)
    if (!subscription || this.socket.readyState !== this.socket.OPEN) return
    if (subscription.state === 'closed') return this.socket.close(CloseCode.goingAway, 'server shutting down')
    if (subscription.state !== 'open') {
      this.subscriptions.delete(name)
      // lagged: subscribe again from your cursor; left: you left the room (this page, or everywhere).
      return this.send(unsubscribedFrame(name, subscription.state, subscription.removal))
    }
    if (this.full()) return
    if (!subscription.pending) return
    const events = subscription.take()
    this.send(roomFrame(name, events, subscription.takeSignals()))
    // The person's own events: the rooms they join are followed, those they leave dropped.
    if (name === ME) {
      followNews(
        events,
        (room, at) => void this.subscribe({ type: 'subscribe', room, lastReceived: at }, true),
        (room, removal) => this.unsubscribe(room, removal ? 'removed' : 'left', removal),
      )
    }
  }
}

/** A room no longer read on this socket, and why (lagged: subscribe again from your cursor; left; removed: a kick or ban, with who and why). */
function unsubscribedFrame(room: string, reason: string, removal: Removal | undefined): string {
  if (reason !== 'removed' || !removal) return JSON.stringify({ type: 'unsubscribed', room, reason })
  const { message, action, by, until } = removalBody(removal)
  return JSON.stringify({ type: 'unsubscribed', room, reason, action, by, until, message })
}
