import t from 'tap'
import type { Page } from 'playwright-core'
import { buildTestApp, skipUnless } from './helpers.js'
import { axeViolations, DESKTOP, enterRoom, haveChromium, launchChromium, PHONE, screenshot } from './browser.js'

const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')
const transports = ['refresh', 'longpolling', 'websocket', 'sse', 'auto'] as const

/** Waits until the page's thread shows a message with exactly this text. */
const shows = (page: Page, text: string, timeout = 20_000) =>
  page.waitForFunction((x) => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === x), text, { timeout })

/** Waits until the page's online list does (or does not) list this name. */
const listed = (page: Page, name: string, present: boolean, timeout: number) =>
  page.waitForFunction(([n, p]) => Boolean(document.querySelector(`#users li[data-name="${n}"]`)) === p, [name, present] as const, { timeout })

async function say(page: Page, text: string) {
  await page.fill('#message', text)
  await page.press('#message', 'Enter')
  await shows(page, text)
}

t.test('desktop: links, groups, own messages, new lines, the unread pill and title, drafts kept on 429, typing on the refresh page', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1', RATE_LIMIT_MESSAGES: '6', RATE_LIMIT_WINDOW: '60' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const ann = await enterRoom(browser, base, 'ann', 'refresh')
  const bob = await enterRoom(browser, base, 'bob', 'longpolling')
  const cat = await enterRoom(browser, base, 'cat', 'websocket')
  const pages = { refresh: ann, longpolling: bob, websocket: cat }

  // A link, two messages in a row from bob, and a two-line message typed with Shift+Enter.
  const link = 'Notes: https://example.com/notes?day=28&x=(1). Also javascript:alert(1)'
  await say(bob, link)
  await say(bob, 'and a second one, right after')
  await cat.fill('#message', 'line one')
  await cat.press('#message', 'Shift+Enter')
  await cat.type('#message', 'line two')
  t.equal(await cat.inputValue('#message'), 'line one\nline two', 'Shift+Enter starts a new line instead of sending')
  await cat.press('#message', 'Enter')
  await shows(cat, 'line one\nline two')
  t.equal(await cat.inputValue('#message'), '', 'the box is cleared once the server confirmed')

  for (const [name, page] of Object.entries(pages)) {
    await shows(page, 'line one\nline two')
    const seen = await page.evaluate(() => {
      const anchors = Array.from(document.querySelectorAll<HTMLAnchorElement>('#thread .text a'))
      const rows = Array.from(document.querySelectorAll<HTMLElement>('#thread .message'))
      const byText = (x: string) => rows.find((r) => r.querySelector('.text')?.textContent?.startsWith(x))!
      const twoLines = byText('line one')
      const lineHeight = parseFloat(getComputedStyle(twoLines.querySelector('.text')!).lineHeight)
      const text = byText('Notes').querySelector('.text')!
      const avatar = byText('Notes').querySelector('img.avatar')!
      return {
        links: anchors.map((a) => ({ href: a.href, text: a.textContent, rel: a.rel, target: a.target })),
        cont: [byText('Notes').classList.contains('cont'), byText('and a second').classList.contains('cont')],
        twoLinesHigh: twoLines.querySelector('.text')!.getBoundingClientRect().height >= 1.9 * lineHeight,
        // The text column starts right of the avatar, on every line.
        textLeftOfAvatar: text.getBoundingClientRect().left >= avatar.getBoundingClientRect().right,
        dayLines: Array.from(document.querySelectorAll('#thread .day')).map((d) => d.textContent),
        mineBackground: getComputedStyle(document.querySelector('#thread .message.mine') ?? document.body).backgroundColor,
        othersBackground: getComputedStyle(rows.find((r) => !r.classList.contains('mine'))!).backgroundColor,
      }
    })
    t.same(seen.links, [{ href: 'https://example.com/notes?day=28&x=(1)', text: 'https://example.com/notes?day=28&x=(1)', rel: 'noopener noreferrer nofollow', target: '_blank' }], `${name}: one safe link, javascript: left as text`)
    t.same(seen.cont, [false, true], `${name}: bob's second message is grouped under his first`)
    t.ok(seen.twoLinesHigh, `${name}: the new line shows as a line break`)
    t.ok(seen.textLeftOfAvatar, `${name}: the text is in its own column`)
    t.same(seen.dayLines, ['Today'], `${name}: one date line`)
    if (name === 'websocket') t.not(seen.mineBackground, seen.othersBackground, 'your own messages look different')
  }

  // Typing on the socket page shows on the refresh page (which fetches it), not to the typist.
  await cat.type('#message', 'hmm')
  await ann.waitForFunction(() => document.getElementById('typing')?.textContent === 'cat is typing…', undefined, { timeout: 5000 })
  t.pass('the refresh page shows who is typing')
  // And the refresh page's typing reaches the others.
  await ann.type('#message', 'typing here')
  await cat.waitForFunction(() => document.getElementById('typing')?.textContent === 'ann is typing…', undefined, { timeout: 5000 })
  t.pass('the refresh page sends typing signals')
  await cat.fill('#message', '')

  // Scrolled up: new messages wait below a pill; the tab title counts them while hidden.
  for (let i = 0; i < 30; i++) await app.chatroom.post('bob', `filler ${i}`)
  await shows(cat, 'filler 29')
  await cat.evaluate(() => (document.getElementById('thread')!.scrollTop = 0))
  // The tab goes to the background (headless Chromium never hides a tab by itself, so the page is told as a browser tells it).
  const setHidden = (hidden: boolean) =>
    cat.evaluate((h) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => h })
      document.dispatchEvent(new Event('visibilitychange'))
    }, hidden)
  await setHidden(true)
  await app.chatroom.post('bob', 'while you were scrolled up 1')
  await app.chatroom.post('bob', 'while you were scrolled up 2')
  await shows(cat, 'while you were scrolled up 2')
  t.equal(await cat.textContent('#new-pill'), '2 new messages below')
  t.match(await cat.title(), /^\(2\) Chat room · Chat$/, 'the hidden tab counts them in its title')
  await setHidden(false)
  t.equal(await cat.title(), 'Chat room · Chat', 'back in front: the count goes')
  await cat.click('#new-pill')
  t.ok(await cat.evaluate(() => document.getElementById('new-pill')!.hidden), 'the pill goes once read')
  t.ok(await cat.evaluate(() => { const th = document.getElementById('thread')!; return th.scrollHeight - th.scrollTop - th.clientHeight < 40 }), 'and the thread is at the newest')

  for (const [name, page] of Object.entries(pages)) await screenshot(page, `desktop-${name}`)

  // Over the limit. The live pages keep the message in their outbox, saying why and when it goes
  // by itself (the box is free for the next one); the refresh page keeps the draft in the box.
  for (const [name, page] of [['websocket', cat], ['longpolling', bob]] as const) {
    for (let i = 0; ; i++) {
      const text = `${name} quick ${i}`
      await page.fill('#message', text)
      await page.press('#message', 'Enter')
      const outcome = await page.waitForFunction(
        (x) => {
          const row = Array.from(document.querySelectorAll('#thread .outgoing')).find((r) => r.querySelector('.text')?.textContent === x)
          if (row && /Slow down/.test(row.querySelector('.outbox-state')?.textContent ?? '')) return 'refused'
          return !row && Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === x) ? 'sent' : null
        },
        text,
        { timeout: 10_000 },
      )
      if ((await outcome.jsonValue()) === 'refused') {
        t.equal(await page.inputValue('#message'), '', `${name}: the box is free for the next message`)
        const state = await page.textContent('#thread .outgoing .outbox-state')
        t.match(state, /Slow down: at most 6 messages per 60 s\. Sending it by itself in \d+ s/, `${name}: the pending message says why and when it goes`)
        break
      }
      if (i > 10) throw new Error(`${name}: never refused`)
    }
  }
  for (let i = 0; ; i++) {
    const text = `refresh quick ${i}`
    await ann.fill('#message', text)
    await ann.press('#message', 'Enter')
    const outcome = await ann.waitForFunction(
      (x) => (document.getElementById('flash')!.hidden ? (Array.from(document.querySelectorAll('#thread .text')).some((n) => n.textContent === x) ? 'sent' : null) : 'refused'),
      text,
      { timeout: 10_000 },
    )
    if ((await outcome.jsonValue()) === 'refused') {
      t.equal(await ann.inputValue('#message'), text, 'refresh: the refused draft is still in the box')
      t.match(await ann.textContent('#flash'), /Slow down: at most 6 messages per 60 s/, 'refresh: with the reason')
      break
    }
    if (i > 10) throw new Error('refresh: never refused')
  }
  await screenshot(cat, 'desktop-websocket-refused')
})

