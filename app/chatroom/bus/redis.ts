import { Redis } from 'ioredis'
import { deadline, DeadlineError } from '../deadline.js'
import { parseSignal, readEvent, type Signal, type StoredEvent } from '../event.js'
import { LOBBY } from '../store/store.js'
import { MemoryFloodGuard, type FloodGuard } from '../flood.js'
import type { NameClaims } from '../names.js'
import type { RosterEntry } from '../presence.js'
import { defineScripts, readRoster, RedisPresenceStore } from './redis-presence.js'
import type { Bus, BusListener, PresenceRoom } from './bus.js'

export interface RedisBusOptions {
  url: string
  /** Keys and channels start with this (several rooms or apps can share one Redis). */
  prefix?: string
  /** Told about connection trouble (logged by the app). */
  onError?: (error: unknown) => void
  /** Told when a connection is lost, is being retried, or is back. */
  onStatus?: (status: string) => void
  /** Longest wait for any command, in ms (default 2000); past it Redis counts as hung until it answers a ping. */
  timeoutMs?: number
}

/** How often a hung Redis is pinged to see whether it answers again. */
const PROBE_MS = 250

// A key's take times in a sorted set, on Redis's clock so every process agrees:
// 0 and counted when under the limit, else milliseconds until the oldest leaves the window.
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], now, now .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
`

// A name claim: set when free or already this user's (then renewed), refused when another holds it.
const CLAIM = `
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
`

function parseStored(json: string): StoredEvent | undefined {
  try {
    const event = readEvent(JSON.parse(json))
    return event && { event, json }
  } catch {
    return undefined
  }
}

/**
 * Several processes, many rooms (BROKER=redis): each room's committed events and typing
 * signals go out on channels of their own, and a process subscribes to the rooms it has loaded
 * only (one subscriber connection per process, not one per client); presence leases and flood
 * limits live in Redis. Nothing here is the log: a Redis that restarts empty loses
 * presence leases and flood counts for a moment, never an event or an id.
 */
export class RedisBus implements Bus {
  readonly shared = true
  private readonly commands: Redis
  private readonly subscriber: Redis
  private readonly revoked: string
  /** Channel -> the room and what it carries, for the rooms this process watches. */
  private readonly watched = new Map<string, { room: string; kind: 'events' | 'signals' }>()
  readonly names: NameClaims
  private readonly prefix: string
  private readonly onError: (error: unknown) => void
  private listener: BusListener = { event: () => {}, signal: () => {}, revoked: () => {} }
  private readonly timeoutMs: number
  /** Set while Redis is connected but does not answer (stopped, overloaded): calls on a request's path fail at once. */
  private hung: Promise<void> | undefined
  private closing = false

  constructor(options: RedisBusOptions) {
    const prefix = options.prefix ?? 'chat:'
    this.prefix = prefix
    this.revoked = `${prefix}revoked`
    this.onError = options.onError ?? (() => {})
    // Commands fail fast while Redis is down (a clear error) instead of queueing forever.
    const common = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true }
    this.timeoutMs = options.timeoutMs ?? 2000
    // A Redis that is connected but stopped (SIGSTOP, a long fork) answers nothing: every command has a deadline.
    this.commands = new Redis(options.url, { ...common, commandTimeout: this.timeoutMs })
    this.subscriber = new Redis(options.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null })
    for (const [name, client] of [['commands', this.commands], ['subscriber', this.subscriber]] as const) {
      client.on('error', (error: unknown) => options.onError?.(error))
      client.on('close', () => options.onStatus?.(`redis ${name} connection lost`))
      client.on('reconnecting', (ms: number) => options.onStatus?.(`redis ${name} reconnecting in ${ms} ms`))
      client.on('ready', () => options.onStatus?.(`redis ${name} connection ready`))
    }
    this.commands.defineCommand('chatFloodTake', { numberOfKeys: 1, lua: TAKE })
    this.commands.defineCommand('chatClaim', { numberOfKeys: 1, lua: CLAIM })
    this.commands.defineCommand('chatRelease', { numberOfKeys: 1, lua: RELEASE })
    const scripted = this.commands as Redis & {
      chatClaim(key: string, userId: string, ttlMs: number): Promise<number>
      chatRelease(key: string, userId: string): Promise<number>
    }
    this.names = {
      claim: async (key, userId, ttlMs) => (await this.call(() => scripted.chatClaim(`${prefix}name:${key}`, userId, Math.round(ttlMs)))) === 1,
      release: async (key, userId) => void (await this.call(() => scripted.chatRelease(`${prefix}name:${key}`, userId))),
    }
    defineScripts(this.commands)
    // Bytes read by the subscriber: each connection's count is added up as it closes.
    this.subscriber.on('close', () => {
      const stream = this.subscriber.stream as { bytesRead?: number } | undefined
      if (!stream || stream === this.counted) return
      this.bytesBefore += stream.bytesRead ?? 0
      this.counted = stream
    })
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.revoked) return this.listener.revoked(message)
      const watched = this.watched.get(channel)
      if (!watched) return
      if (watched.kind === 'signals') {
        const signal = parseSignal(message)
        return signal && this.listener.signal(signal, watched.room)
      }
      const stored = parseStored(message)
      if (stored) this.listener.event(stored, watched.room)
    })
  }

  /** Connects both clients and subscribes to sign-outs; ioredis renews every subscription on each reconnect. */
  async connect(): Promise<void> {
    await Promise.all([this.commands.connect(), this.subscriber.connect()])
    await this.subscriber.subscribe(this.revoked)
  }

  /** Where a room's keys live: the lobby's where the one room's always were, others' beside them. */
  private keyPrefix(room: string): string {
    return room === LOBBY ? this.prefix : `${this.prefix}room:${room}:`
  }

  private channel(room: string, kind: 'events' | 'signals'): string {
    return `${this.keyPrefix(room)}${kind}`
  }

  watch(room: string): void {
    const channels = (['events', 'signals'] as const).map((kind) => {
      const channel = this.channel(room, kind)
      this.watched.set(channel, { room, kind })
      return channel
    })
    // What is published before the subscription is in place reaches the room by its catch-up from the store.
    this.subscriber.subscribe(...channels).catch(this.onError)
  }

  unwatch(room: string): void {
    const channels = (['events', 'signals'] as const).map((kind) => this.channel(room, kind))
    for (const channel of channels) this.watched.delete(channel)
    this.subscriber.unsubscribe(...channels).catch(this.onError)
  }

  private bytesBefore = 0
  private counted: unknown

  received(): { bytes: number; rooms: number } {
    const stream = this.subscriber.stream as { bytesRead?: number } | undefined
    const now = stream && stream !== this.counted ? (stream.bytesRead ?? 0) : 0
    // Each room watched is two channels (events and signals).
    return { bytes: this.bytesBefore + now, rooms: this.watched.size / 2 }
  }

  /** Whether Redis answers now (for /readyz): within a second, whatever Redis does. */
  async ready(): Promise<boolean> {
    if (this.hung) return false
    try {
      return (await deadline(this.commands.ping(), Math.min(this.timeoutMs, 900), 'Redis')) === 'PONG'
    } catch {
      return false
    }
  }

  /**
   * A command on a request's path: refused at once while Redis is hung; one that runs past the
   * deadline marks it hung, and a ping every PROBE_MS tells when it answers again.
   */
  private call<T>(command: () => Promise<T>): Promise<T> {
    if (this.hung) return Promise.reject(new DeadlineError('Redis', this.timeoutMs))
    return command().catch((error: unknown) => {
      if (error instanceof Error && /timed out/i.test(error.message)) this.markHung()
      throw error
    })
  }

  private markHung(): void {
    if (this.hung || this.closing) return
    this.onError(new Error(`Redis did not answer within ${this.timeoutMs} ms: refusing what needs it until it answers again`))
    this.hung = (async () => {
      while (!this.closing) {
        await new Promise((resolve) => setTimeout(resolve, PROBE_MS).unref())
        if (await this.commands.ping().then((pong) => pong === 'PONG', () => false)) break
      }
      this.hung = undefined
    })()
  }

  publish(stored: StoredEvent, room: string): void {
    // Best effort: a process that misses it catches up from the store.
    this.commands.publish(this.channel(room, 'events'), stored.json).catch(this.onError)
  }

  revoke(hash: string): void {
    // Best effort across processes; each also checks the store when its cache runs out.
    this.commands.publish(this.revoked, hash).catch(this.onError)
  }

  signal(signal: Signal, room: string): void {
    this.commands.publish(this.channel(room, 'signals'), signal.json).catch(() => {
      // Signals are best effort.
    })
  }

  /** A room's presence, shared by every process: leases with a TTL, join and leave decided in Redis. */
  presenceStore(room: PresenceRoom, ttlMs: number, name: string): RedisPresenceStore {
    return new RedisPresenceStore(this.commands, room, this.keyPrefix(name), ttlMs)
  }

  /** Who is online in the whole room, on every process. */
  roster(room: string): Promise<RosterEntry[]> {
    return readRoster(this.commands, this.keyPrefix(room))
  }

  /**
   * A limit shared by every process on this Redis (per-user messages, sign-ins per IP). While
   * Redis is away each process counts on its own, so the chat keeps working: the log is not here.
   */
  floodGuard(scope: string, limit: number, windowMs: number): FloodGuard {
    const run = this.commands as Redis & {
      chatFloodTake(key: string, window: number, limit: number, nonce: string): Promise<number>
    }
    const local = new MemoryFloodGuard(limit, windowMs)
    let nonce = 0
    return {
      take: (key) =>
        this.call(() => run.chatFloodTake(`${this.prefix}${scope}:${key}`, Math.round(windowMs), limit, `${process.pid}:${++nonce}`)).catch((error: unknown) => {
          this.onError(error)
          return local.take(key)
        }),
    }
  }

  listen(listener: BusListener): void {
    this.listener = listener
  }

  async close(): Promise<void> {
    this.closing = true
    // quit() waits for Redis to answer; a hung one is disconnected instead.
    const quit = (client: Redis) => deadline(client.quit(), this.timeoutMs, 'Redis').catch(() => client.disconnect())
    await Promise.allSettled([quit(this.subscriber), quit(this.commands)])
  }
}
