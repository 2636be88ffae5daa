import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { PostgresStore } from '../app/chatroom/store/postgres.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import type { Store } from '../app/chatroom/store/store.js'
import { buildTestApp, controlledClock, signIn, skipUnless, SocketClient } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'

type Teardown = { teardown(fn: () => unknown): void }

function tempDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-sessions-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const kinds: [string, (t: Teardown) => Promise<Store>, string | false][] = [
  ['memory', async () => new MemoryStore(), false],
  ['sqlite', async (t) => new SqliteStore(tempDir(t)), false],
  ['postgres', async (t) => new PostgresStore({ url: await freshDatabase(t) }), skipUnless(await havePostgres(), 'PostgreSQL is not running')],
]


for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: 600 cookie-less sign-ins from one address keep 50 sessions; the least recently used is signed out, its socket closed`, { skip }, async (t) => {
    const app = await buildTestApp(t, {}, { store: await make(t) })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const status = async (cookie: string) => (await app.inject({ method: 'GET', url: '/room/users', headers: { cookie } })).statusCode
    const first = await signIn(app, 'first')
    const socket = await SocketClient.open(base, first)
    await new Promise((r) => setTimeout(r, 5))
    let last = ''
    for (let i = 1; i <= 600; i++) last = await signIn(app, `u${i}`)
    t.equal(await app.chatroom.sessions.count(), 50, 'SESSIONS_PER_ADDRESS (50) kept, not 601')
    t.same(await socket.untilClosed(), { code: 4401, reason: 'signed out' }, 'the oldest session was signed out: its socket closed')
    t.equal(await status(first), 401, 'and its cookie no longer works')
    t.equal(await status(last), 200, 'the newest works')
  })

  t.test(`${kind}: expired sessions are swept`, { skip }, async (t) => {
    const clock = controlledClock(t)
    const app = await buildTestApp(t, { SESSION_IDLE: '60' }, { store: await make(t) })
    const signInFrom = (address: string, user: string) =>
      app.inject({ method: 'POST', url: '/signin', remoteAddress: address, payload: { user, transport: 'websocket' } })
    for (let i = 1; i <= 5; i++) t.equal((await signInFrom(`10.0.0.${i}`, `u${i}`)).statusCode, 303)
    t.equal(await app.chatroom.sessions.count(), 5)
    clock.advance(70)
    t.equal((await signInFrom('10.0.1.1', 'later')).statusCode, 303)
    t.equal(await app.chatroom.sessions.count(), 1, 'the five idle past SESSION_IDLE are gone; the new one is kept')
  })
}

t.test('SESSIONS_PER_ADDRESS=0: no bound', async (t) => {
  const app = await buildTestApp(t, { SESSIONS_PER_ADDRESS: '0' })
  for (let i = 1; i <= 60; i++) await signIn(app, `u${i}`)
  t.equal(await app.chatroom.sessions.count(), 60)
})
