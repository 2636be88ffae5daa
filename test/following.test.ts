import t from 'tap'
import { LocalBus } from '../app/chatroom/bus/local.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { Chatroom, type ChatroomOptions } from '../app/chatroom/chatroom.js'
import { Room } from '../app/chatroom/room.js'
import { memberKey, type Member } from '../app/chatroom/presence.js'
import { post, registerAccount, skipUnless, twoProcesses } from './helpers.js'
import { havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// What a person's stream follows is known on the process, not asked of the store at every poll:
// the rooms they belong to are kept while their own log stands still (a join, a leave, an
// invitation, a kick or a ban anywhere is an event on it, which the bus brings to every process)
// and for followingTtlMs at most; whether they may read a room loaded here is what that room
// knows (its record, then its join and leave lines). Asked only when the answer may have changed.

/** A memory store that counts what it is asked about rooms and membership. */
function countingStore(): { store: MemoryStore; asked: Map<string, number> } {
  const store = new MemoryStore()
  const asked = new Map<string, number>()
  const rooms = store.rooms
  Object.defineProperty(store, 'rooms', { value: new Proxy(rooms, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        asked.set(String(prop), (asked.get(String(prop)) ?? 0) + 1)
        return (value as (...a: unknown[]) => unknown).apply(target, args)
      }
    },
  }) })
  return { store, asked }
}

async function chatroomOn(t: { teardown(fn: () => unknown): void }, store: MemoryStore, options: Partial<ChatroomOptions> = {}): Promise<Chatroom> {
  const chatroom = new Chatroom(store, new LocalBus(), { archiveSize: 100, subscriberQueue: 100, ...options })
  await chatroom.start()
  t.teardown(() => chatroom.close())
  return chatroom
}

const ann = { id: 'ann-id', name: 'ann', account: true } satisfies Member
const bob = { id: 'bob-id', name: 'bob', account: true } satisfies Member

t.test("a person's rooms are read once per change of theirs: polling again asks the store nothing, a join or a leave is followed at once", async (t) => {
  const { store, asked } = countingStore()
  const chatroom = await chatroomOn(t, store)
  t.match(await chatroom.createRoom(ann, { name: 'red' }), { ok: true }, 'ann makes red')
  t.match(await chatroom.createRoom(bob, { name: 'blue' }), { ok: true }, 'bob makes blue')
  t.same((await chatroom.following(ann)).sort(), ['lobby', 'red'], 'ann follows the lobby and red')
  asked.clear()
  for (let i = 0; i < 20; i++) t.same((await chatroom.following(ann)).sort(), ['lobby', 'red'], `poll ${i + 1}: the same rooms`)
  t.same([...asked.keys()], [], 'twenty polls asked the store nothing about rooms or membership')

  t.match(await chatroom.joinRoom(ann, 'blue'), { ok: true }, 'ann joins blue')
  t.same((await chatroom.following(ann)).sort(), ['blue', 'lobby', 'red'], 'the next poll follows blue: her join is an event on her own log')
  t.match(await chatroom.leaveRoom(ann, 'red'), { ok: true }, 'ann leaves red')
  t.same((await chatroom.following(ann)).sort(), ['blue', 'lobby'], 'and the next one no longer follows red')
  t.same((await chatroom.following(bob)).sort(), ['blue', 'lobby'], "bob's rooms are his own (kept apart from hers)")

  // Whether she may read a loaded room is what the room knows: a private room, by its members.
  t.match(await chatroom.createRoom(bob, { name: 'ops', visibility: 'private' }), { ok: true }, 'bob makes private ops')
  asked.clear()
  t.ok((await chatroom.access('ops', bob)) instanceof Room, 'bob reads ops')
  t.ok((await chatroom.access('blue', ann)) instanceof Room, 'ann reads blue')
  t.same([...asked.keys()], [], 'a room loaded here is opened to its member, and a public one to anyone, without asking the store')
  t.match(await chatroom.access('ops', ann), { ok: false, status: 404 }, 'ops does not exist for ann')
  t.ok((asked.get('role') ?? 0) > 0, 'a no is asked of the store (it may be a join not heard yet)')
  t.match(await chatroom.invite(bob, 'ops', ann), { ok: true, added: true }, 'bob invites ann')
  t.ok((await chatroom.access('ops', ann)) instanceof Room, 'now she reads it')
  t.same((await chatroom.following(ann)).sort(), ['blue', 'lobby', 'ops'], 'and her stream follows it')
  t.match(await chatroom.leaveRoom(ann, 'ops'), { ok: true }, 'ann leaves ops')
  t.match(await chatroom.access('ops', ann), { ok: false, status: 404 }, 'and it no longer exists for her')
})

