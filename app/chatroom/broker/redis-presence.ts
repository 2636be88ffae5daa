import { hostname } from 'node:os'
import { randomBytes } from 'node:crypto'
import type { Redis } from 'ioredis'
import type { Member, PresenceStore, Roster } from '../presence.js'

/** Keys of one room; `prefix` builds each user's lease set inside the scripts. */
export interface PresenceKeys {
  prefix: string
  lastId: string
  archive: string
  events: string
}

// Shared by the scripts: Redis's clock, and a join/leave event made and published exactly as
// the broker's publish script does (same id counter, archive and channel; same key order).
const COMMON = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local P = ARGV[1]
local leases, online, avatars = P .. 'presence:leases', P .. 'presence:online', P .. 'presence:avatars'
local function emit(kind, user)
  local id = redis.call('INCR', KEYS[1])
  local json = '{"id":' .. id .. ',"type":"' .. kind .. '","user":' .. cjson.encode(user) .. ',"timestamp":' .. now
  local avatar = redis.call('HGET', avatars, user)
  if avatar then json = json .. ',"avatar":' .. cjson.encode(avatar) end
  json = json .. '}'
  redis.call('RPUSH', KEYS[2], json)
  redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)
  redis.call('PUBLISH', KEYS[3], json)
end
-- The user's last lease is gone: one leave, if a join was published.
local function gone(user)
  local mine = P .. 'presence:user:' .. user
  redis.call('ZREMRANGEBYSCORE', mine, '-inf', now)
  if redis.call('ZCARD', mine) == 0 and redis.call('SREM', online, user) == 1 then
    emit('leave', user)
    redis.call('HDEL', avatars, user)
  end
end
`

// ARGV: prefix, archiveSize, node, ttl, user, avatar
const ARRIVE = COMMON + `
local node, ttl, user = ARGV[3], tonumber(ARGV[4]), ARGV[5]
local mine = P .. 'presence:user:' .. user
redis.call('ZADD', mine, now + ttl, node)
redis.call('PEXPIRE', mine, ttl * 3)
redis.call('ZADD', leases, now + ttl, node .. '\\n' .. user)
if ARGV[6] ~= '' then redis.call('HSET', avatars, user, ARGV[6]) end
if redis.call('SADD', online, user) == 1 then emit('join', user) end
`

// ARGV: prefix, archiveSize, node, user
const DEPART = COMMON + `
local node, user = ARGV[3], ARGV[4]
redis.call('ZREM', P .. 'presence:user:' .. user, node)
redis.call('ZREM', leases, node .. '\\n' .. user)
gone(user)
`

// ARGV: prefix, archiveSize, node, ttl, users...: renew this node's leases, then expire every
// node's overdue ones (a process that died takes its users with it).
const TICK = COMMON + `
local node, ttl = ARGV[3], tonumber(ARGV[4])
for i = 5, #ARGV do
  local mine = P .. 'presence:user:' .. ARGV[i]
  redis.call('ZADD', mine, now + ttl, node)
  redis.call('PEXPIRE', mine, ttl * 3)
  redis.call('ZADD', leases, now + ttl, node .. '\\n' .. ARGV[i])
end
local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, 500)
for _, entry in ipairs(expired) do
  redis.call('ZREM', leases, entry)
  local cut = string.find(entry, '\\n', 1, true)
  local who, user = string.sub(entry, 1, cut - 1), string.sub(entry, cut + 1)
  redis.call('ZREM', P .. 'presence:user:' .. user, who)
  gone(user)
end
`

// ARGV: prefix: who is online with avatars, and the id that snapshot matches.
const ROSTER = `
local P = ARGV[1]
local users = redis.call('SMEMBERS', P .. 'presence:online')
local avatars = redis.call('HGETALL', P .. 'presence:avatars')
return { redis.call('GET', KEYS[1]) or '0', cjson.encode(users), cjson.encode(avatars) }
`

type Scripted = Redis & {
  chatArrive(k1: string, k2: string, k3: string, ...argv: (string | number)[]): Promise<unknown>
  chatDepart(k1: string, k2: string, k3: string, ...argv: (string | number)[]): Promise<unknown>
  chatTick(k1: string, k2: string, k3: string, ...argv: (string | number)[]): Promise<unknown>
  chatRoster(k1: string, prefix: string): Promise<[string, string, string]>
}

export function defineScripts(redis: Redis): void {
  redis.defineCommand('chatArrive', { numberOfKeys: 3, lua: ARRIVE })
  redis.defineCommand('chatDepart', { numberOfKeys: 3, lua: DEPART })
  redis.defineCommand('chatTick', { numberOfKeys: 3, lua: TICK })
  redis.defineCommand('chatRoster', { numberOfKeys: 1, lua: ROSTER })
}

/** Who is online: from the shared set, consistent with the id it was read at. */
export async function readRoster(redis: Redis, keys: PresenceKeys): Promise<Roster> {
  const [lastId, usersJson, avatarsJson] = await (redis as Scripted).chatRoster(keys.lastId, keys.prefix)
  // cjson encodes an empty table as {}, not [].
  const names = usersJson === '{}' ? [] : (JSON.parse(usersJson) as string[])
  const flat = avatarsJson === '{}' ? [] : (JSON.parse(avatarsJson) as string[])
  const avatars = new Map<string, string>()
  for (let i = 0; i + 1 < flat.length; i += 2) avatars.set(flat[i]!, flat[i + 1]!)
  const users = names.map((name) => (avatars.has(name) ? { name, avatar: avatars.get(name)! } : { name }))
  users.sort((a, b) => a.name.localeCompare(b.name))
  return { lastId: Number(lastId), users }
}

/**
 * Presence across processes: each process holds leases (TTL `ttlMs`) on the users it serves,
 * renewed on its sweeps. A join is published when a user gets their first lease anywhere, a
 * leave when their last one is released or expires, each decided in one script.
 */
export class RedisPresenceStore implements PresenceStore {
  private readonly redis: Scripted
  private readonly keys: PresenceKeys
  private readonly archiveSize: number
  private readonly ttlMs: number
  private readonly node = `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`
  private lastRenew = 0

  constructor(redis: Redis, keys: PresenceKeys, archiveSize: number, ttlMs: number) {
    this.redis = redis as Scripted
    this.keys = keys
    this.archiveSize = archiveSize
    this.ttlMs = ttlMs
  }

  private get eventKeys(): [string, string, string] {
    return [this.keys.lastId, this.keys.archive, this.keys.events]
  }

  async arrive(member: Member): Promise<void> {
    await this.redis.chatArrive(...this.eventKeys, this.keys.prefix, this.archiveSize, this.node, this.ttlMs, member.name, member.avatar ?? '')
  }

  async depart(member: Member): Promise<void> {
    await this.redis.chatDepart(...this.eventKeys, this.keys.prefix, this.archiveSize, this.node, member.name)
  }

  /** Renews this node's leases a few times per TTL, and expires dead nodes' leases. */
  async tick(held: Member[]): Promise<void> {
    const now = Date.now()
    if (now - this.lastRenew < this.ttlMs / 4) return
    this.lastRenew = now
    await this.redis.chatTick(...this.eventKeys, this.keys.prefix, this.archiveSize, this.node, this.ttlMs, ...held.map((m) => m.name))
  }
}
