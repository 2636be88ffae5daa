import pg from 'pg'
import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, range, skipUnless, SocketClient } from './helpers.js'
import { freshDatabase, havePostgres, havePostgresBinaries, PrivatePostgres } from './pg.js'
import { freePort, haveRedis, TestRedis } from './redis.js'

// Backends that stop answering without going away: a redis-server and a PostgreSQL server of
// our own, stopped with SIGSTOP (their connections stay open; nothing answers), then SIGCONT.
// Every request is answered within BACKEND_TIMEOUT (503 or done), /readyz within a second,
// and nothing acknowledged is lost or doubled. The shared servers are never touched (the last
// test holds locks in a database of its own on the shared PostgreSQL, and stops nothing).
// Two bounds meet there: each query has the pool's timeout (a stopped server on an open
// connection), and each commit has one deadline as a whole (statements each in time, the sum not).

const withPostgres = await havePostgres()
const TIMEOUT_S = 1
/** What a request may take past the deadline on a busy machine before it counts as hanging. */
const SLACK_MS = 1500

async function signIn(base: string, user: string): Promise<{ status: number; cookie?: string; ms: number }> {
  const began = Date.now()
  const res = await fetch(`${base}/signin`, {
    method: 'POST',
    headers: { accept: 'application/json' },
    body: new URLSearchParams({ user, transport: 'websocket' }),
    redirect: 'manual',
    signal: AbortSignal.timeout(30_000),
  })
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('chat_session='))?.split(';')[0]
  return { status: res.status, ms: Date.now() - began, ...(cookie && { cookie }) }
}

async function timed<T>(what: () => Promise<T>): Promise<[T, number]> {
  const began = Date.now()
  const value = await what()
  return [value, Date.now() - began]
}

async function say(base: string, cookie: string, text: string): Promise<{ status: number; event?: Event }> {
  const res = await fetch(`${base}/longpolling/room/messages`, {
    method: 'POST',
    headers: { cookie, 'content-type': 'application/json' },
    body: JSON.stringify({ text }),
    signal: AbortSignal.timeout(30_000),
  })
  return res.status === 201 ? { status: 201, event: (await res.json()) as Event } : { status: res.status }
}

async function readyz(base: string): Promise<number> {
  return (await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(30_000) })).status
}

/** A frame sent over the socket, and its answer: an ack (committed) or an error frame. */
async function sayOverSocket(socket: SocketClient, text: string, ref: string): Promise<'ack' | string> {
  socket.send({ text, ref })
  await socket.until(() => socket.acks.some((a) => a.ref === ref) || socket.errors.some((e) => e.ref === ref), `an answer to ${ref}`, 30_000)
  return socket.acks.some((a) => a.ref === ref) ? 'ack' : socket.errors.find((e) => e.ref === ref)!.error
}

async function history(base: string, cookie: string): Promise<Event[]> {
  const res = await fetch(`${base}/room/history?limit=200`, { headers: { cookie } })
  return ((await res.json()) as { events: Event[] }).events
}

function withinDeadline(t: Test, ms: number, what: string): void {
  t.ok(ms < TIMEOUT_S * 1000 + SLACK_MS, `${what}: answered in ${ms} ms (BACKEND_TIMEOUT ${TIMEOUT_S} s)`)
}

