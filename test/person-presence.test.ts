import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { EventStream, registerAccount, RoomsClient, skipUnless, post, served, twoProcesses } from './helpers.js'
import { havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// Presence of a person, not of a page: online while any connection of theirs is open and a page
// of theirs is in use, away when every page says it is hidden or idle, offline once the last
// connection is gone (after PRESENCE_GRACE). It is told on the person's stream of everyone who
// shares a room with them (a signal, never a line in a log), and is a field of every person in
// /rooms/:room/users. A room's log says membership only: opening, closing and switching rooms
// write no join or leave line.

type Presence = { type: 'presence'; user: string; presence: string }
/** The presence signals a follow=me socket carried (on its own events, `me`), in order. */
const presenceOn = (socket: RoomsClient, user: string) =>
  socket
    .events('me')
    .filter((e) => (e as unknown as Presence).type === 'presence' && e.user === user)
    .map((e) => (e as unknown as Presence).presence)

/** Someone's presence as /rooms/:room/users lists them (undefined: not listed). */
async function listed(base: string, cookie: string, room: string, name: string): Promise<string | undefined> {
  const res = await fetch(`${base}/rooms/${room}/users`, { headers: { cookie } })
  const body = (await res.json()) as { users: { name: string; presence: string }[] }
  return body.users.find((u) => u.name === name)?.presence
}

/** A served app with accounts ann and bob, bob following his stream (his own events subscribed), so he is told of ann's presence. */
async function bobFollowing(t: Parameters<typeof served>[0], env: Record<string, string> = {}) {
  const { app, base } = await served(t, env)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  const bobs = await RoomsClient.open(base, bob, '?follow=me')
  t.teardown(() => bobs.close())
  await bobs.next((f) => f.type === 'subscribed' && f.room === 'me', "bob's own events")
  return { app, base, ann, bob, bobs }
}

t.test('on the socket: a person goes online, away when their page says so, online again, and offline when their last connection goes', async (t) => {
  const { base, ann, bob, bobs } = await bobFollowing(t)

  const anns = await RoomsClient.open(base, ann, '?follow=me')
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').includes('online')), 'bob is told ann is online')
  t.equal(await listed(base, bob, 'lobby', 'ann'), 'online', 'the lobby lists her online')

  anns.send({ type: 'presence', presence: 'away' })
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').at(-1) === 'away'), 'her page says it is hidden: bob is told she is away')
  t.equal(await listed(base, bob, 'lobby', 'ann'), 'away', 'and the lobby lists her away')

  // A second page of hers, in use: she is online whatever the first one says.
  const second = await RoomsClient.open(base, ann, '?follow=me')
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').at(-1) === 'online'), 'a second page in use: online again')
  second.close()
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').at(-1) === 'away'), 'that page closed, the hidden one left: away')
  anns.send({ type: 'presence', presence: 'online' })
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').at(-1) === 'online'), 'back on the first page: online')

  anns.close()
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').at(-1) === 'offline'), 'her last connection gone: offline')
  // Never away for a moment before offline (her in-use lease ends after the other: see People).
  t.same(presenceOn(bobs, 'ann'), ['online', 'away', 'online', 'away', 'online', 'offline'], 'each change told once, in order')
  t.same(presenceOn(bobs, 'bob'), [], 'bob is not told of himself')

  anns.send('x')
  bobs.send({ type: 'presence', presence: 'asleep' })
  const refused = await bobs.next((f) => (f as { error?: string }).error !== undefined, 'an error frame')
  t.match(refused, { error: 'Bad Request', message: /presence/ }, 'a presence frame with no valid state is a clear error; the socket stays')
})

t.test('on the event stream and the long poll: the same signal, and POST /presence for a page that is not a socket', async (t) => {
  const { app, base } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  const stream = await EventStream.open(`${base}/sse/events?follow=me`, { cookie: bob })
  t.teardown(() => stream.close())
  await stream.expect(() => stream.messages().some((m) => m.name === 'hello'), 'hello')
  const signals = () => stream.messages().filter((m) => m.name === 'presence' && m.data.user === 'ann').map((m) => (m.data as unknown as Presence).presence)

  const tab = 'annpage-0001'
  const anns = await EventStream.open(`${base}/sse/events?follow=me&tab=${tab}`, { cookie: ann })
  t.teardown(() => anns.close())
  await stream.expect(() => signals().includes('online'), 'ann online on the stream')
  t.match(stream.messages().find((m) => m.name === 'presence')?.data, { room: 'me', type: 'presence', user: 'ann', presence: 'online' }, 'an `event: presence` of her own events')

  t.equal((await post(base, ann, '/presence', { presence: 'away', tab })).status, 204, 'POST /presence away for her page')
  await stream.expect(() => signals().at(-1) === 'away', 'away on the stream')

  // bob's long poll with follow=me carries the signals beside the events.
  type Answer = { signals: Presence[]; rooms: Record<string, { epoch: string; lastId: number }> }
  const poll = async (query = '') => (await (await fetch(`${base}/longpolling/messages?follow=me${query}`, { headers: { cookie: bob } })).json()) as Answer
  // A first poll answers at once with where each room stands; the next one waits from there.
  const first = await poll()
  const cursors = Object.entries(first.rooms).map(([room, { epoch, lastId }]) => `&cursor=${encodeURIComponent(`${room}:${epoch}:${lastId}`)}`).join('')
  const waiting = poll(cursors)
  await new Promise((resolve) => setTimeout(resolve, 200))
  t.equal((await post(base, ann, '/presence', { presence: 'online', tab })).status, 204, 'back: online')
  t.match((await waiting).signals, [{ type: 'presence', user: 'ann', presence: 'online' }], 'the waiting poll answers with the signal')
  await stream.expect(() => signals().at(-1) === 'online', 'online on the stream')

  t.equal((await post(base, ann, '/presence', { presence: 'sleeping', tab })).status, 400, 'a presence that is not away or online: 400')
  t.equal((await post(base, ann, '/presence', { presence: 'away' })).status, 400, 'without the page: 400')
  t.equal((await fetch(`${base}/presence`, { method: 'POST', headers: { 'content-type': 'application/json', origin: base }, body: '{"presence":"away","tab":"annpage-0001"}' })).status, 401, 'signed out: 401')
})

t.test("a room's log says membership only: twenty opens, closes and switches write no line; joining and leaving write one each", async (t) => {
  const { app, base } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  t.equal((await post(base, ann, '/rooms', { name: 'red' })).status, 201, 'ann makes red')
  t.equal((await post(base, ann, '/rooms', { name: 'blue' })).status, 201, 'and blue')
  t.equal((await post(base, bob, '/rooms/red/join')).status, 200, 'bob joins red')

  const socket = await RoomsClient.open(base, bob, '?follow=me')
  t.teardown(() => socket.close())
  await socket.next((f) => f.type === 'subscribed' && f.room === 'red', 'red followed')
  for (let i = 0; i < 10; i++) {
    // A switch: a room's page read by its one-room socket and left, and blue read without joining.
    const one = await RoomsClient.open(base, bob)
    t.equal((await one.subscribe(i % 2 ? 'red' : 'blue'))?.type, 'subscribed', `switch ${i + 1}`)
    one.close()
    const res = await fetch(`${base}/rooms/${i % 2 ? 'blue' : 'red'}/history`, { headers: { cookie: bob } })
    t.equal(res.status, 200)
  }
  socket.close()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await post(base, bob, '/rooms/red/leave')).status, 200, 'bob leaves red')
  const lines = async (room: string) => {
    const body = (await (await fetch(`${base}/rooms/${room}/history`, { headers: { cookie: ann } })).json()) as { events: Event[] }
    return body.events.filter((e) => e.type === 'join' || e.type === 'leave').map((e) => `${e.user} ${e.type}`)
  }
  t.same(await lines('red'), ['ann join', 'bob join', 'bob leave'], 'red: its owner, bob joining and bob leaving; nothing for opening or switching')
  t.same(await lines('blue'), ['ann join'], 'blue: read without joining writes nothing')
  const opened = (await (await post(base, ann, '/direct', { user: 'bob' })).json()) as { room: string }
  const dm = await RoomsClient.open(base, bob)
  t.equal((await dm.subscribe(opened.room))?.type, 'subscribed')
  dm.close()
  t.same(await lines(opened.room), [], 'a DM writes no join or leave line')
})

