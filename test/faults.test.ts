import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, eventually, range, skipUnless, SocketClient, startServer, signInAt, wholeLog } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'
import { freePort, haveRedis, TestRedis } from './redis.js'

const signIn = (base: string, user: string) => signInAt(base, user, 'longpolling')


// Faults against the real thing: a SQLite file and app processes killed with SIGKILL, the real
// PostgreSQL behind a proxy that cuts it off, a redis-server killed and started again empty.
// Every loop is bounded in count and time, and everything is on 127.0.0.1.

const withPostgres = await havePostgres()

/** After a restart on the same port: the client's pooled connections to the old process are dead; let it find out. */
async function reconnect(base: string): Promise<void> {
  for (let i = 0; i < 10; i++) {
    if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) return
  }
}

/** Says `text` over HTTP; the event when acknowledged (201), else the status (or 0: no answer). */
async function say(base: string, cookie: string, text: string): Promise<Event | number> {
  try {
    const res = await fetch(`${base}/longpolling/room/messages`, {
      method: 'POST',
      headers: { cookie, 'content-type': 'application/json' },
      body: JSON.stringify({ text }),
      signal: AbortSignal.timeout(5000),
    })
    return res.status === 201 ? ((await res.json()) as Event) : res.status
  } catch {
    return 0
  }
}

/** Senders that send until stopped (or `max` each), keeping what was acknowledged. */
function senders(bases: () => string[], cookies: string[], max = 400) {
  const acked: Event[] = []
  const refused: number[] = []
  let stop = false
  const loops = cookies.map(async (cookie, i) => {
    for (let n = 0; n < max && !stop; n++) {
      const all = bases()
      const result = await say(all[n % all.length]!, cookie, `s${i}-${n}`)
      if (typeof result === 'number') {
        refused.push(result)
        await new Promise((r) => setTimeout(r, 20))
      } else acked.push(result)
    }
  })
  return {
    acked,
    refused,
    async stop() {
      stop = true
      await Promise.all(loops)
    },
  }
}

function assertLog(t: Test, log: Event[], acked: Event[], what: string) {
  const ids = log.map((e) => e.id)
  t.same(ids, range(1, ids.length), `${what}: ids consecutive from 1, none reused`)
  const byId = new Map(log.map((e) => [e.id, e]))
  const lost = acked.filter((a) => byId.get(a.id)?.text !== a.text)
  t.same(lost, [], `${what}: every one of ${acked.length} acknowledged messages is in the log, under its id`)
}

t.test('SQLite: the app is killed (SIGKILL) while senders send; after a restart nothing acknowledged is missing, ids go on, a resuming reader gets each event once', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-kill-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const port = await freePort()
  const env = { STORE: 'sqlite', DATA_DIR: dataDir, PORT: String(port), RATE_LIMIT_MESSAGES: '100000', PRESENCE_GRACE: '0' }
  let server = await startServer(t, env)
  const base = server.base
  const cookies = await Promise.all(['ann', 'bob', 'cat'].map((name) => signIn(base, name)))
  const reader = await SocketClient.open(base, await signIn(base, 'reader'))
  await reader.until(() => reader.hello !== undefined, 'hello')
  const epoch = reader.hello!.epoch
  const sending = senders(() => [base], cookies)
  await eventually(() => sending.acked.length >= 150, '150 acknowledged messages', 10_000)
  server.child.kill('SIGKILL')
  await once(server.child, 'exit')
  const killedAt = Date.now()
  await sending.stop()
  const acked = sending.acked.length
  t.ok(acked >= 150, `${acked} acknowledged before the kill; ${sending.refused.length} sends got no answer`)

  server = await startServer(t, env)
  await reconnect(base)
  const recovery = Date.now() - killedAt
  t.comment(`restarted and serving ${recovery} ms after the kill`)
  const log = await wholeLog(base, cookies[0]!)
  assertLog(t, log, sending.acked, 'after the kill')
  const after = await say(base, cookies[0]!, 'after the restart')
  if (typeof after !== 'object') throw new Error(`a send after the restart got ${after}`)
  const logAfter = await wholeLog(base, cookies[0]!)
  t.same(logAfter.map((e) => e.id), range(1, after.id), 'ids go on from the last one committed (the leaves of the killed process\'s users, then the new message)')
  t.ok(after.id > log.at(-1)!.id, 'no id given twice')

  // The reader resumes from its cursor in the same epoch: exactly the events it had not seen.
  const cursor = reader.events.at(-1)!.id
  const resumed = await SocketClient.open(base, await signIn(base, 'reader'), `?lastReceived=${cursor}&epoch=${epoch}`)
  await resumed.until(() => resumed.events.some((e) => e.text === 'after the restart'), 'the reader to catch up')
  t.equal(resumed.hello?.epoch, epoch, 'the same log: same epoch after the restart')
  const seen = [...reader.events, ...resumed.events].map((e) => e.id)
  const upTo = seen.indexOf(log.length + 1)
  t.same(seen.slice(0, upTo + 1), range(seen[0]!, log.length + 1), 'the reader saw every event exactly once, across the kill')
  await resumed.close()
  server.child.kill('SIGTERM')
  await once(server.child, 'exit')
})

