import t from 'tap'
import { buildTestApp } from './helpers.js'
import { enterRoom, haveChromium, launchChromium, threadLines } from './browser.js'

t.test('three tabs, one per transport, chat in one room', { skip: haveChromium ? false : 'chromium is not installed (apt-get install chromium)' }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  const refresh = await enterRoom(browser, base, 'ann', 'refresh')
  const longpolling = await enterRoom(browser, base, 'bob', 'longpolling')
  const websocket = await enterRoom(browser, base, 'cat', 'websocket')
  t.match(await refresh.textContent('h1'), /You are now chatting as ann/)
  t.match(await longpolling.textContent('h1'), /You are now chatting as bob/)
  t.match(await websocket.textContent('h1'), /You are now chatting as cat/)

  // Each says something; Enter sends.
  await websocket.waitForSelector('#thread .notice >> text=you joined')
  await websocket.fill('#message', 'hello from the socket')
  await websocket.press('#message', 'Enter')
  await longpolling.fill('#message', 'hello from the poll')
  await longpolling.press('#message', 'Enter')
  await refresh.fill('#message', 'hello from the refresh')
  await Promise.all([refresh.waitForURL('**/refresh/room'), refresh.press('#message', 'Enter')])

  const said = ['hello from the socket', 'hello from the poll', 'hello from the refresh']
  for (const [name, page] of [['refresh', refresh], ['longpolling', longpolling], ['websocket', websocket]] as const) {
    await page.waitForFunction(
      (texts) => texts.every((x) => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === x)),
      said,
      { timeout: 10_000 },
    )
    const lines = await threadLines(page)
    const messages = lines.filter((l) => said.some((s) => l.endsWith(s)))
    t.equal(messages.length, 3, `${name} shows each message once`)
    t.ok(lines.some((l) => /you hello from the (socket|poll|refresh)$/.test(l)), `${name} shows its own message as "you"`)
  }
  // The same order everywhere.
  const order = async (page: typeof refresh) =>
    (await page.$$eval('#thread .message .text', (n) => n.map((x) => x.textContent))).join('|')
  t.equal(await order(longpolling), await order(websocket))
  t.equal(await order(refresh), await order(websocket))
  t.match(await longpolling.textContent('#thread'), /ann joined the room/)

  // Who is online: everyone on every page, with avatars, the viewer marked.
  for (const [name, page] of [['ann', refresh], ['bob', longpolling], ['cat', websocket]] as const) {
    await page.waitForFunction(
      () => ['ann', 'bob', 'cat'].every((n) => document.querySelector(`#users li[data-name="${n}"] img.avatar`)),
      undefined,
      { timeout: 10_000 },
    )
    t.equal(await page.textContent('#users li.me .name'), name, `${name}'s page marks ${name}`)
  }

  // Typing on the socket page shows on the long-poll page, and not on the typist's own.
  await websocket.type('#message', 'abc')
  await longpolling.waitForFunction(() => document.getElementById('typing')?.textContent === 'cat is typing…', undefined, { timeout: 5000 })
  t.pass('bob sees that cat is typing')
  t.equal(await websocket.textContent('#typing'), '', 'cat does not see her own typing')
  await websocket.press('#message', 'Enter')
  await longpolling.waitForFunction(() => document.getElementById('typing')?.textContent === '', undefined, { timeout: 5000 })
  t.pass('the line clears when cat sends')
})
