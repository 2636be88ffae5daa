import t from 'tap'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { buildTestApp, eventually, skipUnless } from './helpers.js'
import { enterRoom, haveChromium, launchChromium, threadLines } from './browser.js'

const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')

t.test('three tabs, one per transport, chat in one room', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  const refresh = await enterRoom(browser, base, 'ann', 'refresh')
  const longpolling = await enterRoom(browser, base, 'bob', 'longpolling')
  const websocket = await enterRoom(browser, base, 'cat', 'websocket')
  t.equal(await refresh.textContent('.whoami'), 'ann')
  t.equal(await longpolling.textContent('.whoami'), 'bob')
  t.equal(await websocket.textContent('.whoami'), 'cat')

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
    t.ok(lines.some((l) => /^you .*hello from the (socket|poll|refresh)$/.test(l)), `${name} shows its own message as "you"`)
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

  // Cut cat's socket; others talk while she is away; her page reconnects and resumes.
  const longpollingIdsBefore = await longpolling.$$eval('#thread [data-id]', (n) => n.length)
  for (const client of app.websocketServer.clients) client.terminate()
  await app.chatroom.post('bob', 'said while cat was away 1')
  await app.chatroom.post('bob', 'said while cat was away 2')
  await websocket.waitForFunction(
    () => Array.from(document.querySelectorAll('#thread .text')).some((n) => n.textContent === 'said while cat was away 2'),
    undefined,
    { timeout: 10_000 },
  )
  const ids = await websocket.$$eval('#thread [data-id]', (n) => n.map((x) => Number((x as HTMLElement).dataset.id)))
  t.same(ids, Array.from({ length: ids.length }, (_, i) => ids[0]! + i), 'after the reconnect: consecutive ids, none missed, none twice')
  t.ok(ids.length > 0 && longpollingIdsBefore > 0)
  t.equal(await websocket.$$eval('#thread .notice.gap', (n) => n.length), 0, 'no gap notice: the cursor was inside the archive')
})

t.test('XSS battery: hostile names and texts show as text on all three pages, and no script runs', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  const names = ['<img src=x onerror=alert(1)>', '<script>alert(2)</script>', 'javascript:alert(3)']
  const texts = [
    '<script>alert("t1")</script>',
    '<img src=x onerror=alert("t2")>',
    '<a href="javascript:alert(\'t3\')">click me</a>',
    '"><svg onload=alert("t4")>',
    "javascript:alert('t5')",
  ]
  const pages = [
    await enterRoom(browser, base, names[0]!, 'refresh'),
    await enterRoom(browser, base, names[1]!, 'longpolling'),
    await enterRoom(browser, base, names[2]!, 'websocket'),
  ]
  let dialogs = 0
  for (const page of pages) {
    page.on('dialog', (d) => {
      dialogs++
      void d.dismiss()
    })
  }
  await pages[2]!.waitForSelector('#thread .notice')
  for (const [i, text] of texts.entries()) {
    const page = pages[i % 3]!
    await page.fill('#message', text)
    if (i % 3 === 0) await Promise.all([page.waitForURL('**/refresh/room'), page.press('#message', 'Enter')])
    else await page.press('#message', 'Enter')
    await pages[2]!.waitForFunction((x) => Array.from(document.querySelectorAll('#thread .text')).some((n) => n.textContent === x), text)
  }
  for (const [i, page] of pages.entries()) {
    await page.waitForFunction(
      (all) => all.every((x) => Array.from(document.querySelectorAll('#thread .text')).some((n) => n.textContent === x)),
      texts,
      { timeout: 10_000 },
    )
    const found = await page.evaluate(() => ({
      injected: document.querySelectorAll('#thread img:not(.avatar), #thread script, #thread svg, #thread a, #users script, #users svg, a[href^="javascript"]').length,
      users: Array.from(document.querySelectorAll('#users .name')).map((n) => n.textContent),
      heading: document.querySelector('.whoami')?.textContent,
    }))
    t.equal(found.injected, 0, `page ${i}: no element came from user input`)
    t.same([...found.users].sort(), [...names].sort(), `page ${i}: the names are listed as text`)
    t.equal(found.heading, names[i], `page ${i}: the header shows the name as text`)
  }
  t.equal(dialogs, 0, 'no alert ever ran')
})