/** A TCP proxy in front of PostgreSQL that the test can cut and restore. */
class CuttableProxy {
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}
  async open(): Promise<void> {
    this.server = createServer((client) => {
      const upstream = createConnection(this.target)
      for (const s of [client, upstream]) {
        this.sockets.add(s)
        s.on('close', () => this.sockets.delete(s))
        s.on('error', () => {})
      }
      client.pipe(upstream).pipe(client)
      client.on('close', () => upstream.destroy())
      upstream.on('close', () => client.destroy())
    })
    this.server.listen(this.port, '127.0.0.1')
    await once(this.server, 'listening')
  }
  /** Every connection is cut and new ones are refused. */
  async cut(): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const s of this.sockets) s.destroy()
    if (server) await new Promise((resolve) => server.close(resolve))
  }
}

t.test('PostgreSQL unreachable and back: sends answer 503 while it is down, nothing acknowledged is lost, recovery is automatic', { skip: skipUnless(withPostgres, 'PostgreSQL is not running') }, async (t) => {
  const url = new URL(await freshDatabase(t))
  const proxy = new CuttableProxy(await freePort(), { host: url.hostname, port: Number(url.port || 5432) })
  await proxy.open()
  t.teardown(() => proxy.cut())
  const viaProxy = new URL(url)
  viaProxy.port = String(proxy.port)
  const app = await buildTestApp(t, { STORE: 'postgres', DATABASE_URL: viaProxy.toString(), RATE_LIMIT_MESSAGES: '100000' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const cookie = await signIn(base, 'ann')
  const before = await say(base, cookie, 'before')
  t.equal(typeof before, 'object', 'acknowledged while the database is there')

  await proxy.cut()
  const cutAt = Date.now()
  const during = await say(base, cookie, 'while it is down')
  t.equal(during, 503, 'a send while it is down: 503, at once rather than hanging')
  t.ok(Date.now() - cutAt < 8000, `answered in ${Date.now() - cutAt} ms`)
  t.equal((await fetch(`${base}/readyz`)).status, 503, '/readyz says so')

  await proxy.open()
  const restoredAt = Date.now()
  let back: Event | number = 0
  for (let i = 0; i < 100 && typeof back === 'number'; i++) {
    back = await say(base, cookie, 'back')
    if (typeof back === 'number') await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(typeof back, 'object', 'sending works again by itself')
  t.comment(`first acknowledged send ${Date.now() - restoredAt} ms after the database came back`)
  const log = await wholeLog(base, cookie)
  t.same(log.filter((e) => e.type === 'message').map((e) => e.text), ['before', 'back'], 'the refused message was never said; nothing acknowledged is missing')
  t.same(log.map((e) => e.id), range(1, log.length), 'no id skipped or reused')
})

t.test('two processes on PostgreSQL and Redis: Redis is killed and starts again empty; nothing acknowledged is lost, no id reused, delivery back by itself', { skip: skipUnless(withPostgres && haveRedis, 'PostgreSQL or redis-server is missing') }, async (t) => {
  const redis = new TestRedis(await freePort())
  await redis.start()
  t.teardown(() => redis.dispose())
  const env = { STORE: 'postgres', BROKER: 'redis', DATABASE_URL: await freshDatabase(t), REDIS_URL: redis.url, RATE_LIMIT_MESSAGES: '100000', PRESENCE_TTL: '2' }
  const a = await startServer(t, env)
  const b = await startServer(t, env)
  const cookies = await Promise.all(['ann', 'bob', 'cat', 'dan'].map((name) => signIn(a.base, name)))
  const readers = await Promise.all([a.base, b.base].map(async (base, i) => SocketClient.open(base, await signIn(base, `reader${i}`))))
  const sending = senders(() => [a.base, b.base], cookies)
  await eventually(() => sending.acked.length >= 100, '100 acknowledged messages', 10_000)
  await redis.stop()
  const killedAt = Date.now()
  const ackedBefore = sending.acked.length
  await eventually(() => sending.acked.length >= ackedBefore + 50, 'sends acknowledged while Redis is down', 10_000)
  await redis.start()
  t.comment(`redis-server down for ${Date.now() - killedAt} ms, started again empty`)
  await eventually(() => sending.acked.length >= ackedBefore + 150, 'more sends after it is back', 15_000)
  await sending.stop()

  const last = Math.max(...sending.acked.map((e) => e.id))
  const deliveredAt = Date.now()
  for (const reader of readers) await reader.until(() => reader.events.some((e) => e.id >= last), 'every reader to get the last event', 15_000)
  t.comment(`both readers had everything ${Date.now() - deliveredAt} ms after the last send`)
  const log = await wholeLog(a.base, cookies[0]!)
  assertLog(t, log, sending.acked, 'after the Redis restart')
  for (const [i, reader] of readers.entries()) {
    const ids = reader.ids().filter((id) => id <= last)
    t.same(ids, range(ids[0]!, last), `reader on process ${i === 0 ? 'A' : 'B'}: every event once, in order`)
  }
  t.comment(`sent ${sending.acked.length + sending.refused.length}, acknowledged ${sending.acked.length}, refused ${sending.refused.length}`)
  await Promise.all(readers.map((r) => r.close()))
})

t.test('a memory store restarts: every transport tells the client the epoch changed', async (t) => {
  const port = await freePort()
  const env = { STORE: 'memory', PORT: String(port) }
  let server = await startServer(t, env)
  const base = server.base
  const cookie = await signIn(base, 'ann')
  await say(base, cookie, 'one')
  const first = await fetch(`${base}/longpolling/room/messages?lastReceived=0`, { headers: { cookie } })
  const oldEpoch = first.headers.get('x-room-epoch')!
  t.match(oldEpoch, /^[A-Za-z0-9_-]+$/, 'long polling says the epoch in X-Room-Epoch')
  const cursor = ((await first.json()) as Event[]).at(-1)!.id
  server.child.kill('SIGTERM')
  await once(server.child, 'exit')

  server = await startServer(t, env)
  await reconnect(base)
  // A memory store keeps its sessions in memory too: sign in again (SQLite and PostgreSQL keep them).
  const again = await signIn(base, 'ann')
  await say(base, again, 'new room')
  const poll = await fetch(`${base}/longpolling/room/messages?lastReceived=${cursor}&epoch=${oldEpoch}`, { headers: { cookie: again } })
  t.equal(poll.status, 409, 'long polling: 409 at once')
  const body = (await poll.json()) as { epoch: string; lastId: number; reason: string }
  t.not(body.epoch, oldEpoch, 'with the new epoch')
  t.match(body, { reason: 'epoch', lastId: Number })
  t.equal(poll.headers.get('x-room-epoch'), body.epoch)

  const socket = await SocketClient.open(base, again, `?lastReceived=${cursor}&epoch=${oldEpoch}`)
  t.match(await socket.untilClosed(), { code: 4409, reason: /another epoch/ }, 'WebSocket: 4409 at once')
  const fresh = await SocketClient.open(base, again)
  await fresh.until(() => fresh.hello !== undefined, 'hello')
  t.equal(fresh.hello!.epoch, body.epoch, 'a new socket is told the new epoch first')
  await fresh.close()

  const history = await fetch(`${base}/room/history?before=${cursor + 1}&epoch=${oldEpoch}`, { headers: { cookie: again } })
  t.equal(history.status, 409, 'history: 409')
  const page = await fetch(`${base}/refresh/room?before=${cursor + 1}&epoch=${oldEpoch}`, { headers: { cookie: again }, redirect: 'manual' })
  t.same([page.status, page.headers.get('location')], [303, '/refresh/room'], 'the refresh page starts over at the newest')
  server.child.kill('SIGTERM')
  await once(server.child, 'exit')
})