t.test('phone: one scroll area, the box pinned at the bottom, the online list behind a button', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  for (const transport of transports) {
    const page = await enterRoom(browser, base, `${transport.slice(0, 4)}-phone`, transport, PHONE)
    await app.chatroom.join('zed')
    for (let i = 0; i < 25; i++) await app.chatroom.post('zed', `message ${i} for the ${transport} phone, long enough to wrap on a narrow screen`)
    await shows(page, `message 24 for the ${transport} phone, long enough to wrap on a narrow screen`)
    const layout = await page.evaluate(() => {
      const thread = document.getElementById('thread')!
      const box = document.getElementById('message')!.getBoundingClientRect()
      const scrollers = Array.from(document.querySelectorAll<HTMLElement>('body *')).filter((e) => {
        const style = getComputedStyle(e)
        return /(auto|scroll)/.test(style.overflowY) && e.scrollHeight > e.clientHeight + 1 && e.offsetParent !== null
      })
      return {
        pageScrolls: document.documentElement.scrollHeight > innerHeight + 1,
        scrollers: scrollers.map((e) => e.id || e.className),
        threadScrolls: thread.scrollHeight > thread.clientHeight,
        boxBottomGap: innerHeight - box.bottom,
        boxVisible: box.top > 0 && box.bottom <= innerHeight,
        header: document.querySelector('.masthead')!.getBoundingClientRect().height,
        peopleShown: getComputedStyle(document.getElementById('people')!).display !== 'none',
      }
    })
    t.notOk(layout.pageScrolls, `${transport}: the page itself does not scroll`)
    t.same(layout.scrollers, ['thread'], `${transport}: the thread is the one scroll area`)
    t.ok(layout.boxVisible && layout.boxBottomGap < 40, `${transport}: the message box is at the bottom (${layout.boxBottomGap}px above it)`)
    t.ok(layout.header < 60, `${transport}: a one-line header (${layout.header}px)`)
    t.notOk(layout.peopleShown, `${transport}: the online list waits behind its button`)
    const count = await page.$$eval('#users li', (items) => items.length)
    t.match(await page.textContent('#online-toggle'), new RegExp(`Online\\s+${count}$`), `${transport}: the button shows the count (${count})`)
    await screenshot(page, `phone-${transport}`)
    await page.click('#online-toggle')
    await page.waitForSelector('#people li[data-name="zed"]', { state: 'visible', timeout: 5000 })
    t.pass(`${transport}: the list opens`)
    await screenshot(page, `phone-${transport}-online`)
    await page.click('#close-people')
    await page.waitForSelector('#people', { state: 'hidden', timeout: 5000 })
    await app.chatroom.left('zed')
  }
})

