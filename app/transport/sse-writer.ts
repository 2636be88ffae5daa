import type { Socket } from 'node:net'
import { sseBytesFor, type StoredEvent } from '../chatroom/event.js'
import type { Removal, Subscription } from '../chatroom/subscription.js'
import { removalBody } from './protocol.js'
import type { Follower } from '../chatroom/follower.js'
import { ME } from './person-stream.js'

export interface SseWriterOptions {
  /** Unsent bytes past which nothing more is written (SOCKET_BUFFER_LIMIT, as for sockets). */
  limit: number
  /** Milliseconds between heartbeats (SSE_HEARTBEAT). */
  heartbeatMs: number
}

/**
 * Every open stream, by heartbeat period: one timer per period for all of them, none per
 * stream. A stream that wrote nothing for a period gets a comment line, which proxies and
 * browsers ignore but which keeps idle-connection timers from cutting it.
 */
const beating = new Map<number, { streams: Set<SseWriter>; timer: NodeJS.Timeout }>()

/** Event streams open on this process (for /metrics). */
export function openStreams(): number {
  let n = 0
  for (const { streams } of beating.values()) n += streams.size
  return n
}

function beat(writer: SseWriter, ms: number): () => void {
  let group = beating.get(ms)
  if (!group) {
    const streams = new Set<SseWriter>()
    const timer = setInterval(() => {
      for (const stream of streams) stream.heartbeat()
    }, ms)
    timer.unref()
    beating.set(ms, (group = { streams, timer }))
  }
  const { streams, timer } = group
  streams.add(writer)
  return () => {
    streams.delete(writer)
    if (streams.size === 0) {
      clearInterval(timer)
      beating.delete(ms)
    }
  }
}

/**
 * Writes one subscription to one Server-Sent Events response: what is queued goes out once per
 * tick as the shared bytes of each event (`id:` is the event id, so the browser's Last-Event-ID
 * resumes exactly), typing signals as `event: typing`. The slow-reader rule is the socket's:
 * nothing is written past `limit` unsent bytes, the queue fills, the room drops the reader, and
 * the stream ends (the browser reconnects from its last id). The response closing cancels the
 * subscription, which lets go of the user's presence.
 */
/** One room of a stream of several: its subscription (none when the stream's follower reads it) and its cursor. */
export interface StreamRoom {
  room: string
  epoch: string
  last: number
  subscription: Subscription | undefined
}

export class SseWriter {
  private readonly res: Socket
  private readonly limit: number
  private subscription: Subscription | undefined
  /** A stream of several rooms: each room's subscription, and its cursor (`ROOM:EPOCH:ID`, the stream's id is all of them). */
  private rooms: StreamRoom[] | undefined
  /** Following the person: told of their own events as they go out (it adds and drops rooms). */
  private news: ((events: readonly StoredEvent[]) => void) | undefined
  /** Following the person: the rooms read in the background (their entries have no subscription). */
  private follower: Follower | undefined
  private waitingForDrain = false
  private wrote = false
  private readonly stopBeating: () => void

  constructor(res: Socket, options: SseWriterOptions) {
    this.res = res
    this.limit = options.limit
    this.stopBeating = beat(this, options.heartbeatMs)
    res.on('close', () => {
      this.stopBeating()
      this.subscription?.cancel()
      for (const entry of this.rooms ?? []) entry.subscription?.cancel()
      this.follower?.cancel()
    })
  }

  /**
   * Starts a stream of several rooms: each event's data is the event with `"room"` first, and the
   * stream's `id:` is every room's cursor (`ROOM:EPOCH:ID,…`), so the browser's Last-Event-ID
   * resumes all of them. A room that must start over ends the stream (the client reconnects).
   */
  attachRooms(entries: StreamRoom[], greeting: string, news?: (events: readonly StoredEvent[]) => void, follower?: Follower): void {
    if (this.res.destroyed) {
      follower?.cancel()
      return entries.forEach((e) => e.subscription?.cancel())
    }
    this.rooms = entries
    this.news = news
    this.follower = follower
    if (follower) follower.onReadable = this.flush
    for (const entry of entries) if (entry.subscription) entry.subscription.onReadable = this.flush
    this.write(`retry: 2000\n${greeting}`)
    if (follower?.pending || entries.some((e) => e.subscription?.pending)) setImmediate(this.flush)
  }

  hasRoom(room: string): boolean {
    return this.rooms?.some((r) => r.room === room) ?? false
  }

  /** A room joined while the stream is open (the person's stream): its events follow from its cursor. */
  addRoom(entry: StreamRoom): void {
    const had = this.rooms?.find((r) => r.room === entry.room)
    if (!this.rooms || this.res.destroyed || this.res.writableEnded || had) {
      // Entered twice (two joins in a row): the follower lets go of it unless that is how the stream reads it.
      if (entry.subscription) entry.subscription.cancel()
      else if (!had || had.subscription) this.follower?.unfollow(entry.room)
      return
    }
    this.rooms.push(entry)
    if (entry.subscription) entry.subscription.onReadable = this.flush
    this.write(`event: subscribed\ndata: ${JSON.stringify({ room: entry.room, epoch: entry.epoch, lastId: entry.last })}\n\n`)
    if (entry.subscription?.pending) setImmediate(this.flush)
  }

