import pg from 'pg'
import t from 'tap'
import type { Event, EventDraft } from '../app/chatroom/event.js'
import { hidePassword, lostPrimary, postgresHosts } from '../app/chatroom/store/pg-hosts.js'
import { NoPrimaryError, PostgresStore } from '../app/chatroom/store/postgres.js'
import { loadConfig } from '../conf/config.js'
import { eventually, range, signInAt, skipUnless, SocketClient, startServer, wholeLog } from './helpers.js'
import { havePostgresBinaries, PrivatePostgres } from './pg.js'
import { freePort, haveRedis, TestRedis } from './redis.js'

// A PostgreSQL failover against the real thing: a primary and a streaming standby of our own
// (pg_basebackup), synchronous, two app processes on Redis with both hosts in DATABASE_URL. The
// primary is killed (SIGKILL) while people send; writes are refused with 503 while no host takes
// them; the standby is promoted and each process finds it by itself. Nothing acknowledged is
// lost, nothing is doubled, and no reader skips an event.

t.test('DATABASE_URL: one host or a list, as libpq writes it; a password never shown', async (t) => {
  t.same(postgresHosts('postgres://app:pw@db1:5432,db2:6432/chat?sslmode=disable'), ['postgres://app:pw@db1:5432/chat?sslmode=disable', 'postgres://app:pw@db2:6432/chat?sslmode=disable'])
  t.same(postgresHosts('postgresql://127.0.0.1/chat'), ['postgresql://127.0.0.1/chat'])
  t.throws(() => postgresHosts('mysql://db/chat'), /postgres:\/\//)
  t.throws(() => postgresHosts('postgres://db1,,db2/chat'), /empty/)
  t.throws(() => postgresHosts('postgres://db1:port/chat'))
  t.equal(hidePassword('postgres://app:secret@db1,db2/chat'), 'postgres://app:***@db1,db2/chat')
  t.equal(hidePassword('redis://:secret@127.0.0.1:6379'), 'redis://:***@127.0.0.1:6379')
  t.equal(hidePassword('postgres://app@db1/chat'), 'postgres://app@db1/chat', 'no password: as it is')
  t.equal(hidePassword('postgres://app:p@ss@db1,db2/chat'), 'postgres://app:***@db1,db2/chat', 'a raw @ in the password: none of it shown')
  t.same(postgresHosts('postgres://app:p@ss@db1,db2/chat'), ['postgres://app:p@ss@db1/chat', 'postgres://app:p@ss@db2/chat'], 'and every host gets the whole password')
  t.same(postgresHosts('postgres:///chat?host=/var/run/postgresql'), ['postgres:///chat?host=/var/run/postgresql'], 'a Unix socket (no host): as it is')
  for (const code of ['ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', '08006', '57P03']) t.ok(lostPrimary(Object.assign(new Error(code), { code })), `${code}: look for the primary`)
  t.ok(lostPrimary(Object.assign(new Error('PostgreSQL did not answer within 2000 ms'), { name: 'DeadlineError' })), 'a commit past its deadline')
  t.notOk(lostPrimary(Object.assign(new TypeError('bad argument'), { code: 'ERR_INVALID_ARG_TYPE' })), "a bug of Node's is not a lost primary")
  t.ok(lostPrimary(Object.assign(new Error('cannot execute INSERT in a read-only transaction'), { code: '25006' })), 'a standby refusing a write')
  t.ok(lostPrimary(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })))
  t.notOk(lostPrimary(Object.assign(new Error('duplicate key'), { code: '23505' })), 'an error of the query is not a lost primary')
  t.equal(loadConfig({ DATABASE_URL: 'postgres://u@a:1,b:2/chat' }).DATABASE_URL, 'postgres://u@a:1,b:2/chat', 'the setting takes a list')
  t.throws(() => loadConfig({ DATABASE_URL: 'postgres://a:1,,b/chat' }), /DATABASE_URL/)
})

