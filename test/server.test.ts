import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { SocketClient, startServer, tsLoader, signInAt as signIn } from './helpers.js'

t.test('a bad setting stops start-up with one line naming the variable', async (t) => {
  const child = spawn(process.execPath, [...tsLoader(), 'app/server.ts'], { env: { ...process.env, PORT: 'ninety' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const [code] = await once(child, 'exit')
  t.equal(code, 1)
  t.equal(stderr.trim(), 'Invalid PORT="ninety": must be a whole number from 0 to 65535')
})

t.test('without SESSION_SECRET one is made once and kept in DATA_DIR: a restart keeps people signed in', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-secret-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const first = await startServer(t, { SESSION_SECRET: '', DATA_DIR: dataDir })
  t.match(first.output(), /SESSION_SECRET is not set: using the one made now and kept in .*session-secret/)
  const file = join(dataDir, 'session-secret')
  t.equal(statSync(file).mode & 0o777, 0o600, 'readable by this user only')
  const cookie = await signIn(first.base, 'ann')
  const said = await fetch(`${first.base}/longpolling/room/messages`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: '{"text":"before"}' })
  t.equal(said.status, 201)
  first.child.kill('SIGTERM')
  await once(first.child, 'exit')

  const second = await startServer(t, { SESSION_SECRET: '', DATA_DIR: dataDir })
  t.match(second.output(), /SESSION_SECRET is not set: using the one kept in/)
  t.notMatch(second.output(), /made now/)
  const users = await fetch(`${second.base}/room/users`, { headers: { cookie } })
  t.equal(users.status, 200, 'the cookie from before the restart still works')
  const history = (await (await fetch(`${second.base}/room/history`, { headers: { cookie } })).json()) as { events: { text?: string }[] }
  t.ok(history.events.some((e) => e.text === 'before'), 'and the message from before the restart is still there')
  second.child.kill('SIGTERM')
  await once(second.child, 'exit')
})

t.test('SIGTERM with open sockets and waiting polls: 1001, [] at once, exit in time', async (t) => {
  const { child, base } = await startServer(t, { LONGPOLL_TIMEOUT: '30', METRICS_TOKEN: 'server-test-metrics-token' })
  const cookie = await signIn(base, 'ann')
  const sockets = await Promise.all([1, 2, 3].map(() => SocketClient.open(base, cookie)))
  await sockets[0]!.untilId(1)
  const polls = [1, 2, 3].map(() =>
    fetch(`${base}/longpolling/room/messages?lastReceived=1`, { headers: { cookie } }).then(async (r) => ({ status: r.status, body: await r.json() })),
  )
  // Wait until all three are waiting, as the server's own metrics tell.
  const deadline = Date.now() + 5000
  while (!/^chat_longpolls_pending 3$/m.test(await (await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer server-test-metrics-token' } })).text())) {
    if (Date.now() > deadline) throw new Error('the three polls never waited')
    await new Promise((r) => setTimeout(r, 20))
  }
  const started = Date.now()
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  const took = Date.now() - started
  t.equal(code, 0, 'a clean exit')
  t.ok(took < 5000, `exited in ${took} ms`)
  for (const socket of sockets) t.equal((await socket.untilClosed()).code, 1001, 'socket told the server is going away')
  for (const poll of await Promise.all(polls)) t.same(poll, { status: 200, body: [] }, 'poll answered []')
})

t.test('SIGTERM does not wait on connections opened but never used', async (t) => {
  const { child, base } = await startServer(t)
  const { port } = new URL(base)
  // A browser pre-connects like this; server.close() alone would wait on it until the force-exit.
  const idle = connect(Number(port), '127.0.0.1')
  await once(idle, 'connect')
  idle.on('error', () => {})
  const started = Date.now()
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  idle.destroy()
  t.equal(code, 0, 'a clean exit, not the forced one')
  t.ok(Date.now() - started < 2000, `exited in ${Date.now() - started} ms`)
})
