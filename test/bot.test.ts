import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { WebSocket } from 'ws'
import { ChatClient, signIn, type MessageEvent } from '../client/index.js'
import { eventually, freePort, killed, serverAt, tsLoader } from './helpers.js'

// examples/bot.ts, as a user runs it, against the real server process: it answers "!time" once,
// and after the server is killed and started again (same port, same data) it reconnects by
// itself and answers again, with no answer twice.

t.test('the bot answers !time once, and again after a server restart, by itself', async (t) => {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-bot-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  let server = (await serverAt(port, dataDir)).child
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
  server = (await serverAt(port, dataDir)).child
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
