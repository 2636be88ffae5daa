import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import { isGuest, memberKey, type Member, type PresenceStore, type RosterEntry } from '../presence.js'

// A member's name as Redis keeps it, with how their events are marked (provider, guest), so the
// process that publishes their leave (maybe another one) marks it as their join was marked.
// Names never hold U+0000 (control characters are refused), so it separates the fields.
const encodeName = (member: Member) => (member.provider || isGuest(member) ? `${member.name}\u0000${member.provider?.name ?? ''}\u0000${isGuest(member) ? 'g' : ''}` : member.name)
function decodeName(stored: string): { name: string; via?: string; guest?: true } {
  const [name, via, guest] = stored.split('\u0000')
  return { name: name!, ...(via && { via }), ...(guest && { guest: true as const }) }
}
import type { PresenceRoom } from './bus.js'

// Shared by the scripts: Redis's clock, the keys, and "is the user's last lease gone?".
// Redis only decides join and leave; the process that learns of one publishes it through the
// room, so its id comes from the store like every other event's.
const COMMON = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local P = ARGV[1]
local leases, online, avatars, names = P .. 'presence:leases', P .. 'presence:online', P .. 'presence:avatars', P .. 'presence:names'
local gone = {}
-- Users are keys (their ids); names and avatars are kept beside them for the leave.
local function check(user)
  local mine = P .. 'presence:user:' .. user
  redis.call('ZREMRANGEBYSCORE', mine, '-inf', now)
  if redis.call('ZCARD', mine) == 0 and redis.call('SREM', online, user) == 1 then
    table.insert(gone, user)
    table.insert(gone, redis.call('HGET', names, user) or user)
    table.insert(gone, redis.call('HGET', avatars, user) or '')
    redis.call('HDEL', avatars, user)
    redis.call('HDEL', names, user)
  end
end
local function lease(node, ttl, user)
  local mine = P .. 'presence:user:' .. user
  redis.call('ZADD', mine, now + ttl, node)
  redis.call('PEXPIRE', mine, ttl * 3)
  redis.call('ZADD', leases, now + ttl, node .. '\\n' .. user)
end
`

// ARGV: prefix, node, ttl, user, name, avatar. Returns 1 when the user was not online anywhere.
const ARRIVE = COMMON + `
local user = ARGV[4]
lease(ARGV[2], tonumber(ARGV[3]), user)
redis.call('HSET', names, user, ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', avatars, user, ARGV[6]) end
return redis.call('SADD', online, user)
`

// ARGV: prefix, node, user. Returns {user, name, avatar} when that was their last lease.
const DEPART = COMMON + `
local node, user = ARGV[2], ARGV[3]
redis.call('ZREM', P .. 'presence:user:' .. user, node)
redis.call('ZREM', leases, node .. '\\n' .. user)
check(user)
return gone
`

// ARGV: prefix, node, ttl, users...: renews this node's leases (and, after Redis lost its
// data, puts its users back online without a second join), then expires every node's overdue
// leases (a process that died takes its users with it). Returns {user, name, avatar, ...} that left.
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

// ARGV: prefix: who is online (their names), with avatars.
const ROSTER = `
local P = ARGV[1]
local out = {}
for _, user in ipairs(redis.call('SMEMBERS', P .. 'presence:online')) do
  table.insert(out, redis.call('HGET', P .. 'presence:names', user) or user)
  table.insert(out, redis.call('HGET', P .. 'presence:avatars', user) or '')
end
return out
`

type Scripted = Redis & {
  chatArrive(...argv: (string | number)[]): Promise<number>
  chatDepart(...argv: (string | number)[]): Promise<string[]>
  chatTick(...argv: (string | number)[]): Promise<string[]>
  chatRoster(prefix: string): Promise<string[]>
}

export function defineScripts(redis: Redis): void {
  redis.defineCommand('chatArrive', { numberOfKeys: 0, lua: ARRIVE })
  redis.defineCommand('chatDepart', { numberOfKeys: 0, lua: DEPART })
  redis.defineCommand('chatTick', { numberOfKeys: 0, lua: TICK })
  redis.defineCommand('chatRoster', { numberOfKeys: 0, lua: ROSTER })
}

/** Who is online in the whole room, from the shared set. */
export async function readRoster(redis: Redis, prefix: string): Promise<RosterEntry[]> {
  const flat = await (redis as Scripted).chatRoster(prefix)
  const out: RosterEntry[] = []
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const { name } = decodeName(flat[i]!)
    out.push(flat[i + 1] ? { name, avatar: flat[i + 1]! } : { name })
  }
  return out
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
    if ((await this.redis.chatArrive(this.prefix, this.node, this.ttlMs, memberKey(member), encodeName(member), member.avatar ?? '')) === 1) {
      await this.room.join(member.name, member.avatar, member.provider?.name, isGuest(member))
    }
  }

  async depart(member: Member): Promise<void> {
    await this.leave(await this.redis.chatDepart(this.prefix, this.node, memberKey(member)))
  }

  /** Renews this node's leases a few times per TTL, and expires dead nodes' leases. */
  async tick(held: Member[]): Promise<void> {
    const now = Date.now()
    if (now - this.lastRenew < this.ttlMs / 4) return
    this.lastRenew = now
    await this.leave(await this.redis.chatTick(this.prefix, this.node, this.ttlMs, ...held.map(memberKey)))
  }

  private async leave(gone: string[]): Promise<void> {
    for (let i = 0; i + 2 < gone.length; i += 3) {
      const { name, via, guest } = decodeName(gone[i + 1]!)
      await this.room.left(name, gone[i + 2] || undefined, via, guest)
    }
  }
}
