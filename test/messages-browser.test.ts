import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { Page } from 'playwright-core'
import { buildTestApp, freePort, killed, serverAt, skipUnless } from './helpers.js'
import { axeViolations, DESKTOP, enterRoom, haveChromium, launchChromium, PHONE, screenshot } from './browser.js'

// Messages people can rely on, in Chromium: the outbox across a real server restart on every live
// page (sent by itself, once), the top bar's honest state and how fast it is live again, edits
// and deletions seen by others, mentions, folded join lines, "Load older" keeping the place, the
// counter refusing an over-long paste, and search.

const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')

const state = (page: Page) => page.evaluate(() => ({ state: document.getElementById('way')!.dataset.state, text: document.getElementById('way')!.textContent, since: Number(document.getElementById('way')!.dataset.since) }))
const untilState = (page: Page, wanted: RegExp, timeout = 15_000) =>
  page.waitForFunction((source) => new RegExp(source).test(document.getElementById('way')!.dataset.state ?? ''), wanted.source, { timeout })

/** Waits until the thread shows a (sent) message with exactly this text. */
const shows = (page: Page, text: string, timeout = 15_000) =>
  page.waitForFunction((x) => Array.from(document.querySelectorAll('#thread > .message .text')).some((n) => n.textContent === x), text, { timeout })

async function say(page: Page, text: string) {
  await page.fill('#message', text)
  await page.press('#message', 'Enter')
  await shows(page, text)
}

/** A message row of the thread, found by its text (as sent). */
const rowOf = (page: Page, text: string) => page.locator('#thread > .message', { has: page.locator('.text', { hasText: text }) })

/** Tells the page it is in the background (or not), as a browser does (headless Chromium never hides a tab). */
const setHidden = (page: Page, hidden: boolean) =>
  page.evaluate((h) => {
    Object.defineProperty(document, 'hidden', { configurable: true, get: () => h })
    document.dispatchEvent(new Event('visibilitychange'))
  }, hidden)

