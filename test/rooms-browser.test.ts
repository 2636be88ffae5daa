import t from 'tap'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'
import { buildTestApp, skipUnless } from './helpers.js'
import { axeViolations, DESKTOP, haveChromium, launchChromium, PHONE, screenshot } from './browser.js'

// Rooms as people use them, in Chromium, on the refresh pages (which need no JavaScript): three
// people with accounts, a public room, a private room, a direct message, and a fourth person
// (a guest) for whom the private room and the direct room do not exist by any route.

const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')

async function person(browser: Browser, base: string, name: string, screen: BrowserContextOptions = DESKTOP, registered = true): Promise<Page> {
  const page = await (await browser.newContext(screen)).newPage()
  page.on('pageerror', (error) => {
    throw error
  })
  await page.goto(base + '/')
  if (registered) {
    await page.fill('#register-name', name)
    await page.fill('#register-password', 'correct horse battery')
    await Promise.all([page.waitForURL('**/auto/room'), page.click('form.register button[type=submit]')])
  } else {
    await page.fill('#user', name)
    await page.check('input[name=transport][value=refresh]')
    await Promise.all([page.waitForURL('**/refresh/room'), page.click('form.signin:not(.register) button[type=submit]')])
  }
  await page.goto(base + '/refresh/room')
  return page
}

const say = async (page: Page, text: string) => {
  await page.fill('#message', text)
  await page.press('#message', 'Enter')
  await page.waitForFunction((x) => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === x), text, { timeout: 20_000 })
}
const roomNames = (page: Page) => page.$$eval('#room-list a', (links) => links.map((a) => a.textContent))

t.test('three people, three rooms and a direct message; a fourth person cannot see the private ones by any route', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const ann = await person(browser, base, 'ann')
  const bob = await person(browser, base, 'bob')
  const cat = await person(browser, base, 'cat', PHONE)

  // ann makes a public room and a private one from the page's own forms, and invites bob.
  const create = async (name: string, isPrivate: boolean) => {
    await ann.goto(base + '/refresh/room')
    await ann.click('.room-actions summary')
    await ann.fill('#new-room', name)
    if (isPrivate) await ann.check('input[name=visibility][value=private]')
    await Promise.all([ann.waitForURL(`**/refresh/rooms/${name}`), ann.click('form[action="/rooms"] button')])
  }
  await create('dev', false)
  await say(ann, 'builds are green')
  await create('plans', true)
  await say(ann, 'the secret plan')
  await ann.click('.room-actions summary')
  // A mistyped name is said beside the field, and the page stays; then the right one.
  await ann.fill('#invite-user', 'bbo')
  await ann.click('form[action$="/invite"] button')
  await ann.waitForSelector('#invite-result.error')
  t.match(await ann.textContent('#invite-result'), /No account goes by that name/, 'a mistyped name: an inline error')
  t.match(ann.url(), /\/refresh\/rooms\/plans$/, 'still in the room')
  await ann.fill('#invite-user', 'bob')
  await ann.click('form[action$="/invite"] button')
  await ann.waitForFunction(() => /bob is invited/.test(document.getElementById('invite-result')?.textContent ?? ''))
  t.pass('the invitation confirms in place')
  await screenshot(ann, 'desktop-invite-in-place')

  await bob.goto(base + '/refresh/room')
  t.same(await roomNames(bob), ['#dev', '#lobby', '#plans'], 'bob lists the public room and the private one he was invited to')
  await bob.click('#room-list a:text("#plans")')
  await bob.waitForURL('**/refresh/rooms/plans')
  await say(bob, 'count me in')
  await ann.waitForFunction(() => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === 'count me in'), undefined, { timeout: 20_000 })

  // cat, on a phone, opens a direct message with ann.
  await cat.goto(base + '/refresh/room')
  t.same(await roomNames(cat), ['#dev', '#lobby'], 'cat does not see the private room')
  await cat.goto(base + '/refresh/rooms/dev')
  t.ok(await cat.$('text=builds are green'), 'cat reads the public room')
  await cat.click('#online-toggle')
  await cat.click('.room-actions summary')
  await cat.fill('#dm-user', 'ann')
  await Promise.all([cat.waitForURL('**/refresh/rooms/dm-*'), cat.click('form[action="/direct"] button')])
  const dm = new URL(cat.url()).pathname
  await say(cat, 'hi ann, just us')
  await screenshot(cat, 'phone-rooms-dm')
  await ann.goto(base + '/refresh/room')
  t.ok((await roomNames(ann)).includes('ann & cat'), 'ann sees the direct room in her list')
  t.match(await ann.textContent('#room-list'), /ann & cat\s*[1-9]/, 'with its unread count')
  await ann.goto(base + dm)
  t.ok(await ann.$('text=hi ann, just us'), 'and reads it')
  await screenshot(ann, 'desktop-rooms')
  t.same(await axeViolations(ann), [], 'axe finds nothing on a room page with the room list')

  // dave, a guest: the private room and the direct room do not exist for him.
  const dave = await person(browser, base, 'dave', DESKTOP, false)
  t.same(await roomNames(dave), ['#dev', '#lobby'], 'dave lists only the public rooms')
  const cookie = (await dave.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  for (const url of ['/refresh/rooms/plans', `${dm}`, '/rooms/plans/history', '/rooms/plans/users', '/longpolling/rooms/plans/messages', '/sse/rooms/plans/events', `/rooms/${dm.split('/').pop()}/history`]) {
    const res = await fetch(base + url, { headers: { cookie } })
    t.equal(res.status, 404, `dave: ${url} is 404`)
  }
  const seen = await dave.goto(base + '/refresh/rooms/plans')
  t.equal(seen?.status(), 404, 'dave\'s browser gets the not-found page')
  t.notOk(await dave.$('text=the secret plan'), 'and nothing of the room')
})

