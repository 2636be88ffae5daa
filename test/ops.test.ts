import t from 'tap'
import { buildTestApp, enter, eventually, post, registerAccount, signIn, skipUnless, SocketClient, twoProcesses } from './helpers.js'
import { havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

const TOKEN = 'metrics-token-for-tests'

const metric = (body: string, name: string) => {
  const line = body.split('\n').find((l) => l.startsWith(name + ' ') || l.startsWith(name + '{') && l.includes(name))
  return line === undefined ? undefined : Number(line.split(' ').at(-1))
}

t.test('/healthz and /readyz', async (t) => {
  const app = await buildTestApp(t)
  const health = await app.inject({ method: 'GET', url: '/healthz' })
  t.same([health.statusCode, health.json()], [200, { status: 'ok' }])
  const ready = await app.inject({ method: 'GET', url: '/readyz' })
  t.same([ready.statusCode, ready.json()], [200, { status: 'ready' }], 'the memory broker is always ready')
})

t.test('/metrics counts connections, pending polls, events, deliveries and lagged drops', async (t) => {
  const app = await buildTestApp(t, { SUBSCRIBER_QUEUE: '2', ARCHIVE_SIZE: '5', LONGPOLL_TIMEOUT: '30', METRICS_TOKEN: TOKEN })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const scrape = async () => (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()

  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  await cat.untilId(1)
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  const controller = new AbortController()
  const poll = fetch(`${base}/longpolling/room/messages?lastReceived=${app.chatroom.lastId}`, { headers: { cookie: bob }, signal: controller.signal }).catch(() => undefined)
  await eventually(() => app.chatroom.waitingCount === 1, 'a waiting poll')

  let body = await scrape()
  t.match(body, /# TYPE chat_connections gauge/)
  t.equal(metric(body, 'chat_connections{transport="websocket"}'), 1)
  t.equal(metric(body, 'chat_connections{transport="longpolling"}'), 1)
  t.equal(metric(body, 'chat_longpolls_pending'), 1)
  t.equal(metric(body, 'chat_online_users'), 2)
  t.equal(metric(body, 'chat_events_total'), 3, "two joins, and bob's read marker on his own log (his page read the lobby)")
  t.match(body, /nodejs_eventloop_lag_seconds \d/, 'event loop lag')

  // A reader that stops reading is dropped as lagged.
  const stalled = app.chatroom.subscribe()
  // One event a tick: readers that read keep up; only the stalled one falls behind.
  for (let i = 0; i < 5; i++) {
    await app.chatroom.post('ann', `m${i}`)
    await new Promise((r) => setTimeout(r, 5))
  }
  t.equal(stalled.state, 'lagged')
  await poll
  body = await scrape()
  t.equal(metric(body, 'chat_events_total'), 8, 'and five more')
  t.equal(metric(body, 'chat_lagged_drops_total'), 1)
  t.ok(metric(body, 'chat_deliveries_total')! >= 7, 'deliveries counted')
  t.equal(metric(body, 'chat_longpolls_pending'), 0, 'the answered poll is no longer pending')
  controller.abort()
  await cat.close()
})

t.test('/metrics needs METRICS_TOKEN as a Bearer token; without one configured it is off', async (t) => {
  const app = await buildTestApp(t, { METRICS_TOKEN: TOKEN })
  const anonymous = await app.inject({ method: 'GET', url: '/metrics' })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['www-authenticate'], 'Bearer')
  t.notMatch(anonymous.body, /nodejs_|process_/, 'nothing about the process leaks')
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong-token-wrong-token' } })).statusCode, 401)
  t.equal((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode, 200)
  const off = await buildTestApp(t)
  const res = await off.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { message: /Metrics are off: set METRICS_TOKEN/ })
})

t.test(
  '/metrics on several processes: the bytes each reads from the bus, and the rooms it takes from it: only those it has readers for',
  { skip: skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing') },
  async (t) => {
    const { a, b } = await twoProcesses(t, { env: { METRICS_TOKEN: TOKEN, RATE_LIMIT_MESSAGES: '1000' } })
    const scrape = async (base: string) => {
      const body = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()
      return { bytes: metric(body, 'chat_bus_received_bytes_total')!, rooms: metric(body, 'chat_bus_rooms_watched')! }
    }
    const ann = await registerAccount(a.app, 'ann')
    const bob = await registerAccount(b.app, 'bob')
    t.equal((await post(a.base, ann, '/rooms', { name: 'busy' })).status, 201)
    const text = 'x'.repeat(1000)
    const burst = async () => {
      for (let i = 0; i < 20; i++) t.equal((await post(a.base, ann, '/longpolling/rooms/busy/messages', { text })).status, 201)
    }
    const before = await scrape(b.base)
    await burst()
    await new Promise((r) => setTimeout(r, 300))
    const without = await scrape(b.base)
    t.ok(without.bytes - before.bytes < 20_000, `B, with no reader of the room, read ${without.bytes - before.bytes} bytes from the bus for 20 KB said there`)
    t.ok((await scrape(a.base)).bytes >= 20_000, 'A, which has the room loaded, read them')
    const reader = await SocketClient.open(b.base, bob, '', {}, '/websocket/rooms/busy/socket')
    await reader.until(() => reader.hello !== undefined, 'hello')
    const watching = await scrape(b.base)
    t.equal(watching.rooms, without.rooms + 1, 'B takes the room from the bus once it has a reader of it')
    await burst()
    await reader.until(() => reader.events.filter((e) => e.text === text).length >= 20, 'the 20 messages on B')
    const withReader = await scrape(b.base)
    t.ok(withReader.bytes - watching.bytes >= 20_000, `and then reads what is said there: ${withReader.bytes - watching.bytes} bytes for 20 KB`)
    await reader.close()
  },
)