  /** A room the person left (the person's stream): its subscription ends and the stream says so; the others go on. */
  dropRoom(room: string, reason: string, removal?: Removal): void {
    const at = this.rooms?.findIndex((r) => r.room === room) ?? -1
    if (at < 0) return
    const [entry] = this.rooms!.splice(at, 1)
    if (entry!.subscription) entry!.subscription.cancel()
    else this.follower?.unfollow(room)
    if (this.res.writableEnded) return
    // A kick or ban: `event: removed` with who and why (the person's page says it); the stream goes on with the other rooms.
    if (removal) this.write(`event: removed\ndata: ${JSON.stringify(removalBody(removal, room))}\n\n`)
    else this.write(`event: unsubscribed\ndata: ${JSON.stringify({ room, reason })}\n\n`)
  }

  private cursorSet(): string {
    return this.rooms!.map((r) => `${r.room}:${r.epoch}:${r.last}`).join(',')
  }

  private flushRooms(rooms: NonNullable<SseWriter['rooms']>): void {
    for (const entry of [...rooms]) {
      const { subscription } = entry
      if (!subscription) continue
      if (subscription.state === 'lagged') return this.end()
      if (subscription.state === 'closed') return this.end('event: bye\ndata: {"reason":"server shutting down"}\n\n')
      // Following the person, a room they left is dropped and the others go on; otherwise the stream ends.
      if (subscription.state === 'left' && this.news) this.dropRoom(entry.room, 'left')
      else if (subscription.state === 'left') return this.end('event: left\ndata: {"reason":"you left the room"}\n\n')
      else if (subscription.state === 'removed') this.dropRoom(entry.room, 'removed', subscription.removal)
    }
    if (this.full()) return
    let out = ''
    // The rooms the follower reads: one that ended is said as a subscription's end is.
    for (const { room, events, signals, ended, removal } of this.follower?.take() ?? []) {
      if (ended === 'lagged') return this.end(out || undefined)
      if (ended === 'closed') return this.end(`${out}event: bye\ndata: {"reason":"server shutting down"}\n\n`)
      if (ended === 'left' || ended === 'removed') {
        this.dropRoom(room.name, ended, removal)
        continue
      }
      const entry = rooms.find((r) => r.room === room.name)
      if (!entry) continue
      const name = JSON.stringify(room.name)
      for (const stored of events) {
        entry.last = stored.event.id
        out += `id: ${this.cursorSet()}\ndata: {"room":${name},${stored.json.slice(1)}\n\n`
      }
      for (const signal of signals) out += `event: ${signal.type}\ndata: {"room":${name},${signal.json.slice(1)}\n\n`
    }
    let news: StoredEvent[] | undefined
    for (const entry of rooms) {
      if (!entry.subscription?.pending) continue
      const room = JSON.stringify(entry.room)
      // The person's own events carry their room already: their data is the event as it is.
      const mine = this.news !== undefined && entry.room === ME
      const taken = entry.subscription.take()
      for (const stored of taken) {
        entry.last = stored.event.id
        out += `id: ${this.cursorSet()}\ndata: ${mine ? stored.json : `{"room":${room},${stored.json.slice(1)}`}\n\n`
      }
      if (mine) news = taken
      for (const signal of entry.subscription.takeSignals()) out += `event: ${signal.type}\ndata: {"room":${room},${signal.json.slice(1)}\n\n`
    }
    if (out) this.write(out)
    if (news?.length) this.news!(news)
  }

  /** Starts the stream: the reconnect delay and `greeting` first, then what the subscription has. */
  attach(subscription: Subscription, greeting: string): void {
    if (this.res.destroyed) return subscription.cancel()
    this.subscription = subscription
    subscription.onReadable = this.flush
    this.write(`retry: 2000\n${greeting}`)
    if (subscription.pending) setImmediate(this.flush)
  }

  /** Sends everything queued, or ends the stream saying why (the browser's EventSource reconnects unless told not to). */
  readonly flush = (): void => {
    const { res, subscription } = this
    if (this.rooms && !res.writableEnded) return this.flushRooms(this.rooms)
    if (!subscription || res.writableEnded) return
    if (subscription.state === 'lagged') return this.end()
    if (subscription.state === 'closed') return this.end('event: bye\ndata: {"reason":"server shutting down"}\n\n')
    if (subscription.state === 'left') return this.end('event: left\ndata: {"reason":"you left the room"}\n\n')
    if (subscription.state === 'removed') return this.end(`event: removed\ndata: ${JSON.stringify(removalBody(subscription.removal!))}\n\n`)
    if (subscription.state !== 'open' || this.full()) return
    if (subscription.pending) this.write(sseBytesFor(subscription.take(), subscription.takeSignals()))
  }

  /** Called by the shared timer: a comment, unless something was written since the last beat. */
  heartbeat(): void {
    if (!this.wrote && !this.res.writableEnded && !this.full()) this.res.write(':\n\n')
    this.wrote = false
  }

  /** Ends the stream (with a last message). */
  end(last?: string): void {
    if (this.res.writableEnded) return
    this.stopBeating()
    if (last === undefined) this.res.end()
    else this.res.end(last)
  }

  private write(chunk: string | Buffer): void {
    this.wrote = true
    this.res.write(chunk)
  }

  private full(): boolean {
    if (this.res.writableLength <= this.limit) return false
    if (!this.waitingForDrain) {
      this.waitingForDrain = true
      this.res.once('drain', this.onDrain)
    }
    return true
  }

  private readonly onDrain = (): void => {
    this.waitingForDrain = false
    this.flush()
  }
}