t.test('the live pages of a room: automatic, WebSocket, event stream and long polling in #dev see each other, the lobby sees nothing of it', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const ann = await person(browser, base, 'ann')
  await ann.goto(base + '/auto/room')
  await ann.click('.room-actions summary')
  await ann.fill('#new-room', 'dev')
  await Promise.all([ann.waitForURL('**/auto/rooms/dev'), ann.click('form[action="/rooms"] button')])
  t.match(await ann.textContent('#way'), /^#dev · /, 'the top bar names the room')
  const pages: Page[] = [ann]
  for (const [name, way] of [['bob', 'websocket'], ['cat', 'sse'], ['dan', 'longpolling']] as const) {
    const page = await person(browser, base, name, way === 'longpolling' ? PHONE : DESKTOP)
    await page.goto(`${base}/${way}/rooms/dev`)
    pages.push(page)
  }
  const lobby = await person(browser, base, 'eve')
  await lobby.goto(base + '/websocket/room')
  for (const [i, page] of pages.entries()) await say(page, `hello from ${i}`)
  for (const page of pages) {
    for (let i = 0; i < pages.length; i++) {
      await page.waitForFunction((x) => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === x), `hello from ${i}`, { timeout: 20_000 })
    }
  }
  t.pass('every page of #dev shows every message, whatever its way in')
  // What a live page shows is marked read (within a few seconds), so it is not "new" on another device.
  const bobsCookie = (await pages[1]!.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  let unread = -1
  for (let i = 0; i < 40 && unread !== 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    const rooms = (await (await fetch(`${base}/rooms`, { headers: { cookie: bobsCookie } })).json()) as { rooms: { name: string; unread: number }[] }
    unread = rooms.rooms.find((r) => r.name === 'dev')!.unread
  }
  t.equal(unread, 0, 'bob\'s live page marked #dev read as the messages came')
  await say(lobby, 'only in the lobby')
  t.notOk(await lobby.$('text=hello from 0'), 'the lobby shows nothing of #dev')
  t.notOk(await ann.$('text=only in the lobby'), 'and #dev nothing of the lobby')
  await screenshot(pages[3]!, 'phone-room-longpolling')
  await screenshot(ann, 'desktop-room-auto')

  // Joining from the page; the room lists its members (those who joined), so ann's list gains bob.
  const bobPage = pages[1]!
  t.equal(await bobPage.textContent('form.membership button'), 'Join #dev', 'a visitor of a public room may join it')
  await Promise.all([bobPage.waitForNavigation(), bobPage.click('form.membership button')])
  t.equal(await bobPage.textContent('form.membership button'), 'Leave #dev', 'and then leave it')
  await ann.waitForSelector('#users li[data-name="bob"]', { timeout: 10_000 })
  t.pass("bob is listed among #dev's members on ann's page at once")
  // A direct message from a name in the list of members, and leaving a room from its page.
  await Promise.all([ann.waitForURL('**/auto/rooms/dm-*'), ann.click('#users li[data-name="bob"] form.dm button')])
  t.match(await ann.textContent('#way'), /^ann & bob · /, 'ann is in her direct room with bob')
  await Promise.all([bobPage.waitForURL('**/websocket/room'), bobPage.click('form.membership button')])
  const bobRooms = (await (await fetch(`${base}/rooms`, { headers: { cookie: bobsCookie } })).json()) as { rooms: { name: string; member: boolean }[] }
  t.notOk(bobRooms.rooms.find((r) => r.name === 'dev')?.member, 'bob left #dev from its page (a public room stays listed)')
})
