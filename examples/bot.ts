// A small bot on the client library: it signs in as a guest ("timebot"), joins a room, and
// answers "!time" with the server's time and "!help" with what it does. It keeps one connection,
// its person's stream (every room it is in, however many), reconnects by itself (falling back
// from WebSocket to the event stream or long polling where it must), and its answers go through
// the outbox, so each is posted once however often the connection drops.
//
//   npx tsx examples/bot.ts http://127.0.0.1:9000 [room] [name]
import { WebSocket } from 'ws'
import { ChatClient, signIn, type MessageEvent } from '../client/index.js'

const [base = 'http://127.0.0.1:9000', roomName = 'lobby', NAME = 'timebot'] = process.argv.slice(2)

/** What the bot answers to a message, or undefined. */
export function answer(message: MessageEvent): string | undefined {
  const text = message.text?.trim()
  // The message's timestamp is the server's clock when it took the message: the server's time.
  if (text === '!time') return `@${message.user} the server's time is ${new Date(message.timestamp).toISOString()}`
  if (text === '!help') return `@${message.user} I am ${NAME}: "!time" gives the server's time, "!help" this.`
  return undefined
}

const cookie = await signIn(base, NAME).catch((error: Error) => {
  // Taken (another bot runs), or the server is not there: said in one line.
  console.error(`${NAME}: ${error.message}`)
  process.exit(1)
})
const chat = new ChatClient({ base, cookie, WebSocket })
// A member of the room (the lobby is everyone's): its stream follows it from now on.
if (roomName !== 'lobby') {
  const joined = await fetch(`${base}/rooms/${encodeURIComponent(roomName)}/join`, { method: 'POST', headers: { cookie, origin: base, 'content-type': 'application/json' }, body: '{}' })
  if (!joined.ok) {
    console.error(`${NAME}: cannot join ${roomName}: HTTP ${joined.status}`)
    process.exit(1)
  }
}
const stream = chat.follow()
const room = chat.join(roomName, { via: stream })
// Only what is said from now on: the history the room sends first is not for us to answer.
const since = Date.now()
const answered = new Set<string>()

room.on('message', (message) => {
  if (message.user === NAME || message.timestamp < since) return
  const reply = answer(message)
  // Each message once (a new log, after a start over, is a new set of ids).
  const key = `${room.epoch}:${message.id}`
  if (reply === undefined || answered.has(key)) return
  answered.add(key)
  room.send(reply).catch((error: Error) => console.error(`${NAME}: could not answer: ${error.message}`))
})
room.on('state', ({ state, transport, retryIn }) => {
  console.log(`${NAME}: ${state} in ${roomName} over ${transport}${retryIn === undefined ? '' : ` (next try in ${retryIn} s)`}`)
})
room.on('end', (reason) => {
  console.error(`${NAME}: let go of ${roomName}: ${reason}`)
  process.exitCode = 1
})

const stop = () => {
  chat.close()
  process.exit()
}
process.once('SIGINT', stop)
process.once('SIGTERM', stop)
