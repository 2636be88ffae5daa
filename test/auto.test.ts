import t, { type Test } from 'tap'
import type { Page } from 'playwright-core'
import type { FastifyInstance } from 'fastify'
import { openStreams } from '../app/transport/sse-writer.js'
import { buildTestApp, skipUnless } from './helpers.js'
import { enterRoom, haveChromium, launchChromium, screenshot } from './browser.js'

const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')

const way = (page: Page, pattern: RegExp, timeout = 15_000) =>
  page.waitForFunction((source) => new RegExp(source).test(document.getElementById('way')?.textContent ?? ''), pattern.source, { timeout })

const shows = (page: Page, text: string) =>
  page.waitForFunction((x) => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === x), text, { timeout: 15_000 })

/** The ids the thread shows, and whether each of the room's events since `from` is there exactly once. */
async function exactlyOnce(t: Test, app: FastifyInstance, page: Page, from: number, what: string) {
  const ids = await page.$$eval('#thread [data-id]', (rows) => rows.map((r) => Number((r as HTMLElement).dataset.id)))
  t.same(ids, [...new Set(ids)], `${what}: no event twice`)
  const wanted = app.chatroom.archive().map((s) => s.event.id).filter((id) => id >= from)
  t.same(wanted.filter((id) => !ids.includes(id)), [], `${what}: none missing`)
  t.same(ids, [...ids].sort((a, b) => a - b), `${what}: in order`)
}

/** Joins and leaves of one user in the log. */
const presenceOf = (app: FastifyInstance, user: string) =>
  app.chatroom.archive().filter((s) => s.event.user === user && s.event.type !== 'message').map((s) => s.event.type)

t.test('automatic: WebSocket refused, it moves to the event stream, keeps the cursor and the presence, and moves back up when it can', { skip }, async (t) => {
  const block = { websocket: true, sse: false }
  const app = await buildTestApp(t, { PRESENCE_GRACE: '5', AUTO_RETRY: '2' }, { block })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  await app.chatroom.post('bob', 'before ann came')
  const ann = await enterRoom(browser, base, 'ann', 'auto')
  await way(ann, /^Live · event stream \(WebSocket is blocked here/)
  t.pass('on the event stream')
  await shows(ann, 'before ann came')
  await app.chatroom.post('bob', 'while on the stream')
  await shows(ann, 'while on the stream')
  // Sending goes the current way.
  await ann.fill('#message', 'sent over the stream')
  await ann.press('#message', 'Enter')
  await shows(ann, 'sent over the stream')
  t.equal(await ann.inputValue('#message'), '')
  await screenshot(ann, 'desktop-auto-fallback')

  // The network lets WebSocket through again: within AUTO_RETRY it is back on it.
  block.websocket = false
  const around = setInterval(() => void app.chatroom.post('bob', `around the switch ${Date.now()}`), 50)
  try {
    await way(ann, /^Live · WebSocket$/)
  } finally {
    clearInterval(around)
  }
  t.pass('back on WebSocket')
  await app.chatroom.post('bob', 'after the switch back')
  await shows(ann, 'after the switch back')
  await exactlyOnce(t, app, ann, 1, 'across both switches')
  t.same(presenceOf(app, 'ann'), ['join'], 'one join, no leave: the switches were not seen by others')
  t.equal(openStreams(), 0, 'the event stream was let go once the socket took over')
  t.equal(app.websocketServer.clients.size, 1, 'one socket')
})

t.test('automatic: with WebSocket refused and streams buffered, it lands on long polling, from the same cursor', { skip }, async (t) => {
  const block = { websocket: true, sse: true }
  const app = await buildTestApp(t, { PRESENCE_GRACE: '5', AUTO_RETRY: '600' }, { block })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const ann = await enterRoom(browser, base, 'ann', 'auto')
  const posting = setInterval(() => void app.chatroom.post('bob', `during the search ${Date.now()}`), 200)
  try {
    await way(ann, /^Live · long polling/)
  } finally {
    clearInterval(posting)
  }
  await app.chatroom.post('bob', 'on long polling')
  await shows(ann, 'on long polling')
  await ann.fill('#message', 'sent by long polling')
  await ann.press('#message', 'Enter')
  await shows(ann, 'sent by long polling')
  await exactlyOnce(t, app, ann, 1, 'after two fallbacks')
  t.same(presenceOf(app, 'ann'), ['join'], 'one join, no leave')
  await screenshot(ann, 'desktop-auto-longpolling')
  // A quiet room: the poll waits with nothing to answer, which is not silence to flee from.
  const waiting = app.chatroom.waitingCount
  await new Promise((resolve) => setTimeout(resolve, 6000))
  t.match(await ann.textContent('#way'), /^Live · long polling/, 'still on long polling after a quiet spell past the 4 s bound')
  t.equal(app.chatroom.waitingCount, waiting, 'one poll waiting, as before')
})
