import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { DESKTOP, haveChromium, launchChromium, PHONE, screenshot } from './browser.js'
import { buildTestApp, registerAccount, RoomsClient, skipUnless, post } from './helpers.js'

// The live page as one app: one connection per tab (the person's stream) whatever the number of
// rooms; choosing a room switches in place (the URL follows, back works) with no join or leave
// line and no new connection; the room list is live: a DM opened by someone else and a mention
// in a room not shown appear at once with their badge, and the tab's title counts them.

const skip = skipUnless(haveChromium, 'Chromium is not installed')
for (const [way, screen, label] of [['websocket', DESKTOP, 'desktop'], ['longpolling', PHONE, 'phone']] as const) {
  t.test(`${way} (${label}): twenty room switches in place on one connection, no join or leave line; a DM and a mention elsewhere appear at once`, { skip }, async (t) => {
    const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '5' })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const ann = await registerAccount(app, 'ann')
    const bob = await registerAccount(app, 'bob')
    const rooms = ['r1', 'r2', 'r3', 'r4']
    for (const room of rooms) {
      await post(base, ann, '/rooms', { name: room })
      await post(base, bob, `/rooms/${room}/join`)
      await post(base, bob, `/longpolling/rooms/${room}/messages`, { text: `hello ${room}` })
    }
    // A public room of bob's that ann is not a member of (listed for her to visit).
    await post(base, bob, '/rooms', { name: 'pub' })
    await post(base, bob, '/longpolling/rooms/pub/messages', { text: 'hello pub' })
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const context = await browser.newContext(screen)
    // Notifications as the page makes them, recorded (the browser's own would need a person to allow them).
    await context.addInitScript(() => {
      const shown: { title: string; body: string }[] = []
      ;(window as unknown as { shownNotes: typeof shown }).shownNotes = shown
      class RecordedNotification {
        static permission = 'granted'
        static requestPermission = () => Promise.resolve('granted')
        onclick: (() => void) | null = null
        constructor(title: string, options: { body?: string } = {}) {
          shown.push({ title, body: options.body ?? '' })
        }
        addEventListener() {}
        close() {}
      }
      ;(window as unknown as { Notification: unknown }).Notification = RecordedNotification
    })
    await context.addCookies([{ name: 'chat_session', value: ann.replace(/^chat_session=/, ''), url: base }])
    const page = await context.newPage()
    await page.goto(`${base}/${way}/rooms/r1`)
    await page.waitForFunction(() => document.getElementById('way')?.dataset.state === 'live', undefined, { timeout: 15_000 })
    await page.waitForSelector('#thread .message .text:text("hello r1")')

    const lines = async () => {
      let n = 0
      for (const room of [...rooms, 'lobby']) {
        const res = await fetch(`${base}/${room === 'lobby' ? 'room' : `rooms/${room}`}/history?limit=200`, { headers: { cookie: ann } })
        n += ((await res.json()) as { events: Event[] }).events.filter((e) => e.type === 'join' || e.type === 'leave').length
      }
      return n
    }
    // The list's counts: the server's (since her read marker), then counted live from there.
    t.match(await page.textContent('#room-list li[data-room="r2"] .unread'), /^1/, "r2: bob's line, unread")
    await post(base, bob, '/longpolling/rooms/r2/messages', { text: 'more in r2' })
    await page.waitForFunction(() => /^2/.test(document.querySelector('#room-list li[data-room="r2"] .unread')?.textContent ?? ''), undefined, { timeout: 3000 })
    t.pass('r2: 2 once bob says more')
    const linesBefore = await lines()
    const connections = () => (way === 'websocket' ? app.websocketServer.clients.size : app.chatroom.subscriberCount)
    const connectionsBefore = connections()

    // Twenty switches from the room list (on a phone, the top bar's button opens it first).
    const order = [...rooms.slice(1), 'lobby', 'r1']
    for (let i = 0; i < 20; i++) {
      const room = order[i % order.length]!
      if (label === 'phone') await page.click('#online-toggle')
      await page.click(`#room-list li[data-room="${room}"] a`)
      const where = room === 'lobby' ? `/${way}/room` : `/${way}/rooms/${room}`
      await page.waitForURL(`**${where}`)
      if (room !== 'lobby') await page.waitForSelector(`#thread .message .text:text("hello ${room}")`, { timeout: 10_000 })
      if (i === 2) await screenshot(page, `${label}-app-switched-${way}`)
    }
    t.pass('twenty switches, each showing its room')
    t.equal(await lines(), linesBefore, 'no join or leave line for them')
    t.equal(connections(), connectionsBefore, `the same ${way === 'websocket' ? 'one socket' : 'readers'} on the server all along`)
    t.equal(app.websocketServer.clients.size, way === 'websocket' ? 1 : 0, 'one socket at most: the stream')
    // Each room seen is marked read on the server, at its own last id (switching within the marker's 2 s included).
    const unread = async () => {
      const { rooms: listed } = (await (await fetch(`${base}/rooms`, { headers: { cookie: ann } })).json()) as { rooms: { name: string; unread: number }[] }
      return listed.filter((r) => rooms.includes(r.name) && r.unread > 0).map((r) => `${r.name}: ${r.unread}`)
    }
    for (let i = 0; i < 50 && (await unread()).length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
    t.same(await unread(), [], 'every room switched to is read')

    await page.goBack()
    await page.waitForURL(`**/${way}/room`)
    await page.waitForSelector('#room-list li.current[data-room="lobby"]', { state: 'attached' })
    t.pass('back: the room before, marked current in the list')
    await page.goForward()
    await page.waitForURL(`**/${way}/rooms/r1`)
    await page.waitForSelector('#thread .message .text:text("hello r1")')
    t.pass('forward again')

    // A public room she is not a member of: visited on the same connection while shown, live.
    if (label === 'phone') await page.click('#online-toggle')
    await page.click('#room-list li[data-room="pub"] a')
    await page.waitForURL(`**/${way}/rooms/pub`)
    await page.waitForSelector('#thread .message .text:text("hello pub")')
    await post(base, bob, '/longpolling/rooms/pub/messages', { text: 'live in pub' })
    await page.waitForSelector('#thread .message .text:text("live in pub")', { timeout: 5000 })
    t.pass('a room visited is live')
    t.equal(app.websocketServer.clients.size, way === 'websocket' ? 1 : 0, 'on the same connection: no socket of its own')
    const pubLog = ((await (await fetch(`${base}/rooms/pub/history?limit=50`, { headers: { cookie: bob } })).json()) as { events: Event[] }).events
    t.same(pubLog.filter((e) => e.user === 'ann').map((e) => e.type), [], 'visiting writes no join or leave line')
    if (label === 'phone') await page.click('#online-toggle')
    await page.click('#room-list li[data-room="r1"] a')
    await page.waitForSelector('#thread .message .text:text("hello r1")')
    t.notOk(await page.$('#room-list li[data-room="pub"] .unread'), 'the room just left counts nothing unread: what it showed is read')

    // bob opens a DM to ann and writes: it appears in her list at once, with its count; the title says so.
    const started = Date.now()
    const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
    await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'psst' })
    await page.waitForSelector(`#room-list li[data-room="${opened.room}"] .unread`, { timeout: 3000, state: 'attached' })
    t.ok(Date.now() - started < 1000, `the DM is listed with its count in ${Date.now() - started} ms`)
    t.match(await page.title(), /^\[1\] /, 'the title counts it')
    // A third person invites her into a private room: listed at once; its message counted.
    const cat = await registerAccount(app, `cat${label}`)
    await post(base, cat, '/rooms', { name: `plans-${label}`, visibility: 'private' })
    const invitedAt = Date.now()
    t.equal((await post(base, cat, `/rooms/plans-${label}/invite`, { user: 'ann' })).status, 200, 'cat invites ann')
    await page.waitForSelector(`#room-list li[data-room="plans-${label}"]`, { timeout: 3000, state: 'attached' })
    t.ok(Date.now() - invitedAt < 1000, `the invitation is listed in ${Date.now() - invitedAt} ms`)
    await post(base, cat, `/longpolling/rooms/plans-${label}/messages`, { text: 'our plan' })
    await page.waitForSelector(`#room-list li[data-room="plans-${label}"] .unread`, { timeout: 3000, state: 'attached' })
    t.match(await page.title(), /^\[1\] /, 'a message in a room (not a DM, not a mention) does not count in the title')
    // A mention in a room not shown: its own badge.
    const mentionedAt = Date.now()
    await post(base, bob, '/longpolling/rooms/r3/messages', { text: '@ann look at this' })
    await page.waitForSelector('#room-list li[data-room="r3"] .mentioned', { timeout: 3000, state: 'attached' })
    t.ok(Date.now() - mentionedAt < 1000, `the mention in a room not shown is badged in ${Date.now() - mentionedAt} ms`)
    t.match(await page.title(), /^\[2\] /, 'and the mention')
    if (label === 'phone') await page.click('#online-toggle')
    await screenshot(page, `${label}-app-badges-${way}`)
    if (label === 'phone') await page.click('#online-toggle')
    // Opening the DM shows it and clears its count.
    if (label === 'phone') await page.click('#online-toggle')
    await page.click(`#room-list li[data-room="${opened.room}"] a`)
    await page.waitForSelector('#thread .message .text:text("psst")')
    t.notOk(await page.$(`#room-list li[data-room="${opened.room}"] .unread`), 'the DM shown: its count goes')
    t.match(await page.title(), /^\[1\] /, 'the mention still waits')

    // Beside a DM, the other person's presence, kept live: eve opens one and has no connection.
    const eve = await registerAccount(app, `eve${label}`)
    const withEve = (await (await post(base, eve, '/direct', { user: 'ann' })).json()) as { room: string }
    await page.waitForSelector(`#room-list li[data-room="${withEve.room}"]`, { state: 'attached', timeout: 3000 })
    if (label === 'phone') await page.click('#online-toggle')
    await page.click(`#room-list li[data-room="${withEve.room}"] a`)
    await page.waitForURL(`**/rooms/${withEve.room}`)
    const dot = `#room-list li[data-room="${withEve.room}"] .dot`
    t.equal(await page.getAttribute(dot, 'class'), 'dot offline', 'eve, with no connection, is offline beside the DM')
    t.ok(await page.isVisible('#thread .empty-thread:text("No messages yet: say hello.")'), 'a DM with nothing in it yet says so')
    t.equal(await page.textContent('#dm-with'), `eve${label} is offline`, "over the DM's thread: eve's presence, in words")
    const eves = await RoomsClient.open(base, eve, '?follow=me')
    t.teardown(() => eves.close())
    await page.waitForSelector(`${dot}.online`, { state: 'attached', timeout: 3000 })
    t.pass('eve connects: online beside the DM at once')
    eves.send({ type: 'presence', presence: 'away' })
    await page.waitForSelector(`${dot}.away`, { state: 'attached', timeout: 3000 })
    t.pass('her page hidden: away')
    await page.waitForSelector(`#dm-with:has-text("eve${label} is away")`, { state: 'attached', timeout: 3000 })
    t.pass('and so over the thread')
    await page.waitForSelector(`#users li.away[data-name="eve${label}"]`, { state: 'attached', timeout: 3000 })
    t.pass('and so in the list of members')
    if (label === 'phone') await page.click('#online-toggle')
    await screenshot(page, `${label}-app-dm-presence-${way}`)
    await post(base, eve, `/longpolling/rooms/${withEve.room}/messages`, { text: 'hi ann' })
    await page.waitForSelector('#thread .message .text:text("hi ann")')
    t.notOk(await page.isVisible('#thread .empty-thread'), 'once she writes, the thread holds her line alone')
    // The tab hidden: what comes in the room shown is counted in the title, which stays this room's and keeps the other rooms' count first.
    await page.evaluate(() => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => true })
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' })
      document.dispatchEvent(new Event('visibilitychange'))
    })
    await post(base, eve, `/longpolling/rooms/${withEve.room}/messages`, { text: '@ann are you there?' })
    await page.waitForFunction(() => document.title.includes('(@1 · 1)'), undefined, { timeout: 3000 })
    t.match(await page.title(), new RegExp(`^(\\[\\d+\\] )?\\(@1 · 1\\) ann & eve${label} · Chat$`), "the title: the other rooms' count first, then this room's news, then this room's own name")
    // Hidden, a DM in another room and a mention in another room each notify; a plain message elsewhere does not.
    const notes = () => page.evaluate(() => (window as unknown as { shownNotes: { title: string; body: string }[] }).shownNotes.map((n) => `${n.title}: ${n.body}`))
    await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'are you around?' })
    await post(base, bob, '/longpolling/rooms/r4/messages', { text: 'nothing for ann here' })
    await post(base, bob, '/longpolling/rooms/r2/messages', { text: '@ann the numbers are in' })
    await page.waitForFunction((eve) => (window as unknown as { shownNotes: { title: string }[] }).shownNotes.filter((n) => !n.title.startsWith(eve)).length >= 2, `eve${label}`, { timeout: 3000 })
    t.same((await notes()).filter((n) => !n.startsWith(`eve${label}`)), ['bob wrote to you: are you around?', 'bob mentioned you in #r2: @ann the numbers are in'], 'the hidden tab notified the DM and the mention, not the plain message')
  })
}
