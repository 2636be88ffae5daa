import { once } from 'node:events'
import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, enter, eventually, floodSlides, range, signIn, skipUnless, SocketClient, startServer, TEST_SECRET } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'
import { haveRedis, redisFor, TestRedis } from './redis.js'

const skip = skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing (apt-get install redis-server postgresql); Redis tests skipped')

/** Settings for processes that share one room: a database and a key prefix of this test's own. */
async function shared(t: Parameters<typeof buildTestApp>[0], redis: { url: string }, extra: Record<string, string> = {}) {
  const prefix = `test${Math.random().toString(36).slice(2)}:`
  return { BROKER: 'redis', STORE: 'postgres', DATABASE_URL: await freshDatabase(t), REDIS_URL: redis.url, REDIS_PREFIX: prefix, ...extra }
}

/** Two app processes' worth of app (each its own connections) on one room: PostgreSQL and Redis. */
async function twoNodes(t: Parameters<typeof buildTestApp>[0], redis: { url: string }) {
  const env = await shared(t, redis)
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  return { a, b, baseA: await a.listen({ host: '127.0.0.1', port: 0 }), baseB: await b.listen({ host: '127.0.0.1', port: 0 }) }
}

t.test('two processes, one room: a WebSocket user on one and a long-poll user on the other', { skip }, async (t) => {
  const redis = await redisFor(t)
  const { a, b, baseA, baseB } = await twoNodes(t, redis)
  const cat = await SocketClient.open(baseA, await signIn(a, 'cat'))
  const bob = await signIn(b, 'bob')
  await enter(b, bob, 'longpolling')
  cat.send({ text: 'hello from node A' })
  const said = await fetch(`${baseB}/longpolling/room/messages`, {
    method: 'POST',
    headers: { cookie: bob, 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'hello from node B' }),
  })
  t.equal(said.status, 201)
  await cat.until(() => cat.events.some((e) => e.text === 'hello from node B'), 'B\'s message on A')
  await eventually(() => b.chatroom.lastId === a.chatroom.lastId && a.chatroom.lastId >= 4, 'both nodes caught up')
  const polled = (await (await fetch(`${baseB}/longpolling/room/messages?lastReceived=0`, { headers: { cookie: bob } })).json()) as Event[]
  t.same(polled.map((e) => e.id), range(1, polled.length), 'consecutive ids from one counter')
  t.same(cat.events.map((e) => e.id), polled.map((e) => e.id).filter((id) => id >= cat.events[0]!.id), 'the same ids in the same order on both nodes')
  t.same(a.chatroom.archive().map((s) => s.json), b.chatroom.archive().map((s) => s.json), 'identical archives, byte for byte')
  await cat.close()
})

t.test('a client resumes on the other process from its cursor', { skip }, async (t) => {
  const redis = await redisFor(t)
  const { a, b, baseA, baseB } = await twoNodes(t, redis)
  const cookie = await signIn(a, 'cat') // one secret: the cookie works on both
  const first = await SocketClient.open(baseA, cookie)
  await first.untilId(1)
  await first.close()
  for (let i = 0; i < 5; i++) await b.chatroom.post('ann', `while cat moved ${i}`)
  const cursor = first.events.at(-1)!.id
  const again = await SocketClient.open(baseB, cookie, `?lastReceived=${cursor}`)
  const last = b.chatroom.lastId
  await again.untilId(last)
  const ids = again.ids()
  t.same(ids.slice(0, ids.indexOf(last) + 1), range(cursor + 1, last), 'exactly what followed the cursor')
  t.ok(again.events.some((e) => e.text === 'while cat moved 4'))
  await again.close()
})