t.test('Redis stopped (SIGSTOP): readiness, sign-in and sends are answered within the deadline, and everything works once it goes on', { skip: skipUnless(haveRedis && withPostgres, 'redis-server or PostgreSQL is missing') }, async (t) => {
  const redis = new TestRedis(await freePort())
  await redis.start()
  t.teardown(() => {
    redis.child?.kill('SIGCONT')
    return redis.dispose()
  })
  const app = await buildTestApp(t, { STORE: 'postgres', DATABASE_URL: await freshDatabase(t), BROKER: 'redis', REDIS_URL: redis.url, BACKEND_TIMEOUT: String(TIMEOUT_S), RATE_LIMIT_MESSAGES: '1000' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = (await signIn(base, 'ann')).cookie!
  const socket = await SocketClient.open(base, ann)
  await socket.until(() => socket.hello !== undefined, 'hello')
  t.equal((await say(base, ann, 'before')).status, 201)

  redis.child!.kill('SIGSTOP')
  const [ready, readyMs] = await timed(() => readyz(base))
  t.equal(ready, 503, '/readyz: 503 while Redis does not answer')
  t.ok(readyMs < 1000 + 500, `/readyz answered in ${readyMs} ms (within a second, plus slack for a busy machine)`)

  const [first, firstMs] = await timed(() => say(base, ann, 'during 1'))
  withinDeadline(t, firstMs, `long polling send while Redis is stopped (${first.status}: its limit counted here alone)`)
  t.equal(first.status, 201, 'the message is still committed: the log is not in Redis')
  const [second, secondMs] = await timed(() => say(base, ann, 'during 2'))
  t.equal(second.status, 201)
  t.ok(secondMs < 500, `the next send does not wait for Redis again: ${secondMs} ms`)
  const [answer, socketMs] = await timed(() => sayOverSocket(socket, 'during 3', 'r1'))
  t.equal(answer, 'ack', 'a WebSocket send is acknowledged')
  withinDeadline(t, socketMs, 'WebSocket send while Redis is stopped')

  const [newcomer, signInMs] = await timed(() => signIn(base, 'bob'))
  t.equal(newcomer.status, 503, 'signing in a new name (its claim lives in Redis) is refused with 503, not left hanging')
  withinDeadline(t, signInMs, 'sign-in while Redis is stopped')
  const [again] = await timed(() => readyz(base))
  t.equal(again, 503, 'still not ready')

  redis.child!.kill('SIGCONT')
  let back = 503
  for (let i = 0; i < 50 && back !== 200; i++) {
    back = await readyz(base)
    if (back !== 200) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(back, 200, '/readyz is 200 again once Redis answers')
  t.equal((await signIn(base, 'bob')).status, 303, 'sign-in works again')
  t.equal((await say(base, ann, 'after')).status, 201)
  const texts = (await history(base, ann)).filter((e) => e.type === 'message').map((e) => e.text)
  t.same(texts, ['before', 'during 1', 'during 2', 'during 3', 'after'], 'every acknowledged message once, in order')
  await socket.close()
})

t.test('PostgreSQL stopped (SIGSTOP): sends are refused with 503 within the deadline, /readyz within a second, nothing half-done, and it recovers by itself', { skip: skipUnless(havePostgresBinaries, 'PostgreSQL server binaries are missing') }, async (t) => {
  const server = new PrivatePostgres(await freePort())
  t.teardown(() => server.dispose())
  server.start()
  const app = await buildTestApp(t, { STORE: 'postgres', DATABASE_URL: server.url, BACKEND_TIMEOUT: String(TIMEOUT_S), RATE_LIMIT_MESSAGES: '1000' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = (await signIn(base, 'ann')).cookie!
  const socket = await SocketClient.open(base, ann)
  await socket.until(() => socket.hello !== undefined, 'hello')
  const before = await say(base, ann, 'before')
  t.equal(before.status, 201)

  server.signal('SIGSTOP')
  const [ready, readyMs] = await timed(() => readyz(base))
  t.equal(ready, 503, '/readyz: 503 while PostgreSQL does not answer')
  t.ok(readyMs < 1000 + 500, `/readyz answered in ${readyMs} ms`)
  const [first, firstMs] = await timed(() => say(base, ann, 'during 1'))
  t.equal(first.status, 503, 'a long polling send: 503')
  withinDeadline(t, firstMs, 'the first send while PostgreSQL is stopped')
  const [second, secondMs] = await timed(() => say(base, ann, 'during 2'))
  t.equal(second.status, 503, 'the next one too')
  t.ok(secondMs < 500, `without waiting for the database again: ${secondMs} ms`)
  const [answer, socketMs] = await timed(() => sayOverSocket(socket, 'during 3', 'r1'))
  t.equal(answer, 'Service Unavailable', 'a WebSocket send: an error frame that says so')
  withinDeadline(t, socketMs, 'WebSocket send while PostgreSQL is stopped')
  const [signedIn, signInMs] = await timed(() => signIn(base, 'bob'))
  t.equal(signedIn.status, 503, 'sign-in (its session is stored) answers 503')
  withinDeadline(t, signInMs, 'sign-in while PostgreSQL is stopped')

  server.signal('SIGCONT')
  let after = { status: 0 } as { status: number; event?: Event }
  for (let i = 0; i < 50 && after.status !== 201; i++) {
    after = await say(base, ann, 'after')
    if (after.status !== 201) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(after.status, 201, 'sending works again by itself')
  t.equal(await readyz(base), 200)
  const log = await history(base, ann)
  t.same(log.map((e) => e.id), range(1, log.length), 'ids consecutive: none reused or skipped')
  const texts = log.filter((e) => e.type === 'message').map((e) => e.text)
  t.same(texts, ['before', 'after'], 'nothing refused was committed behind the refusal, and every acknowledged message is there')
  await socket.close()
})

/** The status of a request, or 0 when it got no answer within 20 s (it hung). */
async function statusOf(request: Promise<Response>): Promise<number> {
  try {
    return (await request).status
  } catch {
    return 0
  }
}

/** A read that goes to the store: more history than the room keeps in memory. */
const historyRead = (base: string, cookie: string) => statusOf(fetch(`${base}/room/history?limit=200`, { headers: { cookie }, signal: AbortSignal.timeout(20_000) }))
const send = (base: string, cookie: string, text: string) =>
  statusOf(fetch(`${base}/longpolling/room/messages`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ text }), signal: AbortSignal.timeout(20_000) }))

t.test("PostgreSQL stopped (SIGSTOP) while the pool's connections are open and idle: a send and a history read are each answered 503 within the deadline", { skip: skipUnless(havePostgresBinaries, 'PostgreSQL server binaries are missing') }, async (t) => {
  const server = new PrivatePostgres(await freePort())
  t.teardown(() => server.dispose())
  server.start()
  const app = await buildTestApp(t, { STORE: 'postgres', DATABASE_URL: server.url, BACKEND_TIMEOUT: String(TIMEOUT_S), RATE_LIMIT_MESSAGES: '1000' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = (await signIn(base, 'ann')).cookie!
  t.equal(await send(base, ann, 'before'), 201)
  // Reads at once each take a connection of the pool; given back, they stay open, idle.
  const watcher = new pg.Client({ connectionString: server.url })
  await watcher.connect()
  let idle = 0
  for (let round = 0; round < 20 && idle < 2; round++) {
    t.same(await Promise.all(range(1, 4).map(() => historyRead(base, ann))), [200, 200, 200, 200], round === 0 ? 'reads answer' : 'again')
    const { rows } = await watcher.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'client backend' AND state = 'idle' AND pid <> pg_backend_pid()",
    )
    idle = rows[0]!.n
  }
  await watcher.end()
  t.ok(idle >= 2, `the app holds open, idle connections (${idle}): the send and the read need no new one`)

  server.signal('SIGSTOP')
  // Both at once, each on a connection that is already open: a commit, and a plain query.
  const [[sent, sendMs], [read, readMs]] = await Promise.all([timed(() => send(base, ann, 'during')), timed(() => historyRead(base, ann))])
  t.equal(sent, 503, 'the send (a commit): 503, not a hang')
  withinDeadline(t, sendMs, 'the send on an open connection')
  t.equal(read, 503, 'the history read: 503, not a hang')
  withinDeadline(t, readMs, 'the history read on an open connection')
  const [again, againMs] = await timed(() => historyRead(base, ann))
  t.equal(again, 503, 'another read: 503 too')
  withinDeadline(t, againMs, 'the next history read')

  server.signal('SIGCONT')
  let after = 0
  for (let i = 0; i < 50 && after !== 201; i++) {
    after = await send(base, ann, 'after')
    if (after !== 201) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(after, 201, 'sending works again by itself')
  const log = await history(base, ann)
  t.same(log.map((e) => e.id), range(1, log.length), 'ids consecutive: none reused or skipped')
  t.same(log.filter((e) => e.type === 'message').map((e) => e.text), ['before', 'after'], 'the refused send was not committed behind its refusal')
})

/** Polls the database until a backend waits on a lock while running a statement like `pattern`. */
async function waitingOnLock(client: pg.Client, pattern: string): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const { rows } = await client.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", [pattern])
    if (rows[0]!.n > 0) return true
    await new Promise((r) => setTimeout(r, 25))
  }
  return false
}

t.test('PostgreSQL answering each statement of a commit within the per-query timeout, but the whole commit not within BACKEND_TIMEOUT: 503 at the deadline, and nothing committed', { skip: skipUnless(withPostgres, 'PostgreSQL is not running') }, async (t) => {
  // Each statement waits for a lock that another transaction lets go in time for that statement
  // (2.7 s of 4), but the commit as a whole would take 5.4 s: only the commit's deadline bounds it.
  const timeoutS = 4
  const url = await freshDatabase(t)
  const app = await buildTestApp(t, { STORE: 'postgres', DATABASE_URL: url, BACKEND_TIMEOUT: String(timeoutS), RATE_LIMIT_MESSAGES: '1000' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = (await signIn(base, 'ann')).cookie!
  t.equal(await send(base, ann, 'before'), 201)

  const [counter, events, watcher] = [0, 1, 2].map(() => new pg.Client({ connectionString: url }))
  for (const client of [counter!, events!, watcher!]) {
    await client.connect()
    t.teardown(() => client.end())
  }
  // The lobby's counter row (the commit's UPDATE), and the events table (its INSERT), each held by a transaction of ours.
  await counter!.query('BEGIN')
  await counter!.query("UPDATE chat_room_logs SET last_id = last_id WHERE room = 'lobby'")
  await events!.query('BEGIN')
  await events!.query('LOCK TABLE chat_room_events IN SHARE MODE')

  const began = Date.now()
  const sending = send(base, ann, 'during').then((status) => [status, Date.now() - began] as const)
  const at = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, began + ms - Date.now())))
  t.ok(await waitingOnLock(watcher!, 'UPDATE chat_room_logs%'), "the commit's UPDATE waits for the counter row")
  await at(2700)
  await counter!.query('COMMIT')
  t.ok(await waitingOnLock(watcher!, '%INSERT INTO chat_room_events%'), 'then its INSERT waits for the table')
  await at(5400)
  await events!.query('COMMIT')
  const [status, ms] = await sending
  t.equal(status, 503, `the send is refused: the commit took longer than BACKEND_TIMEOUT (answered after ${ms} ms)`)
  t.ok(ms < timeoutS * 1000 + SLACK_MS, `at the deadline: ${ms} ms (BACKEND_TIMEOUT ${timeoutS} s)`)

  let after = 0
  for (let i = 0; i < 50 && after !== 201; i++) {
    after = await send(base, ann, 'after')
    if (after !== 201) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(after, 201, 'sending works again')
  const log = await history(base, ann)
  t.same(log.map((e) => e.id), range(1, log.length), 'ids consecutive')
  t.same(log.filter((e) => e.type === 'message').map((e) => e.text), ['before', 'after'], 'the refused send was rolled back, not committed behind its refusal')
})
