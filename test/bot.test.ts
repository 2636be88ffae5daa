import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { WebSocket } from 'ws'
import { ChatClient, signIn, type MessageEvent } from '../client/index.js'
import { eventually, tsLoader } from './helpers.js'

// examples/bot.ts, as a user runs it, against the real server process: it answers "!time" once,
// and after the server is killed and started again (same port, same data) it reconnects by
// itself and answers again, with no answer twice.

/** A port nobody listens on now, so the server can be started on it again after it is killed. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/** app/server.ts on `port` with its data in `dataDir`; resolves once /healthz answers. */
async function runServer(port: number, dataDir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...tsLoader(), 'app/server.ts'], {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'warn', SESSION_SECRET: 'server-test-secret-server-test-secret-0', SIGNIN_RATE_LIMIT: '100000', MAX_CONNECTIONS_PER_IP: '0', MAX_EVENT_LOOP_DELAY: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${output}`)
    if (Date.now() > deadline) throw new Error(`server did not answer: ${output}`)
    const up = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(500) }).then((r) => r.ok, () => false)
    if (up) return child
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

t.test('the bot answers !time once, and again after a server restart, by itself', async (t) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-bot-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  let server = await runServer(port, dataDir)
  t.teardown(() => killed(server))

  // The bot, as a user starts it (with the TypeScript loader this test runs under).
  const bot = spawn(process.execPath, [...tsLoader(), 'examples/bot.ts', base, 'lobby'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let said = ''
  bot.stdout!.on('data', (d) => (said += d))
  bot.stderr!.on('data', (d) => (said += d))
  t.teardown(() => (bot.exitCode === null ? new Promise((resolve) => bot.once('exit', resolve).kill('SIGTERM')) : undefined))
  const lives = () => said.match(/^timebot: live in lobby/gm)?.length ?? 0
  await eventually(() => lives() === 1, `the bot live: ${said}`, 30_000)

  const chat = new ChatClient({ base, cookie: await signIn(base, 'ann'), WebSocket })
  t.teardown(() => chat.close())
  const room = chat.join('lobby')
  const fromBot: MessageEvent[] = []
  room.on('message', (m) => m.user === 'timebot' && fromBot.push(m))
  await eventually(() => room.connection.state === 'live', 'ann live')

  const asked = await room.send('!time')
  await eventually(() => fromBot.length === 1, 'the answer', 10_000)
  const [first] = fromBot
  t.match(first!.text, /^@ann the server's time is \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'the server\'s time')
  const time = Date.parse(/is (\S+)$/.exec(first!.text!)![1]!)
  t.ok(Math.abs(time - Date.now()) < 60_000, 'about now')
  t.ok(first!.id > asked.id, 'after the question')
  await room.send('!help')
  await eventually(() => fromBot.length === 2, 'the help', 10_000)
  t.match(fromBot[1]!.text, /"!time" gives the server's time/)
  await room.send('nothing for the bot')
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(fromBot.length, 2, 'one answer each, none to other messages')

  // The server dies and comes back on the same port and data: the bot reconnects by itself.
  await killed(server)
  await eventually(() => /^timebot: (reconnecting|connecting)/m.test(said.split(/timebot: live in lobby.*\n/).at(-1) ?? ''), 'the bot notices', 10_000)
  server = await runServer(port, dataDir)
  await eventually(() => lives() >= 2, `the bot live again: ${said}`, 30_000)
  await eventually(() => room.connection.state === 'live', 'ann live again', 30_000)
  const again = await room.send('!time')
  await eventually(() => fromBot.length === 3, 'the answer after the restart', 10_000)
  t.ok(fromBot[2]!.id > again.id, 'answered again')
  await new Promise((resolve) => setTimeout(resolve, 1000))

  const history = (await room.history({ limit: 200 })).events
  const answers = history.filter((e) => e.type === 'message' && e.user === 'timebot')
  t.equal(answers.length, 3, 'three answers in the log: no answer twice, none to the history it was sent again')
  t.equal(history.filter((e) => e.type === 'message' && e.text === '!time').length, 2, 'two questions')
  t.equal(bot.exitCode, null, 'the bot is still running')
})
