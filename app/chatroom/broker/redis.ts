import { Redis } from 'ioredis'
import { createEvent, createTypingSignal, eventSchema, type EventDraft, type Signal, type StoredEvent } from '../event.js'
import type { FloodGuard } from '../flood.js'
import type { Roster } from '../presence.js'
import { defineScripts, readRoster, RedisPresenceStore } from './redis-presence.js'
import type { Broker, BrokerListener, PresenceRoom } from './broker.js'

export interface RedisBrokerOptions {
  url: string
  archiveSize: number
  /** Keys and channels start with this (several rooms or apps can share one Redis). */
  prefix?: string
  /** Told about connection trouble (logged by the app). */
  onError?: (error: unknown) => void
  /** Told when a connection is lost, is being retried, or is back. */
  onStatus?: (status: string) => void
}

// One atomic step: the next id, the event stored in the capped archive, and published.
// The event's JSON is made in JS (fixed key order); the script only puts the id in front.
const PUBLISH = `
local id = redis.call('INCR', KEYS[1])
local json = '{"id":' .. id .. ARGV[1]
redis.call('RPUSH', KEYS[2], json)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
redis.call('PUBLISH', KEYS[3], json)
return id
`

// A user's message times in a sorted set, on Redis's clock so every process agrees:
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

function parseStored(json: string): StoredEvent | undefined {
  try {
    const event = eventSchema.parse(JSON.parse(json))
    return { event, json }
  } catch {
    return undefined
  }
}

/**
 * Several processes, one room: ids and the archive live in Redis and are assigned by one
 * script, so every process sees the same consecutive ids in the same order. Each process
 * has one subscriber connection (not one per client) that hands events to its Chatroom.
 */
export class RedisBroker implements Broker {
  private readonly commands: Redis
  private readonly subscriber: Redis
  private readonly keys: { lastId: string; archive: string; events: string; signals: string }
  private readonly archiveSize: number
  private readonly prefix: string
  private listener: BrokerListener = { event: () => {}, signal: () => {} }

  constructor(options: RedisBrokerOptions) {
    const prefix = options.prefix ?? 'chat:'
    this.prefix = prefix
    this.keys = {
      lastId: `${prefix}lastId`,
      archive: `${prefix}archive`,
      events: `${prefix}events`,
      signals: `${prefix}signals`,
    }
    this.archiveSize = options.archiveSize
    // Commands fail fast while Redis is down (a clear 503) instead of queueing forever.
    const common = { maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true }
    this.commands = new Redis(options.url, common)
    this.subscriber = new Redis(options.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null })
    for (const [name, client] of [['commands', this.commands], ['subscriber', this.subscriber]] as const) {
      client.on('error', (error: unknown) => options.onError?.(error))
      client.on('close', () => options.onStatus?.(`redis ${name} connection lost`))
      client.on('reconnecting', (ms: number) => options.onStatus?.(`redis ${name} reconnecting in ${ms} ms`))
      client.on('ready', () => options.onStatus?.(`redis ${name} connection ready`))
    }
    this.commands.defineCommand('chatPublish', { numberOfKeys: 3, lua: PUBLISH })
    this.commands.defineCommand('chatFloodTake', { numberOfKeys: 1, lua: TAKE })
    defineScripts(this.commands)
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.keys.events) {
        const stored = parseStored(message)
        if (stored) this.listener.event(stored)
      } else if (channel === this.keys.signals) {
        this.listener.signal(createTypingSignal(message))
      }
    })
  }

  /** Connects both clients and subscribes; the subscription is renewed on every reconnect by ioredis. */
  async connect(): Promise<void> {
    await Promise.all([this.commands.connect(), this.subscriber.connect()])
    await this.subscriber.subscribe(this.keys.events, this.keys.signals)
  }

  /** Whether Redis answers now (for /readyz). */
  async ready(): Promise<boolean> {
    try {
      return (await this.commands.ping()) === 'PONG'
    } catch {
      return false
    }
  }

  async publish(draft: EventDraft): Promise<StoredEvent> {
    const timestamp = Date.now()
    // The JSON with id 0, minus its '{"id":0' head: the script writes the real id there.
    const template = createEvent(0, timestamp, draft).json.slice('{"id":0'.length)
    const run = this.commands as Redis & {
      chatPublish(k1: string, k2: string, k3: string, tail: string, size: number): Promise<number>
    }
    const id = await run.chatPublish(this.keys.lastId, this.keys.archive, this.keys.events, template, this.archiveSize)
    return createEvent(id, timestamp, draft)
  }

  async archive(after: number): Promise<StoredEvent[]> {
    const list = await this.commands.lrange(this.keys.archive, 0, -1)
    const out: StoredEvent[] = []
    for (const json of list) {
      const stored = parseStored(json)
      if (stored && stored.event.id > after) out.push(stored)
    }
    return out
  }

  signal(signal: Signal): void {
    this.commands.publish(this.keys.signals, signal.user).catch(() => {
      // Typing signals are best effort.
    })
  }

  /** Presence shared by every process: leases with a TTL, join and leave decided in Redis. */
  presenceStore(_room: PresenceRoom, ttlMs: number): RedisPresenceStore {
    return new RedisPresenceStore(this.commands, this.presenceKeys, this.archiveSize, ttlMs)
  }

  /** Who is online in the whole room, as of the id it returns. */
  roster(): Promise<Roster> {
    return readRoster(this.commands, this.presenceKeys)
  }

  private get presenceKeys() {
    return { prefix: this.prefix, lastId: this.keys.lastId, archive: this.keys.archive, events: this.keys.events }
  }

  /** A limit shared by every process on this Redis (per-user messages, sign-ins per IP). */
  floodGuard(scope: string, limit: number, windowMs: number): FloodGuard {
    const run = this.commands as Redis & {
      chatFloodTake(key: string, window: number, limit: number, nonce: string): Promise<number>
    }
    let nonce = 0
    return {
      take: (key) => run.chatFloodTake(`${this.prefix}${scope}:${key}`, Math.round(windowMs), limit, `${process.pid}:${++nonce}`),
    }
  }

  listen(listener: BrokerListener): void {
    this.listener = listener
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.subscriber.quit(), this.commands.quit()])
  }
}