t.test('a new log (memory store restarted) makes the pages start over cleanly; a refused session goes back to the welcome page', { skip }, async (t) => {
  // Sessions kept across the new log (a real restart keeps them in SQLite or PostgreSQL).
  const firstStore = new MemoryStore()
  const first = await buildTestApp(t, { STORE: 'memory' }, { store: firstStore })
  const base = await first.listen({ host: '127.0.0.1', port: 0 })
  const port = Number(new URL(base).port)
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const websocket = await enterRoom(browser, base, 'ann', 'websocket')
  const longpolling = await enterRoom(browser, base, 'bob', 'longpolling')
  await first.chatroom.post('carl', 'from the old room')
  const shows = (page: typeof websocket, text: string) =>
    page.waitForFunction((x) => Array.from(document.querySelectorAll('#thread .text')).some((n) => n.textContent === x), text, { timeout: 30_000 })
  await Promise.all([shows(websocket, 'from the old room'), shows(longpolling, 'from the old room')])

  // The same address, a new process's worth of app: a new memory store, a new epoch, same secret.
  await first.close()
  const second = await buildTestApp(t, { STORE: 'memory' }, { store: new MemoryStore(firstStore.sessions) })
  await second.listen({ host: '127.0.0.1', port })
  t.not(second.chatroom.epoch, first.chatroom.epoch)
  await second.chatroom.post('carl', 'from the new room')
  for (const [name, page] of [['websocket', websocket], ['long polling', longpolling]] as const) {
    await shows(page, 'from the new room')
    const texts = await page.$$eval('#thread .text', (n) => n.map((x) => x.textContent))
    t.same(texts, ['from the new room'], `${name}: the new room only, nothing kept from the old log, nothing twice`)
    t.match(await page.textContent('#thread'), /The conversation was reloaded from the server/, `${name}: says it started over`)
    const ids = await page.$$eval('#thread [data-id]', (n) => n.map((x) => Number((x as HTMLElement).dataset.id)))
    t.same(ids, Array.from({ length: ids.length }, (_, i) => i + 1), `${name}: the new log's ids from 1, no gap`)
  }

  // A server that no longer knows the session (another secret): back to the welcome page, name kept.
  await second.close()
  const third = await buildTestApp(t, { STORE: 'memory', SESSION_SECRET: 'another-secret-another-secret-another-1' })
  await third.listen({ host: '127.0.0.1', port })
  await websocket.waitForURL('**/?signin=expired&name=ann', { timeout: 15_000 })
  t.match(await websocket.textContent('.flash.error'), /You were signed out/, 'a short explanation')
  t.equal(await websocket.inputValue('#user'), 'ann', 'the name is filled in')
})

t.test('one person per name: a second browser is refused "alice" until the first signs out', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const first = await enterRoom(browser, base, 'alice', 'websocket')
  await first.waitForSelector('#thread .notice')

  const second = await (await browser.newContext()).newPage()
  await second.goto(base + '/')
  await second.fill('#user', 'alice')
  await second.check('input[name=transport][value=longpolling]')
  await second.click('button[type=submit]')
  await second.waitForSelector('.flash.error')
  t.match(await second.textContent('.flash.error'), /Someone in the room goes by "alice".*Try "alice2"/, 'refused, with a suggestion')
  t.equal(await second.inputValue('#user'), 'alice', 'what was typed is kept')

  await Promise.all([first.waitForURL(`${base}/`), first.click('form.signout button')])
  await eventually(() => !app.chatroom.presence.isOnline('alice'), 'alice to have left')
  await Promise.all([second.waitForURL('**/longpolling/room'), second.click('button[type=submit]')])
  t.equal(await second.textContent('.whoami'), 'alice', 'the second browser gets alice')
})