t.test('the outbox across a server restart: pending while it is down, sent by itself exactly once on every live page, live again within 2 s', { skip }, async (t) => {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-outbox-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  let server = await serverAt(port, dataDir)
  t.teardown(() => killed(server.child))
  const base = `http://127.0.0.1:${port}`
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  // One person per way in, and one whose network refuses WebSocket (the automatic page falls back).
  const noWebSocket = `window.WebSocket = class { constructor() { throw new DOMException('blocked by this network', 'SecurityError') } }`
  const pages: [string, Page][] = [
    ['websocket', await enterRoom(browser, base, 'ann', 'websocket')],
    ['sse', await enterRoom(browser, base, 'bob', 'sse')],
    ['longpolling', await enterRoom(browser, base, 'cy', 'longpolling')],
    ['auto', await enterRoom(browser, base, 'dee', 'auto')],
    ['auto without WebSocket', await enterRoom(browser, base, 'eve', 'auto', DESKTOP, noWebSocket)],
    ['websocket on a phone', await enterRoom(browser, base, 'fay', 'websocket', PHONE)],
  ]
  for (const [, page] of pages) await untilState(page, /^live$/)
  const named = Object.fromEntries(pages)
  t.match((await state(named.auto!)).text, /^Live · WebSocket$/, 'automatic: on WebSocket')
  t.match((await state(named['auto without WebSocket']!)).text, /^Live · event stream \(WebSocket is blocked here/, 'automatic without WebSocket: on the event stream')
  await say(named.websocket!, 'before the outage')

  // The server dies. Every page says so in the top bar, and what is written waits in the outbox.
  await killed(server.child)
  for (const [name, page] of pages) {
    await untilState(page, /^(reconnecting|offline)$/, 5000)
    t.match((await state(page)).text, /^(Reconnecting|Offline)/, `${name}: the top bar says it is not live`)
  }
  const texts = new Map(pages.map(([name]) => [name, `written on ${name} while the server was down`]))
  for (const [name, page] of pages) {
    await page.fill('#message', texts.get(name)!)
    await page.press('#message', 'Enter')
    t.equal(await page.inputValue('#message'), '', `${name}: the box is cleared and free for the next message`)
    const pending = page.locator('#outbox .outgoing.pending', { hasText: texts.get(name)! })
    await pending.waitFor({ timeout: 5000 })
    t.match(await pending.locator('.outbox-state').textContent(), /sending/, `${name}: shown as pending ("sending…")`)
    const saved = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('chat.outbox')).map((k) => localStorage.getItem(k)).join(''))
    t.match(saved, texts.get(name)!, `${name}: kept in localStorage`)
  }
  await screenshot(named.websocket!, 'messages-outbox-desktop')
  await screenshot(named['websocket on a phone']!, 'messages-outbox-phone')
  // One page is reloaded while the server is down: its outbox is still there when it is back.
  const reloaded = named['websocket on a phone']!
  await reloaded.reload().catch(() => {})

  // Back, on the same port and data: every page is live again within 2 s of the server answering.
  server = await serverAt(port, dataDir)
  const answeredAt = server.answeredAt
  const backIn: Record<string, number> = {}
  for (const [name, page] of pages) {
    if (page === reloaded) continue
    await untilState(page, /^live$/, 20_000)
    backIn[name] = (await state(page)).since - answeredAt
  }
  t.comment(`live again after the restart's first /healthz answer (ms): ${JSON.stringify(backIn)}`)
  for (const [name, ms] of Object.entries(backIn)) t.ok(ms <= 2000, `${name}: live again ${ms} ms after the server answered`)
  t.match((await state(named.auto!)).text, /^Live · WebSocket$/, 'automatic: still on WebSocket (a server outage is no reason to fall back)')

  // The reloaded page comes back (the page itself was lost while the server was down).
  await reloaded.goto(base + '/websocket/room')
  await untilState(reloaded, /^live$/)

  // Each message sent by itself, exactly once, and the outboxes empty.
  for (const [name, page] of pages) {
    await shows(page, texts.get(name)!, 20_000)
    await page.waitForFunction(() => document.querySelectorAll('#outbox .outgoing').length === 0 && !Object.keys(localStorage).some((k) => k.startsWith('chat.outbox')), undefined, { timeout: 10_000 })
  }
  const history = (await named.websocket!.evaluate(() => fetch('/room/history?limit=200').then((r) => r.json()))) as { events: { type: string; text?: string }[] }
  for (const [name, text] of texts) t.equal(history.events.filter((e) => e.type === 'message' && e.text === text).length, 1, `${name}: in the log once`)
  // The restart (and the reload during it) made no presence noise: nobody left, nobody joined twice.
  const presence = (history.events as { type: string; user?: string }[]).filter((e) => e.type === 'join' || e.type === 'leave')
  t.equal(presence.filter((e) => e.type === 'leave').length, 0, 'the restart made no leave line')
  const joined = presence.map((e) => e.user)
  t.equal(new Set(joined).size, joined.length, 'and nobody joined again')
  for (const [name, page] of pages) {
    const count = await page.$$eval('#thread > .message .text', (nodes, all) => nodes.filter((n) => all.includes(n.textContent ?? '')).length, [...texts.values()])
    t.equal(count, texts.size, `${name}: shows each of the six messages once`)
  }

  // Offline (the network, not the server): said at once, and live again when the network is back.
  const ann = named.websocket!
  await ann.context().setOffline(true)
  await untilState(ann, /^offline$/, 3000)
  t.match((await state(ann)).text, /^Offline · WebSocket$/, 'offline: said so')
  await ann.fill('#message', 'written offline')
  await ann.press('#message', 'Enter')
  await ann.context().setOffline(false)
  await untilState(ann, /^live$/, 5000)
  await shows(named.sse!, 'written offline')
  t.pass('offline: live again once the network is back, and the message went by itself')
})