t.test('Redis dies and comes back empty: sending goes on, nothing is lost or doubled, delivery resumes by itself', { skip }, async (t) => {
  const redis = (await redisFor(t, true)) as TestRedis
  const { a, b, baseA, baseB } = await twoNodes(t, redis)
  const ann = await signIn(a, 'ann')
  const watcher = await SocketClient.open(baseB, await signIn(b, 'bob'))
  await a.chatroom.post('ann', 'before')
  await watcher.until(() => watcher.events.some((e) => e.text === 'before'), 'before')

  await redis.stop()
  const ready = await fetch(`${baseA}/readyz`)
  t.equal(ready.status, 503, '/readyz says the bus is down')
  t.equal((await fetch(`${baseA}/healthz`)).status, 200, '/healthz still says the process lives')
  const say = (text: string) =>
    fetch(`${baseA}/longpolling/room/messages`, { method: 'POST', headers: { cookie: ann, 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
  const during = await say('while redis is down')
  t.equal(during.status, 201, 'sending goes on: the log is PostgreSQL')
  await watcher.until(() => watcher.events.some((e) => e.text === 'while redis is down'), 'the other process to catch up from the store', 10_000)

  await redis.start()
  for (const base of [baseA, baseB]) {
    const deadline = Date.now() + 15_000
    while ((await fetch(`${base}/readyz`)).status !== 200 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    t.equal((await fetch(`${base}/readyz`)).status, 200, `${base === baseA ? 'A' : 'B'} reconnected by itself`)
  }
  for (let i = 0; i < 5; i++) t.equal((await say(`after ${i}`)).status, 201)
  await watcher.until(() => watcher.events.some((e) => e.text === 'after 4'), 'after 4', 15_000)
  const ids = watcher.ids()
  t.same(ids, range(ids[0]!, ids.at(-1)!), 'consecutive: nothing lost, nothing twice')
  t.equal(new Set(ids).size, ids.length, 'no id given twice')
  await watcher.close()
})

t.test('the flood limit is shared by every process', { skip }, async (t) => {
  const redis = await redisFor(t)
  const env = await shared(t, redis, { RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '30' })
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  const ann = await signIn(a, 'ann')
  const say = (app: typeof a, text: string) =>
    app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: ann }, payload: { text } })
  t.equal((await say(a, 'one on A')).statusCode, 201)
  t.equal((await say(b, 'two on B')).statusCode, 201)
  const third = await say(a, 'three on A')
  t.equal(third.statusCode, 429, 'the third, on either process, is over the limit')
  t.ok(Number(third.headers['retry-after']) >= 1)
  const bob = await signIn(b, 'bob')
  t.equal((await b.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: bob }, payload: { text: 'bob is fine' } })).statusCode, 201)
})

t.test('the shared flood window slides: allowed again once the oldest message is out of it', { skip }, async (t) => {
  const redis = await redisFor(t)
  const env = await shared(t, redis, { RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '1' })
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  const ann = await signIn(a, 'ann')
  const say = (app: typeof a, text: string) =>
    app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: ann }, payload: { text } })
  await floodSlides(t, (text, i) => say(i % 2 === 0 ? a : b, text))
})

t.test('presence is shared: one join and one leave for a user on two processes', { skip }, async (t) => {
  const redis = await redisFor(t)
  const { a, b, baseA, baseB } = await twoNodes(t, redis)
  const watcher = await SocketClient.open(baseB, await signIn(b, 'watcher'))
  const kinds = () => watcher.events.filter((e) => e.user === 'cat').map((e) => e.type)
  const cookie = await signIn(a, 'cat')
  const onA = await SocketClient.open(baseA, cookie)
  const onB = await SocketClient.open(baseB, cookie)
  await watcher.until(() => kinds().includes('join'), 'cat joins')
  await onA.close()
  // A let go of cat; then a message through A's Redis connection: once the watcher has it,
  // any leave A's release could have caused would have come first.
  await eventually(() => !a.chatroom.presence.isOnline('cat'), 'A to let go of cat')
  const marker = await a.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: await signIn(a, 'marker') }, payload: { text: 'marker' } })
  await watcher.untilId((marker.json() as { id: number }).id)
  t.same(kinds(), ['join'], 'leaving one process is not leaving the room')
  const users = (await (await fetch(`${baseA}/room/users`, { headers: { cookie } })).json()) as { users: { name: string }[] }
  t.same(users.users.map((u) => u.name).sort(), ['cat', 'marker', 'watcher'], 'both processes list who is in the room')
  await onB.close()
  await watcher.until(() => kinds().includes('leave'), 'cat leaves')
  t.same(kinds(), ['join', 'leave'])
  await watcher.close()
})

t.test('a killed process\'s users leave after the lease TTL', { skip }, async (t) => {
  const redis = await redisFor(t)
  const env = await shared(t, redis, { PRESENCE_TTL: '1' })
  const survivor = await buildTestApp(t, env)
  const baseB = await survivor.listen({ host: '127.0.0.1', port: 0 })
  const { child, base: baseA } = await startServer(t, { ...env, SESSION_SECRET: TEST_SECRET, PRESENCE_GRACE: '0' })
  const watcher = await SocketClient.open(baseB, await signIn(survivor, 'watcher'))
  const doomed = await SocketClient.open(baseA, await signIn(survivor, 'doomed')) // one secret: the cookie works on A
  const kinds = () => watcher.events.filter((e) => e.user === 'doomed').map((e) => e.type)
  await watcher.until(() => kinds().includes('join'), 'doomed joins via A')
  child.kill('SIGKILL')
  await once(child, 'exit')
  const killedAt = Date.now()
  await watcher.until(() => kinds().includes('leave'), 'doomed leaves', 10_000)
  const took = Date.now() - killedAt
  t.ok(took < 5000, `left ${took} ms after the kill (TTL 1 s)`)
  t.same(kinds(), ['join', 'leave'])
  t.equal(doomed.closed?.code, 1006, 'its socket died with the process')
  await watcher.close()
})