/** Says one message with its client id, trying again (on either process) until it is acknowledged. */
async function sayOnce(bases: string[], cookie: string, text: string, refused: number[]): Promise<Event> {
  for (let attempt = 0; attempt < 300; attempt++) {
    let status = 0
    try {
      const res = await fetch(`${bases[attempt % bases.length]}/longpolling/room/messages`, {
        method: 'POST',
        headers: { cookie, 'content-type': 'application/json' },
        body: JSON.stringify({ text, clientId: `failover-${text}` }),
        signal: AbortSignal.timeout(10_000),
      })
      status = res.status
      if (status === 201 || status === 200) return (await res.json()) as Event
    } catch {
      // No answer: counted as 0.
    }
    refused.push(status)
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`${text} was never acknowledged (answers: ${refused.slice(-5).join(', ')})`)
}

t.test(
  'failover: the primary is killed while people send, the standby promoted; every process moves to it by itself, writes are refused (503) meanwhile, nothing acknowledged is lost or doubled, no reader skips',
  { skip: skipUnless(havePostgresBinaries && haveRedis, 'PostgreSQL server binaries or redis-server are missing') },
  async (t) => {
    const primary = new PrivatePostgres(await freePort())
    t.teardown(() => primary.dispose())
    primary.start()
    const standby = new PrivatePostgres(await freePort())
    t.teardown(() => standby.dispose())
    standby.startStandbyOf(primary)
    // Synchronous: a commit is acknowledged once the standby has it (what asynchronous replication loses is in docs/operations.md).
    const admin = new pg.Client({ connectionString: primary.url })
    await admin.connect()
    await admin.query("ALTER SYSTEM SET synchronous_standby_names = '*'")
    await admin.query('SELECT pg_reload_conf()')
    for (let i = 0; i < 150 && (await admin.query("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'")).rowCount !== 1; i++) await new Promise((r) => setTimeout(r, 100))
    t.equal((await admin.query("SELECT sync_state FROM pg_stat_replication")).rows[0]?.sync_state, 'sync', 'the standby is synchronous')
    await admin.end()

    const redis = new TestRedis(await freePort())
    await redis.start()
    t.teardown(() => redis.dispose())
    const url = `postgres://postgres@127.0.0.1:${primary.port},127.0.0.1:${standby.port}/postgres`
    const env = { STORE: 'postgres', BROKER: 'redis', DATABASE_URL: url, REDIS_URL: redis.url, RATE_LIMIT_MESSAGES: '100000', BACKEND_TIMEOUT: '2' }
    const a = await startServer(t, env)
    const b = await startServer(t, env)
    const bases = [a.base, b.base]
    const senders = await Promise.all(['ann', 'bob', 'cat'].map((name, i) => signInAt(bases[i % 2]!, name, 'longpolling')))
    const readers = await Promise.all(bases.map(async (base, i) => SocketClient.open(base, await signInAt(base, `reader${i}`))))
    for (const reader of readers) await reader.until(() => reader.hello !== undefined, 'hello')

    const acked: Event[] = []
    const refused: number[] = []
    let phase: 'before' | 'down' | 'after' = 'before'
    const sentIn = { before: 0, down: 0, after: 0 }
    let stop = false
    const loops = senders.map(async (cookie, i) => {
      for (let n = 0; n < 400 && !stop; n++) {
        const at = phase
        acked.push(await sayOnce(i % 2 ? [b.base, a.base] : bases, cookie, `s${i}-${n}`, refused))
        sentIn[at]++
      }
    })
    await eventually(() => acked.length >= 60, '60 acknowledged messages', 20_000)

    primary.kill()
    phase = 'down'
    const killedAt = Date.now()
    // While no host takes writes, sends are refused, clearly and quickly.
    await eventually(() => refused.length >= 6, 'sends refused while there is no primary', 20_000)
    const [ready] = await Promise.all([fetch(`${a.base}/readyz`).then((r) => r.status)])
    t.equal(ready, 503, '/readyz: 503 while there is no primary')
    await new Promise((r) => setTimeout(r, 1000))
    standby.promote()
    phase = 'after'
    const promotedAt = Date.now()
    const countAtPromotion = acked.length
    await eventually(() => acked.length >= countAtPromotion + 60, '60 more acknowledged after the promotion', 30_000)
    t.comment(`primary killed; standby promoted ${promotedAt - killedAt} ms later; first acknowledged send after it in ${Date.now() - promotedAt} ms or less`)
    stop = true
    await Promise.all(loops)

    const answers = refused.filter((s) => s !== 503)
    t.same(answers, [], `every refusal was a 503 (${refused.length} refused sends, each tried again with its client id)`)
    for (const [i, server] of [a, b].entries()) {
      t.match(server.output(), /none of the 2 hosts takes writes; refusing them until one does/, `process ${'AB'[i]} said it had no primary (and refused writes at once)`)
      t.match(server.output(), `writes now go to postgres://postgres@127.0.0.1:${standby.port}/postgres`, `process ${'AB'[i]} says writes go to the promoted standby now`)
      t.equal((await fetch(`${server.base}/readyz`)).status, 200, `process ${'AB'[i]} is ready again`)
    }

    const log = await wholeLog(a.base, senders[0]!)
    t.same(log.map((e) => e.id), range(1, log.length), 'ids consecutive from 1: none reused or skipped')
    const byId = new Map(log.map((e) => [e.id, e]))
    t.same(acked.filter((e) => byId.get(e.id)?.text !== e.text), [], `all ${acked.length} acknowledged messages are in the log under their ids`)
    const texts = log.filter((e) => e.type === 'message').map((e) => e.text!)
    t.equal(new Set(texts).size, texts.length, 'no message is in the log twice')
    t.same([...texts].sort(), acked.map((e) => e.text!).sort(), 'and nothing is there that was not acknowledged (each send was tried until it was)')
    t.ok(sentIn.after > 0, `sent after the promotion: ${sentIn.after}`)

    const last = Math.max(...acked.map((e) => e.id))
    for (const [i, reader] of readers.entries()) {
      await reader.until(() => reader.events.some((e) => e.id >= last), `reader on ${'AB'[i]} to get event ${last}`, 20_000)
      const ids = reader.ids().filter((id) => id <= last)
      t.same(ids, range(ids[0]!, last), `the reader on process ${'AB'[i]}: every event once, in order, across the failover`)
    }
    await Promise.all(readers.map((r) => r.close()))
  },
)

