import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { DESKTOP, enterRoom, haveChromium, launchChromium } from './browser.js'
import { buildTestApp, skipUnless } from './helpers.js'

// Going to the search page (or the account page) and back is not leaving the room: the page sends
// no goodbye when it follows a link of the site, so the presence grace covers the round trip and
// nobody sees "ann left" then "ann joined". Closing the tab still leaves, after the grace.

const skip = skipUnless(haveChromium, 'Chromium is not installed')

t.test('a round trip to the search page makes no leave or join line; closing the tab leaves once', { skip }, async (t) => {
  const app = await buildTestApp(t, { PRESENCE_GRACE: '3' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const lines = () => app.chatroom.archive().map((s) => s.event as Event).filter((e) => e.type === 'join' || e.type === 'leave').map((e) => `${e.user} ${e.type}`)

  const ann = await enterRoom(browser, base, 'ann', 'websocket', DESKTOP)
  await ann.waitForFunction(() => document.getElementById('way')?.dataset.state === 'live')
  t.same(lines(), ['ann join'])
  await Promise.all([ann.waitForURL('**/search**'), ann.click('header a[href^="/search"]')])
  await ann.fill('#search-q', 'anything')
  await Promise.all([ann.waitForURL('**/search?**'), ann.press('#search-q', 'Enter')])
  await Promise.all([ann.waitForURL('**/websocket/room'), ann.goto(`${base}/websocket/room`)])
  await ann.waitForFunction(() => document.getElementById('way')?.dataset.state === 'live')
  await new Promise((resolve) => setTimeout(resolve, 3500))
  t.same(lines(), ['ann join'], 'to search and back: no leave, no second join')

  await ann.close({ runBeforeUnload: true })
  const closedAt = Date.now()
  const deadline = Date.now() + 25_000
  while (lines().length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(lines(), ['ann join', 'ann leave'], 'closing the tab: one leave')
  t.comment(`the leave came ${Date.now() - closedAt} ms after the tab closed`)
})

t.test("a page that is hidden, or idle for AWAY_AFTER, makes its person away for others; in use again, online", { skip }, async (t) => {
  const app = await buildTestApp(t, { AWAY_AFTER: '5' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const ann = await enterRoom(browser, base, 'ann', 'websocket', DESKTOP)
  await ann.waitForFunction(() => document.getElementById('way')?.dataset.state === 'live')
  const bob = await enterRoom(browser, base, 'bob', 'longpolling', DESKTOP)
  await bob.waitForFunction(() => document.getElementById('way')?.dataset.state === 'live')
  const annIs = () => app.chatroom.people.stateOf('ann')
  const until = async (state: string, ms: number) => {
    const deadline = Date.now() + ms
    while (annIs() !== state && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    return annIs()
  }
  t.equal(await until('online', 3000), 'online', 'her page in use: online')

  // The tab goes to the background.
  await ann.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  })
  t.equal(await until('away', 3000), 'away', 'her tab hidden: away')
  const listed = async () => {
    const cookie = (await bob.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
    const users = (await (await fetch(`${base}/room/users`, { headers: { cookie } })).json()) as { users: { name: string; presence: string }[] }
    return users.users.find((u) => u.name === 'ann')?.presence
  }
  t.equal(await listed(), 'away', "bob's list says so")
  await bob.reload()
  await bob.waitForSelector('#users li[data-name="ann"].away')
  t.match(await bob.textContent('#users li[data-name="ann"]'), /away/, "and his page shows her away")

  await ann.evaluate(() => {
    Object.defineProperty(document, 'visibilityState', { value: 'visible', configurable: true })
    document.dispatchEvent(new Event('visibilitychange'))
  })
  t.equal(await until('online', 3000), 'online', 'back in front: online')
  // Nothing touched for AWAY_AFTER (5 s): away; a key pressed: online again.
  const idleFrom = Date.now()
  t.equal(await until('away', 12_000), 'away', 'idle for AWAY_AFTER: away')
  t.ok(Date.now() - idleFrom >= 3000, `not before its time (${Date.now() - idleFrom} ms)`)
  await ann.keyboard.press('Shift')
  t.equal(await until('online', 3000), 'online', 'a key pressed: online')
})
