import t from 'tap'
import { waitingPolls } from '../app/transport/http.js'
import { openStreams } from '../app/transport/sse-writer.js'
import { DESKTOP, haveChromium, launchChromium } from './browser.js'
import { buildTestApp, registerAccount, skipUnless, post } from './helpers.js'

// In a browser tab, the client library's person's stream: ten rooms of one person, every one
// live, over one connection (counted on the server), on the event stream and on long polling.

const skip = skipUnless(haveChromium, 'Chromium is not installed')
for (const way of ['sse', 'longpolling'] as const) {
  t.test(`${way}: ten rooms live in one tab over one connection`, { skip }, async (t) => {
    const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '3' })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const ann = await registerAccount(app, 'ann')
    const bob = await registerAccount(app, 'bob')
    const rooms = ['lobby', ...Array.from({ length: 9 }, (_, i) => `room-${i + 1}`)]
    for (const room of rooms.slice(1)) {
      t.equal((await post(base, ann, '/rooms', { name: room })).status, 201)
      await post(base, bob, `/rooms/${room}/join`)
    }
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const context = await browser.newContext({ ...DESKTOP, baseURL: base })
    await context.addCookies([{ name: 'chat_session', value: ann.replace(/^chat_session=/, ''), url: base }])
    const page = await context.newPage()
    await page.goto(`${base}/account`)
    const before = way === 'sse' ? openStreams() : 0
    await page.evaluate(async (transport) => {
      const { ChatClient } = (await import('/public/js/client/index.js' as string)) as typeof import('../client/index.js')
      const stream = new ChatClient({ transports: [transport] }).follow()
      const seen: Record<string, string[]> = {}
      ;(window as unknown as { seen: typeof seen; stream: typeof stream }).seen = seen
      ;(window as unknown as { stream: typeof stream }).stream = stream
      stream.on('room', (room, items) => {
        for (const item of items) if (item.type === 'message') (seen[room] ??= []).push(item.text ?? '')
      })
    }, way)
    await page.waitForFunction((n) => (window as unknown as { stream: { rooms: string[]; connectionState: { state: string } } }).stream.rooms.length === n && (window as unknown as { stream: { connectionState: { state: string } } }).stream.connectionState.state === 'live', rooms.length)
    t.pass(`the stream follows all ${rooms.length} rooms`)

    // A line in every room; meanwhile, how many connections the tab holds on the server. Its one
    // waiting poll is seen first (a 5 ms sample can miss a poll that waits only between two lines).
    if (way !== 'sse') {
      for (let i = 0; i < 500 && waitingPolls() !== 1; i++) await new Promise((resolve) => setTimeout(resolve, 10))
    }
    let most = way === 'sse' ? 0 : waitingPolls()
    const sample = setInterval(() => (most = Math.max(most, way === 'sse' ? openStreams() - before : waitingPolls())), 5)
    for (const room of rooms) await post(base, bob, room === 'lobby' ? '/longpolling/room/messages' : `/longpolling/rooms/${room}/messages`, { text: `hello ${room}` })
    await page.waitForFunction((names) => names.every((room) => (window as unknown as { seen: Record<string, string[]> }).seen[room]?.includes(`hello ${room}`)), rooms, { timeout: 20_000 })
    const seen = await page.evaluate(() => (window as unknown as { seen: Record<string, string[]> }).seen)
    clearInterval(sample)
    t.same(Object.keys(seen).sort(), [...rooms].sort(), 'every room live')
    t.ok(rooms.every((room) => seen[room]!.length === 1), 'each line once')
    t.equal(most, 1, `one ${way === 'sse' ? 'event stream' : 'waiting poll'} at a time on the server for ten rooms`)
    await page.evaluate(() => (window as unknown as { stream: { close(): void } }).stream.close())
  })
}