t.test('two processes on PostgreSQL + Redis: a DM opened on one reaches the open connection on the other within a second; presence crosses too', { skip: skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing') }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const ann = await registerAccount(a.app, 'ann')
  const bob = await registerAccount(a.app, 'bob')

  const bobs = await RoomsClient.open(b.base, bob, '?follow=me')
  t.teardown(() => bobs.close())
  await bobs.next((f) => f.type === 'subscribed' && f.room === 'me', "bob's own events, on B")
  const anns = await RoomsClient.open(a.base, ann, '?follow=me')
  t.teardown(() => anns.close())
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').includes('online')), 'ann online on A: told on B')
  // Her arrival in the lobby is a line committed on A: B lists her once the bus brings it.
  let onB: string | undefined
  for (let i = 0; i < 50 && onB !== 'online'; i++) {
    onB = await listed(b.base, bob, 'lobby', 'ann')
    if (onB !== 'online') await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(onB, 'online', "B's lobby lists her online")

  const started = Date.now()
  const opened = (await (await post(a.base, ann, '/direct', { user: 'bob' })).json()) as { room: string }
  t.ok(await bobs.until(() => bobs.frames.some((f) => f.type === 'subscribed' && f.room === opened.room), 2000), "the DM ann opened on A is on bob's socket on B")
  t.ok(Date.now() - started < 1000, `within a second (${Date.now() - started} ms)`)
  // Said on her socket (a long poll's send would keep her here for its lease).
  await anns.until(() => anns.frames.some((f) => f.type === 'subscribed' && f.room === opened.room))
  anns.send({ type: 'say', room: opened.room, text: 'hi from A' })
  t.ok(await bobs.until(() => bobs.events(opened.room).some((e) => e.text === 'hi from A')), "and its first message, said on A, follows on B")

  anns.send({ type: 'presence', presence: 'away' })
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').at(-1) === 'away'), 'away on A: told on B')
  anns.close()
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').at(-1) === 'offline'), 'her connection on A gone: offline on B')
})

t.test("a room other than the lobby lists its members, online first, each with their presence; the lobby lists who is here", async (t) => {
  const { app, base } = await served(t, { ROSTER_LIMIT: '2' })
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  const cat = await registerAccount(app, 'cat')
  await post(base, ann, '/rooms', { name: 'red' })
  await post(base, bob, '/rooms/red/join')
  await post(base, cat, '/rooms/red/join')
  const users = async (room: string) => (await (await fetch(`${base}/rooms/${room}/users`, { headers: { cookie: ann } })).json()) as { count: number; members: boolean; users: { name: string; presence: string }[] }
  t.match(await users('red'), { count: 3, members: true, users: [{ presence: 'offline' }, { presence: 'offline' }] }, 'nobody connected: three members, all offline (two listed: ROSTER_LIMIT)')

  const cats = await RoomsClient.open(base, cat, '?follow=me')
  t.teardown(() => cats.close())
  await cats.next((f) => f.type === 'subscribed' && f.room === 'red', "cat's stream")
  const bobs = await RoomsClient.open(base, bob, '?follow=me')
  t.teardown(() => bobs.close())
  await bobs.next((f) => f.type === 'subscribed' && f.room === 'red', "bob's stream")
  bobs.send({ type: 'presence', presence: 'away' })
  for (let i = 0; i < 60 && (await users('red')).users.find((u) => u.name === 'bob')?.presence !== 'away'; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.same((await users('red')).users, [{ name: 'cat', presence: 'online' }, { name: 'bob', presence: 'away' }], 'online first, then away; ann (offline) past the limit')
  t.equal((await users('red')).count, 3, 'all three counted')
  t.equal((await post(base, cat, '/rooms/red/leave')).status, 200)
  t.same((await users('red')).users.map((u) => u.name), ['bob', 'ann'], 'cat left: no longer a member')
  const lobby = await users('lobby')
  t.equal(lobby.members, false, 'the lobby lists who is here')
  t.same(lobby.users.map((u) => u.name).sort(), ['bob', 'cat'], 'those with a connection')
})

t.test('a page that flaps between away and online cannot flood everyone: past PRESENCE_CHURN a minute, its changes wait', async (t) => {
  const { base, ann, bobs } = await bobFollowing(t, { PRESENCE_CHURN: '3' })
  const anns = await RoomsClient.open(base, ann, '?follow=me')
  t.teardown(() => anns.close())
  t.ok(await bobs.until(() => presenceOn(bobs, 'ann').includes('online')), 'ann online')
  for (let i = 0; i < 20; i++) {
    anns.send({ type: 'presence', presence: i % 2 === 0 ? 'away' : 'online' })
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  const told = presenceOn(bobs, 'ann')
  t.ok(told.length <= 8, `bob was told ${told.length} changes for 20 flips (at most PRESENCE_CHURN arrivals and their leaves, and the first)`)
  t.ok(told.length >= 3, 'the first changes were told')
})

t.test('back within the moment after offline (her in-use presence not yet ended): online again at once, never stuck away', async (t) => {
  const { People } = await import('../app/chatroom/person.js')
  const { LocalBus } = await import('../app/chatroom/bus/local.js')
  const bus = new LocalBus()
  const told: string[] = []
  const people: InstanceType<typeof People> = new People(bus, {
    graceMs: 100,
    ttlMs: 1000,
    onChange: (signal) => told.push((JSON.parse(signal.json) as { presence: string }).presence),
  })
  // The bus brings the people's channel back to this process (as the chatroom relays it).
  bus.listen({ event: () => {}, signal: (signal, room) => room === '~people' && people.relay(signal), revoked: () => {} })
  await people.start()
  t.teardown(() => people.close(true))
  const ann = { id: 'ann-id', name: 'ann', account: true as const }
  const until = async (done: () => boolean, what: string) => {
    for (let i = 0; i < 300 && !done(); i++) await new Promise((resolve) => setTimeout(resolve, 10))
    if (!done()) throw new Error(`never: ${what}; told ${JSON.stringify(told)}`)
  }
  let release = people.hold(ann, 'tab1')
  await until(() => told.at(-1) === 'online', 'online')
  release()
  await until(() => told.at(-1) === 'offline', 'offline after the grace')
  // Her page reconnects at once (a reload): her in-use presence is still in its grace.
  release = people.hold(ann, 'tab1')
  t.equal(people.stateOf('ann'), 'online', 'online again at once')
  await new Promise((resolve) => setTimeout(resolve, 400))
  t.equal(people.stateOf('ann'), 'online', 'and still online past every grace (not away)')
  t.same(told, ['online', 'offline', 'online'], 'each change told once')
  release()
})
