// The chat client: where the server is, how to reach it, and the rooms joined.
import type { StateInfo } from './connection.js'
import { Emitter } from './emitter.js'
import { FollowStream } from './follow.js'
import { Net, type FetchLike, type SocketConstructor, type StorageLike } from './net.js'
import { TRANSPORTS, type Transport } from './protocol.js'
import { ChatRoom } from './room.js'

export interface ChatOptions {
  /** The server, e.g. `http://127.0.0.1:9000` (in a browser, the page's origin by default). */
  base?: string
  /** The session cookie to send (`signIn()` gives one); a browser sends its own. */
  cookie?: string
  /** fetch (the global one by default). */
  fetch?: FetchLike
  /**
   * A WebSocket class: the global one by default (browsers, Node 22+). In Node 20, or to send
   * `cookie` with the upgrade, pass `WebSocket` of the `ws` package. Without one, WebSocket is
   * skipped and the next way is used.
   */
  WebSocket?: SocketConstructor
  /** The ways in, strongest first (default: all three). One way: kept on it; several: falls back and comes back up. */
  transports?: Transport[]
  /** On a weaker way, how often to try the stronger ones again (default 60 s). */
  upgradeAfterMs?: number
  /** Where each room's outbox is kept across restarts (e.g. localStorage); in memory only without it. */
  storage?: StorageLike
  /** The storage key of a room's outbox (default `chat.outbox.v1:ROOM`). */
  storageKey?: (room: string) => string
}

export interface JoinOptions {
  /** Resume after this cursor (one's own saved one): events after `lastId` of log `epoch`. */
  cursor?: { epoch: string; lastId: number }
  /** A page's id (the room pages' data-tab): its leave ends only its own connections. */
  tab?: string
  /**
   * The person's stream (follow()) to ride: the room opens no connection of its own; its events
   * come from the stream, from where the stream follows it (load what came before with history()).
   */
  via?: FollowStream
}

export interface ChatEvents {
  /** A room's connection changed. */
  state: [info: StateInfo & { room: string }]
}

export class ChatClient extends Emitter<ChatEvents> {
  private readonly net: Net
  private readonly transports: readonly Transport[]
  private readonly joined = new Map<string, ChatRoom>()
  private readonly streams = new Set<FollowStream>()

  constructor(private readonly options: ChatOptions = {}) {
    super()
    this.net = new Net(options)
    const wanted = options.transports ?? [...TRANSPORTS]
    // No WebSocket here (Node 20 without `ws`): the next way.
    const usable = wanted.filter((t) => t !== 'websocket' || this.net.sockets)
    if (usable.length === 0) throw new TypeError(`ChatClient: none of the ways ${wanted.join(', ')} can be used here (pass { WebSocket }).`)
    this.transports = usable
  }

  /** The room `name`, connected (the same handle when joined already). Listen to it right away: it connects on the next tick. */
  join(name: string, options: JoinOptions = {}): ChatRoom {
    const known = this.joined.get(name)
    if (known) return known
    const room = new ChatRoom(name, {
      net: this.net,
      transports: this.transports,
      upgradeAfterMs: this.options.upgradeAfterMs ?? 60_000,
      storage: this.options.storage,
      storageKey: this.options.storageKey?.(name) ?? `chat.outbox.v1:${name}`,
      tab: options.tab,
      epoch: options.cursor?.epoch ?? options.via?.cursors[name]?.epoch ?? '',
      lastId: options.cursor?.lastId ?? 0,
      via: options.via,
    })
    this.joined.set(name, room)
    room.on('state', (info) => this.emit('state', { ...info, room: name }))
    room.on('end', () => this.joined.delete(name))
    queueMicrotask(() => room.start())
    return room
  }

  /**
   * The person's stream: one connection for every room the person belongs to, now and later,
   * and their own events (see FollowStream). Listen to it right away: it connects on the next tick.
   */
  follow(options: { tab?: string; cursors?: Record<string, { epoch: string; lastId: number }> } = {}): FollowStream {
    const stream = new FollowStream({
      net: this.net,
      transports: this.transports,
      upgradeAfterMs: this.options.upgradeAfterMs ?? 60_000,
      tab: options.tab,
      cursors: options.cursors,
    })
    this.streams.add(stream)
    stream.on('end', () => this.streams.delete(stream))
    queueMicrotask(() => stream.start())
    return stream
  }

  /** The rooms joined. */
  get rooms(): ChatRoom[] {
    return [...this.joined.values()]
  }

  /** Lets go of one room (its connection closed; its outbox stays in storage). */
  leave(name: string): void {
    this.joined.get(name)?.close()
    this.joined.delete(name)
  }

  /** Lets go of every room. */
  close(): void {
    for (const room of this.joined.values()) room.close()
    this.joined.clear()
    for (const stream of this.streams) stream.close()
    this.streams.clear()
  }
}

/**
 * Signs in as a guest named `name` (POST /signin, as the welcome form does) and returns the
 * session cookie to give ChatClient in Node (`{ cookie }`). Throws with the server's words when
 * the name is refused (taken, registered, invalid).
 */
export async function signIn(base: string, name: string, options: { fetch?: FetchLike } = {}): Promise<string> {
  const fetchImpl = options.fetch ?? globalThis.fetch
  const res = await fetchImpl(`${base.replace(/\/+$/, '')}/signin`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ user: name, transport: 'auto' }),
    redirect: 'manual',
  })
  const cookies = typeof res.headers.getSetCookie === 'function' ? res.headers.getSetCookie() : [res.headers.get('set-cookie') ?? '']
  const session = cookies.map((c) => /^chat_session=([^;]+)/.exec(c)?.[1]).find(Boolean)
  if (res.status === 303 && session) {
    await res.body?.cancel()
    return `chat_session=${session}`
  }
  const body = (await res.json().catch(() => undefined)) as { message?: string } | undefined
  throw new Error(`Sign-in as ${name} refused (HTTP ${res.status}): ${body?.message ?? 'no session was given'}`)
}