t.test(
  'the store alone, on a list of hosts: it takes the one that answers, says which one it could not reach, refuses writes at once while none takes them (503, not ready), and moves to the one that does',
  { skip: skipUnless(havePostgresBinaries, 'PostgreSQL server binaries are missing') },
  async (t) => {
    const nobody = await freePort()
    const none = new PostgresStore({ url: `postgres://postgres@127.0.0.1:${nobody},127.0.0.1:${await freePort()}/postgres`, timeoutMs: 1000 })
    await t.rejects(none.open(), /none of the 2 hosts of DATABASE_URL takes writes \(postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres: connect ECONNREFUSED/, 'no host at all: it says so, and what each answered')
    await none.close()

    const second = new PrivatePostgres(await freePort())
    t.teardown(() => second.dispose())
    second.start()
    const said: string[] = []
    const store = new PostgresStore({ url: `postgres://postgres@127.0.0.1:${nobody},127.0.0.1:${second.port}/postgres`, timeoutMs: 1000, onError: (e) => said.push((e as Error).message) })
    await store.open()
    const draft = (text: string): EventDraft[] => [{ type: 'message', user: 'ann', text }]
    t.same((await store.append(draft('on the second host'))).map((s) => s.event.id), [1], 'the first host is out of reach: the second takes the writes')

    second.kill()
    await t.rejects(store.append(draft('while it is gone')), 'the host that took writes is gone: the send fails')
    for (let i = 0; i < 100 && !said.some((m) => /none of the 2 hosts takes writes/.test(m)); i++) await new Promise((r) => setTimeout(r, 50))
    t.match(said.join('\n'), /none of the 2 hosts takes writes; refusing them until one does/, 'it says no host takes writes')
    const refused = await store.append(draft('refused at once')).catch((e: unknown) => e)
    t.ok(refused instanceof NoPrimaryError && refused.statusCode === 503, 'and refuses the next write at once, 503')
    t.equal(await store.ready(), false, 'not ready meanwhile')

    // A server comes up on the first address: the search finds it and writes go there.
    const first = new PrivatePostgres(nobody)
    t.teardown(() => first.dispose())
    first.start()
    for (let i = 0; i < 100 && !(await store.ready()); i++) await new Promise((r) => setTimeout(r, 50))
    t.equal(await store.ready(), true, 'ready again once a host takes writes')
    t.match(said.join('\n'), `writes now go to postgres://postgres@127.0.0.1:${nobody}/postgres`, 'and it says where writes go now')
    await store.close()
  },
)
