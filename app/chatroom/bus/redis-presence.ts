import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Member, PresenceStore, RosterEntry } from '../presence.js'
import type { PresenceRoom } from './bus.js'

// Shared by the scripts: Redis's clock, the keys, and "is the user's last lease gone?".
// Redis only decides join and leave; the process that learns of one publishes it through the
// room, so its id comes from the store like every other event's.
const COMMON = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local P = ARGV[1]
local leases, online, avatars = P .. 'presence:leases', P .. 'presence:online', P .. 'presence:avatars'
local gone = {}
local function check(user)
  local mine = P .. 'presence:user:' .. user
  redis.call('ZREMRANGEBYSCORE', mine, '-inf', now)
  if redis.call('ZCARD', mine) == 0 and redis.call('SREM', online, user) == 1 then
    table.insert(gone, user)
    table.insert(gone, redis.call('HGET', avatars, user) or '')
    redis.call('HDEL', avatars, user)
  end
end
local function lease(node, ttl, user)
  local mine = P .. 'presence:user:' .. user
  redis.call('ZADD', mine, now + ttl, node)
  redis.call('PEXPIRE', mine, ttl * 3)
  redis.call('ZADD', leases, now + ttl, node .. '\\n' .. user)
end
`

// ARGV: prefix, node, ttl, user, avatar. Returns 1 when the user was not online anywhere.
const ARRIVE = COMMON + `
local user = ARGV[4]
lease(ARGV[2], tonumber(ARGV[3]), user)
if ARGV[5] ~= '' then redis.call('HSET', avatars, user, ARGV[5]) end
return redis.call('SADD', online, user)
`

// ARGV: prefix, node, user. Returns {user, avatar} when that was their last lease.
const DEPART = COMMON + `
local node, user = ARGV[2], ARGV[3]
redis.call('ZREM', P .. 'presence:user:' .. user, node)
redis.call('ZREM', leases, node .. '\\n' .. user)
check(user)
return gone
`

// ARGV: prefix, node, ttl, users...: renews this node's leases (and, after Redis lost its
// data, puts its users back online without a second join), then expires every node's overdue
// leases (a process that died takes its users with it). Returns {user, avatar, ...} that left.
const TICK = COMMON + `
local node, ttl = ARGV[2], tonumber(ARGV[3])
for i = 4, #ARGV do
  lease(node, ttl, ARGV[i])
  redis.call('SADD', online, ARGV[i])
end
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 500)
for _, entry in ipairs(expired) do
  redis.call('ZREM', leases, entry)
  local cut = string.find(entry, '\\n', 1, true)
  local who, user = string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1)
  redis.call('ZREM', P .. 'presence:user:' .. user, who)
  check(user)
end
return gone
`

// ARGV: prefix: who is online, with avatars.
const ROSTER = `
local P = ARGV[1]
return { cjson.encode(redis.call('SMEMBERS', P .. 'presence:online')), cjson.encode(redis.call('HGETALL', P .. 'presence:avatars')) }
`

type Scripted = Redis & {
  chatArrive(...argv: (string | number)[]): Promise<number>
  chatDepart(...argv: (string | number)[]): Promise<string[]>
  chatTick(...argv: (string | number)[]): Promise<string[]>
  chatRoster(prefix: string): Promise<[string, string]>
}

export function defineScripts(redis: Redis): void {
  redis.defineCommand('chatArrive', { numberOfKeys: 0, lua: ARRIVE })
  redis.defineCommand('chatDepart', { numberOfKeys: 0, lua: DEPART })
  redis.defineCommand('chatTick', { numberOfKeys: 0, lua: TICK })
  redis.defineCommand('chatRoster', { numberOfKeys: 0, lua: ROSTER })
}

/** Who is online in the whole room, from the shared set. */
export async function readRoster(redis: Redis, prefix: string): Promise<RosterEntry[]> {
  const [usersJson, avatarsJson] = await (redis as Scripted).chatRoster(prefix)
  // cjson encodes an empty table as {}, not [].
  const names = usersJson === '{}' ? [] : (JSON.parse(usersJson) as string[])
  const flat = avatarsJson === '{}' ? [] : (JSON.parse(avatarsJson) as string[])
  const avatars = new Map<string, string>()
  for (let i = 0; i + 1 < flat.length; i += 2) avatars.set(flat[i]!, flat[i + 1]!)
  return names.map((name) => (avatars.has(name) ? { name, avatar: avatars.get(name)! } : { name }))
}

/**
 * Presence across processes: each process holds leases (TTL `ttlMs`) on the users it serves,
 * renewed on its sweeps. A join is published when a user gets their first lease anywhere, a
 * leave when their last one is released or expires; Redis decides, the room publishes.
 */
export class RedisPresenceStore implements PresenceStore {
  private readonly redis: Scripted
  private readonly room: PresenceRoom
  private readonly prefix: string
  private readonly ttlMs: number
  private readonly node = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  private lastRenew = 0

  constructor(redis: Redis, room: PresenceRoom, prefix: string, ttlMs: number) {
    this.redis = redis as Scripted
    this.room = room
    this.prefix = prefix
    this.ttlMs = ttlMs
  }

  async arrive(member: Member): Promise<void> {
    if ((await this.redis.chatArrive(this.prefix, this.node, this.ttlMs, member.name, member.avatar ?? '')) === 1) {
      await this.room.join(member.name, member.avatar)
    }
  }

  async depart(member: Member): Promise<void> {
    await this.leave(await this.redis.chatDepart(this.prefix, this.node, member.name))
  }

  /** Renews this node's leases a few times per TTL, and expires dead nodes' leases. */
  async tick(held: Member[]): Promise<void> {
    const now = Date.now()
    if (now - this.lastRenew < this.ttlMs / 4) return
    this.lastRenew = now
    await this.leave(await this.redis.chatTick(this.prefix, this.node, this.ttlMs, ...held.map((m) => m.name)))
  }

  private async leave(gone: string[]): Promise<void> {
    for (let i = 0; i + 1 < gone.length; i += 2) await this.room.left(gone[i]!, gone[i + 1] || undefined)
  }
}