t.test('leaving is seen by others within a second: closing the tab on each transport, and the Leave button', { skip }, async (t) => {
  // With a minute of grace, only the page's own goodbye can be that fast.
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1', PRESENCE_GRACE: '60' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const watcher = await enterRoom(browser, base, 'watcher', 'websocket')
  for (const transport of transports) {
    const name = `leaver-${transport}`
    const page = await enterRoom(browser, base, name, transport)
    await listed(watcher, name, true, 10_000)
    const started = Date.now()
    await page.close({ runBeforeUnload: true })
    await listed(watcher, name, false, 1000)
    t.pass(`${transport}: closing the tab is seen in ${Date.now() - started} ms`)
  }
  const leaver = await enterRoom(browser, base, 'leaves-by-button', 'longpolling')
  await listed(watcher, 'leaves-by-button', true, 10_000)
  await Promise.all([leaver.waitForURL(base + '/'), leaver.click('.signout button')])
  await listed(watcher, 'leaves-by-button', false, 1000)
  t.match(await leaver.textContent('.flash.info'), /You signed out/)
  t.equal(await leaver.inputValue('#user'), 'leaves-by-button', 'the name is kept for coming back')
  // A reload is not a leave: no leave or join for it.
  const stayer = await enterRoom(browser, base, 'reloads', 'websocket')
  await listed(watcher, 'reloads', true, 10_000)
  const before = app.chatroom.lastId
  await stayer.reload()
  await stayer.waitForSelector('#users li[data-name="reloads"]')
  t.equal(app.chatroom.lastId, before, 'a reload publishes nothing')
})

t.test('every page passes axe-core (WCAG A/AA) on desktop and phone', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  await app.chatroom.post('bob', 'a link https://example.com and text')
  for (const [screenName, screen] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    const context = await browser.newContext(screen)
    const welcome = await context.newPage()
    await welcome.goto(base + '/')
    t.same(await axeViolations(welcome), [], `${screenName}: the welcome page`)
    await screenshot(welcome, `${screenName}-welcome`)
    await welcome.fill('#user', 'x'.repeat(40))
    await welcome.evaluate(() => (document.querySelector('form.signin') as HTMLFormElement).noValidate = true)
    await Promise.all([welcome.waitForURL(base + '/'), welcome.click('button[type=submit]')])
    t.match(await welcome.textContent('.flash.error'), /at most 32 characters/)
    t.same(await axeViolations(welcome), [], `${screenName}: the welcome page with an error`)
    const missing = await welcome.goto(base + '/no/such/page')
    t.equal(missing?.status(), 404)
    t.same(await axeViolations(welcome), [], `${screenName}: the error page`)
    for (const transport of transports) {
      const page = await enterRoom(browser, base, `axe-${screenName}-${transport}`, transport, screen)
      await shows(page, 'a link https://example.com and text')
      t.same(await axeViolations(page), [], `${screenName}: the ${transport} room`)
      if (screenName === 'phone') {
        await page.click('#online-toggle')
        t.same(await axeViolations(page), [], `${screenName}: the ${transport} room with the online list open`)
      }
      await page.context().close()
    }
    await context.close()
  }
})

t.test('the welcome form says a name is too long before it is sent', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  await page.goto(base + '/')
  await page.fill('#user', 'n'.repeat(33))
  t.match(await page.evaluate(() => (document.getElementById('user') as HTMLInputElement).validationMessage), /at most 32 characters \(this one has 33\)/)
  await page.fill('#user', 'n'.repeat(32) + '@example.com')
  t.equal(await page.evaluate(() => (document.getElementById('user') as HTMLInputElement).validationMessage), '', 'an email may be longer')
  t.equal(await page.getAttribute('#user', 'maxlength'), '254')
})
