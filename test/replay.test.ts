import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, range, signIn, SocketClient } from './helpers.js'

// A cursor far behind in a room of long messages: one resume reads at most REPLAY_MAX_BYTES of
// the log. A long poll answers one page of it and the client polls on; a socket or an event
// stream is told to start over (409 / 4409) instead of being handed megabytes.

const BUDGET = 64 * 1024
const TEXT = 'x'.repeat(1990)

async function room(t: Parameters<typeof buildTestApp>[0]) {
  const app = await buildTestApp(t, { REPLAY_MAX_BYTES: String(BUDGET), ARCHIVE_SIZE: '20' })
  for (let i = 1; i <= 400; i++) await app.chatroom.post('bob', `${i} ${TEXT}`)
  const cookie = await signIn(app, 'ann', 'longpolling')
  return { app, cookie }
}

t.test('long polling pages through a far-behind cursor: every answer within the budget, every event once, in order', async (t) => {
  const { app, cookie } = await room(t)
  const epoch = app.chatroom.epoch
  const seen: number[] = []
  let cursor = 1
  let largest = 0
  for (let poll = 0; poll < 100 && cursor < 400; poll++) {
    const res = await app.inject({ url: `/longpolling/room/messages?lastReceived=${cursor}&epoch=${epoch}`, headers: { cookie } })
    t.equal(res.statusCode, 200)
    largest = Math.max(largest, res.rawPayload.length)
    const events = (res.json() as Event[]).filter((e) => e.type === 'message')
    if (events.length === 0) break
    seen.push(...events.map((e) => Number(e.text!.split(' ')[0])))
    cursor = events.at(-1)!.id
  }
  t.same(seen, range(2, 400), 'every message after the cursor, once, in order')
  t.ok(largest <= BUDGET + 2100, `the largest answer was ${largest} bytes (budget ${BUDGET} plus the window's last message)`)
  t.ok(largest < 400 * 2000 / 4, 'far less than the 800 kB the cursor is behind')
})

t.test('a WebSocket or event stream further behind than the budget is told to start over, with where the room stands; within it, it resumes', async (t) => {
  const { app } = await room(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const cookie = await signIn(app, 'cat', 'websocket')
  const epoch = app.chatroom.epoch
  const far = await SocketClient.open(base, cookie, `?lastReceived=1&epoch=${epoch}`)
  t.match(await far.untilClosed(), { code: 4409 }, 'the socket: 4409 start over')
  t.same(far.events, [], 'and was handed nothing')

  const stream = await fetch(`${base}/sse/room/events?lastReceived=1&epoch=${epoch}`, { headers: { cookie } })
  const text = await stream.text()
  t.match(text, /event: refused\ndata: \{"status":409/, 'the event stream: refused with 409')
  t.notMatch(text, /^id: /m, 'and no event')

  const near = await SocketClient.open(base, cookie, `?lastReceived=360&epoch=${epoch}`)
  await near.until(() => near.events.some((e) => e.text?.startsWith('400 ')), 'the newest message')
  t.same(near.ids().filter((id) => id <= 400 + 1).slice(0, 40), range(361, 400), 'within the budget it resumes as before')
  await near.close()
})