t.test('a membership no event told this process of (a bus message lost) is followed within followingTtlMs', async (t) => {
  const { store } = countingStore()
  const chatroom = await chatroomOn(t, store, { followingTtlMs: 200 })
  t.match(await chatroom.createRoom(bob, { name: 'blue' }), { ok: true }, 'bob makes blue')
  t.same(await chatroom.following(ann), ['lobby'], 'ann follows the lobby')
  // Another process made her a member, and the bus lost its word of it.
  await store.rooms.addMember('blue', ann.id, 'member', ann.name)
  t.same(await chatroom.following(ann), ['lobby'], 'not heard of yet: kept as it was')
  await new Promise((resolve) => setTimeout(resolve, 250))
  t.same((await chatroom.following(ann)).sort(), ['blue', 'lobby'], 'read again once it is older than followingTtlMs')

  const uncached = await chatroomOn(t, store, { followingTtlMs: 0 })
  t.same((await uncached.following(ann)).sort(), ['blue', 'lobby'], 'followingTtlMs 0: blue')
  await store.rooms.removeMember('blue', ann.id)
  t.same(await uncached.following(ann), ['lobby'], 'and at once not: read at every poll')
})

t.test("a guest's old session bearing a member's name does not read a private room loaded here (members are kept by name; only an account's is its own)", async (t) => {
  const { store } = countingStore()
  const chatroom = await chatroomOn(t, store)
  t.match(await chatroom.createRoom(bob, { name: 'ops', visibility: 'private' }), { ok: true }, 'bob makes private ops')
  t.match(await chatroom.invite(bob, 'ops', ann), { ok: true, added: true }, 'and invites ann (an account)')
  t.ok((await chatroom.access('ops', ann)) instanceof Room, 'ann reads it')
  const guest = { id: 'guest-session-id', name: 'ann' }
  t.match(await chatroom.access('ops', guest), { ok: false, status: 404 }, 'a guest named ann: no such room')
})

t.test('a ban from the lobby that ends is followed again at once, though it writes nothing on the person\'s own log', async (t) => {
  const { store } = countingStore()
  const chatroom = await chatroomOn(t, store)
  const lobby = await chatroom.room('lobby')
  t.same(await chatroom.following(ann), ['lobby'], 'ann follows the lobby')
  const until = Date.now() + 300
  await store.rooms.restrict('lobby', { person: ann.id, name: 'ann', kind: 'ban', until, by: 'op', reason: '', at: Date.now() })
  await lobby.moderation({ id: 'op', name: 'op', account: true }, 'ban', 'ann', '', { until })
  t.same(await chatroom.following(ann), [], 'banned for a moment: not followed')
  await new Promise((resolve) => setTimeout(resolve, 350))
  t.same(await chatroom.following(ann), ['lobby'], 'the ban over: followed again')
})

t.test('a guest follows the lobby alone without asking the store, and not while banned from it', async (t) => {
  const { store, asked } = countingStore()
  const chatroom = await chatroomOn(t, store)
  const gus = { name: 'gus' }
  asked.clear()
  t.same(await chatroom.following(gus), ['lobby'], 'the lobby')
  t.same([...asked.keys()], [], 'nothing asked')
  const lobby = await chatroom.room('lobby')
  // Decided in the store, then the event every process applies (as a moderator's ban is).
  await store.rooms.restrict('lobby', { person: memberKey(gus), name: 'gus', kind: 'ban', until: undefined, by: 'op', reason: 'spam', at: Date.now() })
  await lobby.moderation({ id: 'op', name: 'op', account: true }, 'ban', 'gus', 'spam')
  t.same(await chatroom.following(gus), [], 'banned from the lobby: nothing to follow')
  t.same((await chatroom.following(ann)).sort(), ['lobby'], 'someone else still follows it')
})