t.test('edits, deletions, mentions, folded join lines, keyboard, "Load older", the counter, and search', { skip }, async (t) => {
  const app = await buildTestApp(t, { ARCHIVE_SIZE: '40', PRESENCE_GRACE: '30', RATE_LIMIT_MESSAGES: '8', RATE_LIMIT_WINDOW: '2' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  for (let i = 1; i <= 200; i++) await app.chatroom.post('zed', `older message number ${i}`)

  const ann = await enterRoom(browser, base, 'ann', 'websocket')
  await untilState(ann, /^live$/)
  const bob = await enterRoom(browser, base, 'bob', 'sse')
  const cy = await enterRoom(browser, base, 'cy', 'longpolling', PHONE)
  await untilState(cy, /^live$/)

  // Join lines in a row are one line.
  await ann.waitForFunction(() => /bob and cy joined/.test(document.querySelector('#thread > .notice.fold')?.textContent ?? ''), undefined, { timeout: 10_000 })
  t.pass('ann sees "bob and cy joined" on one line')

  // Edit: Up in the empty box edits your last message; Enter saves. Others see "(edited)".
  await say(ann, 'the meeting is at 3 pm, room 12')
  await ann.click('#message')
  await ann.press('#message', 'ArrowUp')
  const editor = ann.locator('#thread > .message.editing textarea')
  await editor.waitFor()
  await screenshot(ann, 'messages-editing-desktop')
  await editor.fill('the meeting is at 4 pm, room 12')
  await editor.press('Enter')
  for (const [name, page] of [['bob', bob], ['cy', cy], ['ann', ann]] as const) {
    const row = rowOf(page, 'the meeting is at 4 pm, room 12')
    await row.locator('.edited').waitFor({ timeout: 10_000 })
    t.equal(await row.locator('.edited').textContent(), '(edited)', `${name} sees the edited text with "(edited)"`)
  }
  // Delete, from the hover buttons, asked once.
  await say(ann, 'oops, wrong room')
  const oops = rowOf(ann, 'oops, wrong room')
  await oops.hover()
  await oops.locator('.actions .delete').click()
  await ann.locator('.confirm-delete .danger').click()
  for (const [name, page] of [['bob', bob], ['cy', cy], ['ann', ann]] as const) {
    await page.waitForFunction(() => Array.from(document.querySelectorAll('#thread > .message.deleted .gone')).some((n) => n.textContent === 'message deleted'), undefined, { timeout: 10_000 })
    t.notOk(await page.evaluate(() => document.getElementById('thread')!.textContent!.includes('oops, wrong room')), `${name}: the deleted text is gone, "message deleted" in its place`)
  }
  t.equal(await bob.locator('#thread > .message:not(.mine) .actions :is(.edit, .delete)').count(), 0, 'no Edit or Delete on other people\'s messages')
  t.ok((await bob.locator('#thread > .message:not(.mine) .actions .report').count()) > 0, 'Report instead')
  await screenshot(bob, 'messages-edited-desktop')
  await screenshot(cy, 'messages-edited-phone')
  // On a touch screen, "⋯" on your own message opens Edit and Delete.
  await say(cy, 'on my way')
  const mine = rowOf(cy, 'on my way')
  t.ok(await mine.locator('.actions .more').isVisible(), 'phone: "⋯" on your own message')
  t.notOk(await mine.locator('.actions .edit').isVisible(), 'phone: Edit waits behind it')
  await mine.locator('.actions .more').tap()
  t.ok(await mine.locator('.actions .edit').isVisible(), 'phone: a tap shows Edit')
  await screenshot(cy, 'messages-actions-phone')
  await mine.locator('.actions .more').tap()

  // A mention: completion in the box, the message highlighted for the person, counted in a badge and in the title,
  // and a browser notification while the tab is hidden (ann allowed them; the browser's Notification is watched).
  await ann.evaluate(() => {
    const shown: string[] = []
    ;(window as unknown as { shownNotes: string[] }).shownNotes = shown
    ;(window as unknown as { Notification: unknown }).Notification = class {
      static permission = 'granted'
      constructor(title: string, options: { body?: string }) {
        shown.push(`${title}: ${options.body ?? ''}`)
      }
      addEventListener() {}
      close() {}
    }
  })
  await setHidden(ann, true)
  await bob.fill('#message', 'can you check this, @a')
  await bob.locator('#mention-list [role=option]', { hasText: '@ann' }).waitFor()
  await bob.press('#message', 'Tab')
  t.equal(await bob.inputValue('#message'), 'can you check this, @ann ', 'Tab completes the name')
  await bob.type('#message', 'please?')
  await bob.press('#message', 'Enter')
  await shows(ann, 'can you check this, @ann please?')
  const mention = rowOf(ann, 'can you check this, @ann please?')
  t.ok(await mention.evaluate((r) => r.classList.contains('mention')), 'highlighted for ann')
  t.equal(await mention.locator('mark.at-me').textContent(), '@ann')
  t.equal(await ann.locator('#mention-badge .count').textContent(), '1', 'the badge counts it')
  t.match(await ann.title(), /^\(@1 · 1\) Chat room · Chat$/, 'and the title, while the tab is hidden')
  t.same(await ann.evaluate(() => (window as unknown as { shownNotes: string[] }).shownNotes), ['bob mentioned you: can you check this, @ann please?'], 'a notification, as the tab is hidden')
  t.notOk(await rowOf(cy, 'can you check this, @ann please?').evaluate((r) => r.classList.contains('mention')), 'not highlighted for cy')
  // A mention that arrives in view, with the tab in front, is seen at once: cy is in another tab.
  await setHidden(cy, true)
  await bob.fill('#message', '@cy and @ann: lunch?')
  await bob.press('#message', 'Enter')
  await shows(cy, '@cy and @ann: lunch?')
  t.equal(await cy.locator('#mention-badge .count').textContent(), '1', 'cy: the badge counts the mention')
  await screenshot(cy, 'messages-mention-phone')
  await screenshot(ann, 'messages-mention-desktop')
  await setHidden(cy, false)
  await setHidden(ann, false)
  await ann.waitForFunction(() => document.getElementById('mention-badge')!.hidden, undefined, { timeout: 5000 })
  t.equal(await ann.title(), 'Chat room · Chat', 'seen: the badge and the title count go')

  // Keyboard: the thread is one Tab stop; links in it are not; arrows move between messages.
  await say(bob, 'docs at https://example.com/docs')
  t.equal(await ann.locator('#thread a[href="https://example.com/docs"]').getAttribute('tabindex'), '-1', 'a link in the thread is no Tab stop')
  await ann.focus('#thread')
  await ann.keyboard.press('ArrowUp')
  t.match(await ann.evaluate(() => document.activeElement?.textContent ?? ''), /docs at https:\/\/example.com\/docs/, 'ArrowUp: the last message')
  await ann.keyboard.press('ArrowUp')
  t.match(await ann.evaluate(() => document.activeElement?.textContent ?? ''), /lunch\?/, 'ArrowUp again: the one before')
  await ann.keyboard.press('ArrowDown')
  await ann.context().route('https://example.com/**', (route) => route.fulfill({ contentType: 'text/plain', body: 'the docs' }))
  const [opened] = await Promise.all([ann.context().waitForEvent('page'), ann.keyboard.press('Enter')])
  await opened.waitForLoadState()
  t.equal(opened.url(), 'https://example.com/docs', 'Enter on a message opens its link')
  await opened.close()

  // "Load older" keeps the messages in view where they were, wherever the thread is scrolled, three times in a row.
  const dan = await enterRoom(browser, base, 'dan', 'websocket')
  await shows(dan, 'docs at https://example.com/docs')
  for (const [round, at] of [[1, 1 / 3], [2, 2 / 3], [3, 0]] as const) {
    await dan.evaluate((share) => {
      const thread = document.getElementById('thread')!
      thread.scrollTop = (thread.scrollHeight - thread.clientHeight) * share
    }, at)
    const before = await dan.evaluate(() => {
      const thread = document.getElementById('thread')!
      const top = thread.getBoundingClientRect().top
      const row = Array.from(thread.querySelectorAll<HTMLElement>(':scope > .message')).find((r) => r.getBoundingClientRect().bottom > top + 1)!
      return { id: row.dataset.id!, top: row.getBoundingClientRect().top, rows: thread.querySelectorAll('[data-id]').length }
    })
    await dan.click('#older')
    await dan.waitForFunction((n) => document.querySelectorAll('#thread [data-id]').length > n, before.rows)
    const after = await dan.evaluate((id) => document.querySelector<HTMLElement>(`#thread [data-id="${id}"]`)!.getBoundingClientRect().top, before.id)
    t.ok(Math.abs(after - before.top) < 1, `round ${round}: message ${before.id} stays in place (${before.top} → ${after})`)
  }

  // The counter: an over-long paste stays whole, is counted and refused before sending.
  const long = 'x'.repeat(2100)
  await ann.click('#message')
  await ann.keyboard.insertText(long)
  t.equal((await ann.inputValue('#message')).length, 2100, 'the pasted text is not cut')
  t.match(await ann.textContent('#say-count'), /2,100 \/ 2,000: 100 too many/, 'the counter says by how much')
  t.ok(await ann.locator('#say button[type=submit]').isDisabled(), 'Send is off')
  await ann.press('#message', 'Enter')
  t.match(await ann.textContent('#flash'), /100 characters too long/, 'Enter says why')
  t.equal(await ann.locator('#outbox .outgoing').count(), 0, 'nothing went to the outbox')
  t.equal(await ann.inputValue('#message'), long, 'the text stays in the box, to shorten')
  await ann.fill('#message', '')

  // Refused for good (a control character): why, with Retry and Discard; the next message is not held up.
  await ann.fill('#message', 'a bell \u0007 in it')
  await ann.press('#message', 'Enter')
  const refused = ann.locator('#outbox .outgoing.failed')
  await refused.waitFor({ timeout: 10_000 })
  t.match(await refused.locator('.outbox-state').textContent(), /Not sent: A message cannot contain control characters\..*Retry.*Discard/, 'refused: why, with Retry and Discard')
  await say(ann, 'sent after the refused one')
  await refused.locator('.discard').click()
  t.equal(await ann.locator('#outbox .outgoing').count(), 0, 'Discard takes it out')

  // Too many too fast (8 per 2 s): the rest wait out the limit, say so, and go by themselves, in order, once.
  const burst = Array.from({ length: 12 }, (_, i) => `burst ${i + 1}`)
  for (const text of burst) {
    await ann.fill('#message', text)
    await ann.press('#message', 'Enter')
  }
  await ann.waitForFunction(() => Array.from(document.querySelectorAll('#outbox .outbox-state')).some((n) => /Slow down: .*Sending it by itself in \d+ s/.test(n.textContent ?? '')), undefined, { timeout: 10_000 })
  t.pass('over the limit: the row says it waits and goes by itself')
  await shows(bob, 'burst 12', 20_000)
  const order = await bob.$$eval('#thread > .message .text', (nodes) => nodes.map((n) => n.textContent).filter((x) => x?.startsWith('burst ')))
  t.same(order, burst, 'all of them, in order, each once')

  // The page with all of it (own, edited, deleted, mentions, a refused message, the editor) passes axe-core.
  await ann.fill('#message', 'another bell \u0007')
  await ann.press('#message', 'Enter')
  await ann.locator('#outbox .outgoing.failed').waitFor({ timeout: 10_000 })
  await ann.press('#message', 'ArrowUp')
  await ann.locator('#thread > .message.editing textarea').waitFor()
  t.same(await axeViolations(ann), [], 'axe: the room with own, edited, deleted and refused messages and the editor open')
  await ann.press('#thread > .message.editing textarea', 'Escape')
  t.same(await axeViolations(cy), [], 'axe: the phone page with a mention and the actions')

  // Search: the page with results, from the room's side panel.
  await ann.fill('#room-search-q', 'meeting')
  await Promise.all([ann.waitForURL('**/search?q=meeting'), ann.press('#room-search-q', 'Enter')])
  await ann.locator('.search-results li').first().waitFor()
  t.match(await ann.textContent('.search-results'), /the meeting is at 4 pm, room 12/, 'search finds the edited text')
  await screenshot(ann, 'messages-search-desktop')
  await cy.goto(base + '/search?q=meeting')
  await cy.locator('.search-results li').first().waitFor()
  await screenshot(cy, 'messages-search-phone')
  // A result opens the live app at the message, older history loaded until it is there.
  await ann.goto(base + '/search?q=number+5')
  await ann.locator('.search-results li').first().waitFor()
  // (Words match as prefixes: "5" finds 50 to 59 as well; the one wanted is the oldest.)
  const wanted = ann.locator('.search-results li').filter({ hasText: /older message number 5(?!\d)/ }).locator('a.result-link')
  await Promise.all([ann.waitForURL('**/auto/room#m*'), wanted.click()])
  await ann.waitForSelector('#thread > .message.target .text:text-is("older message number 5")', { timeout: 15_000 })
  t.pass('a search result opens the live app scrolled to the message, 200 messages back')
  t.equal(await ann.evaluate(() => document.activeElement?.classList.contains('target')), true, 'and the message has the focus')

  // Touch targets on the phone: the top bar's buttons and Send are at least 44 px tall.
  const phone = await enterRoom(browser, base, 'gil', 'auto', PHONE)
  const heights = await phone.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>('.masthead button, .masthead a.online-toggle, #say button[type=submit]')).map((e) => [e.textContent?.trim(), e.getBoundingClientRect().height] as const),
  )
  for (const [label, height] of heights) t.ok(height >= 44, `phone: "${label}" is ${height} px tall`)
})