t.test('sign-in attempts per IP are counted across processes', { skip }, async (t) => {
  const redis = await redisFor(t)
  const env = await shared(t, redis, { SIGNIN_RATE_LIMIT: '3' })
  const a = await buildTestApp(t, env)
  const b = await buildTestApp(t, env)
  const codes: number[] = []
  for (const [i, app] of [a, b, a, b, a].entries()) {
    const res = await app.inject({ method: 'POST', url: '/signin', payload: { user: `u${i}`, transport: 'refresh' } })
    codes.push(res.statusCode)
  }
  t.same(codes, [303, 303, 303, 429, 429], 'three in all, whichever process answers')
})

t.test('one account on two processes: one person in the room; a session ended on one process closes its socket on the other at once, and a guest there cannot take the name', { skip }, async (t) => {
  const redis = await redisFor(t)
  const { a, b, baseA, baseB } = await twoNodes(t, redis)
  const made = await a.inject({ method: 'POST', url: '/accounts', payload: { name: 'alice', password: 'correct horse battery' } })
  t.equal(made.statusCode, 201)
  const onA = `chat_session=${made.cookies.find((c) => c.name === 'chat_session')!.value}`
  const signedIn = await b.inject({ method: 'POST', url: '/signin', payload: { user: 'alice', password: 'correct horse battery', transport: 'websocket' } })
  t.equal(signedIn.statusCode, 303, 'the account signs in on the other process (the store is shared)')
  const onB = `chat_session=${signedIn.cookies.find((c) => c.name === 'chat_session')!.value}`
  const socketA = await SocketClient.open(baseA, onA)
  const socketB = await SocketClient.open(baseB, onB)
  await socketB.until(() => socketB.hello !== undefined, 'hello on B')
  await eventually(() => a.chatroom.roster().users.length === 1 && b.chatroom.roster().users.length === 1, 'both processes list alice once')
  t.same(b.chatroom.roster().users.map((u) => u.name), ['alice'], 'one entry for two devices on two processes')
  const guest = await b.inject({ method: 'POST', url: '/signin', payload: { user: 'ALICE', transport: 'websocket' } })
  t.equal(guest.statusCode, 409, 'a guest on the other process cannot take the registered name')

  const list = (await a.inject({ url: '/account/sessions', headers: { cookie: onA } })).json() as { sessions: { id: string; current: boolean }[] }
  t.equal(list.sessions.length, 2)
  const ended = await a.inject({ method: 'POST', url: '/account/sessions/end', payload: { all: 'others' }, headers: { cookie: onA } })
  t.same(ended.json(), { ended: 1 })
  t.match(await socketB.untilClosed(), { code: 4401 }, 'the socket on process B closed with 4401')
  t.equal(socketA.closed, undefined, 'this session\'s socket stays open')
  await socketA.close()
})

t.test('two processes serve the same rooms: a room made on one is read on the other, each room its own ids, a private one refused there too', { skip }, async (t) => {
  const redis = await redisFor(t)
  const { a, b, baseB } = await twoNodes(t, redis)
  const made = await a.inject({ method: 'POST', url: '/accounts', payload: { name: 'ann', password: 'correct horse battery' } })
  const ann = `chat_session=${made.cookies.find((c) => c.name === 'chat_session')!.value}`
  t.equal((await a.inject({ method: 'POST', url: '/rooms', payload: { name: 'dev' }, headers: { cookie: ann } })).statusCode, 201)
  t.equal((await a.inject({ method: 'POST', url: '/rooms', payload: { name: 'plans', visibility: 'private' }, headers: { cookie: ann } })).statusCode, 201)
  const bob = await signIn(b, 'bob')
  const reader = await SocketClient.open(baseB, bob, '', {}, '/websocket/rooms/dev/socket')
  await reader.until(() => reader.hello !== undefined, 'hello on B')
  for (const text of ['one', 'two', 'three']) {
    t.equal((await a.inject({ method: 'POST', url: '/longpolling/rooms/dev/messages', payload: { message: text }, headers: { cookie: ann } })).statusCode, 201)
  }
  await reader.until(() => reader.events.some((e) => e.text === 'three'), 'dev\'s messages on B')
  const ids = reader.ids()
  t.same(ids, range(ids[0]!, ids.at(-1)!), 'consecutive ids, the room\'s own')
  t.notOk(reader.events.some((e) => e.text === undefined && e.type === 'message'), 'only dev\'s events')
  t.equal((await b.inject({ url: '/rooms/plans/history', headers: { cookie: bob } })).statusCode, 404, 'the private room is 404 on the other process too')
  const lobbyOnB = (await b.inject({ url: '/room/history', headers: { cookie: bob } })).json() as { events: Event[] }
  t.notOk(lobbyOnB.events.some((e) => e.text === 'one'), 'nothing of dev in the lobby')
  await reader.close()
})