t.test('many people: what is kept is bounded (followingKept), the oldest going first', async (t) => {
  const { store, asked } = countingStore()
  const chatroom = await chatroomOn(t, store, { followingKept: 3 })
  const people = Array.from({ length: 5 }, (_, i) => ({ id: `p${i}`, name: `p${i}`, account: true as const }))
  for (const person of people) await chatroom.following(person)
  asked.clear()
  await chatroom.following(people[4]!)
  t.same([...asked.keys()], [], 'the newest is still kept')
  await chatroom.following(people[0]!)
  t.same(asked.get('memberOf'), 1, 'the oldest was let go: read again')
})

t.test('the store not answering: what was read for the same version of their log goes on (a poll still hands over its rooms), and nothing is made up for someone never read', async (t) => {
  const { store } = countingStore()
  const chatroom = await chatroomOn(t, store, { followingTtlMs: 20 })
  t.match(await chatroom.createRoom(ann, { name: 'red' }), { ok: true }, 'ann makes red')
  t.same((await chatroom.following(ann)).sort(), ['lobby', 'red'])
  // The store stops answering (a timeout, as an overloaded pool says it).
  const memberOf = store.rooms.memberOf.bind(store.rooms)
  store.rooms.memberOf = () => Promise.reject(new Error('timeout exceeded when trying to connect'))
  t.teardown(() => void (store.rooms.memberOf = memberOf))
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.same((await chatroom.following(ann)).sort(), ['lobby', 'red'], 'past its TTL, the rooms read before go on while the store fails')
  await t.rejects(chatroom.following(bob), /timeout exceeded/, 'bob, never read here: the failure is said (503), no rooms made up')
  store.rooms.memberOf = memberOf
  await store.rooms.addMember('red', bob.id, 'member', bob.name)
  t.same((await chatroom.following(bob)).sort(), ['lobby', 'red'], 'the store back: read as it is')
})

// The same across processes, on the route: a long poll on B follows what A decided, at its next poll.
const shared = skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing')

t.test("two processes on one store and bus: a person's long poll on B follows an invitation and a leave made on A at the next poll", { skip: shared }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const annCookie = await registerAccount(a.app, 'ann')
  const bobCookie = await registerAccount(a.app, 'bob')
  t.equal((await post(a.base, bobCookie, '/rooms', { name: 'ops', visibility: 'private' })).status, 201, 'bob makes private ops on A')
  const roomsOfPoll = async () => {
    const res = await fetch(`${b.base}/longpolling/messages?follow=me`, { headers: { cookie: annCookie } })
    if (res.status !== 200) throw new Error(`a poll on B: ${res.status}`)
    return Object.keys(((await res.json()) as { rooms: Record<string, unknown> }).rooms).sort()
  }
  t.same(await roomsOfPoll(), ['lobby', 'me'], 'ann on B: the lobby and her own events')
  t.equal((await post(a.base, bobCookie, '/rooms/ops/invite', { user: 'ann' })).status, 200, 'bob invites her on A')
  // Each poll from now answers within LONGPOLL_TIMEOUT; the word of it crosses the bus in milliseconds.
  const until = async (check: (rooms: string[]) => boolean) => {
    let rooms = await roomsOfPoll()
    for (let i = 0; i < 20 && !check(rooms); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      rooms = await roomsOfPoll()
    }
    return rooms
  }
  t.same(await until((rooms) => rooms.includes('ops')), ['lobby', 'me', 'ops'], 'a poll on B follows ops')
  const history = await fetch(`${b.base}/rooms/ops/history?limit=5`, { headers: { cookie: annCookie } })
  t.equal(history.status, 200, 'and she reads its history on B')
  t.equal((await post(a.base, annCookie, '/rooms/ops/leave')).status, 200, 'she leaves on A')
  t.same(await until((rooms) => !rooms.includes('ops')), ['lobby', 'me'], 'a poll on B no longer follows it')
  const after = await fetch(`${b.base}/rooms/ops/history?limit=5`, { headers: { cookie: annCookie } })
  t.equal(after.status, 404, 'and ops does not exist for her on B')
})
