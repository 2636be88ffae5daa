import type { Page } from 'playwright-core'
import t from 'tap'
import { buildTestApp, skipUnless } from './helpers.js'
import { axeViolations, DESKTOP, enterRoom, haveChromium, launchChromium, PHONE, screenshot } from './browser.js'

// The refresh page and the search page in Chromium: edits and deletions as they happen, one's
// own Edit and Delete (with JavaScript and without), the pill and the title's count, the
// character counter, one Tab stop for the thread, and the search's results on desktop and phone.

const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')

/** Waits until a message of the page's thread has exactly this text. */
const shows = (page: Page, text: string, timeout = 10_000) =>
  page.waitForFunction((x) => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === x), text, { timeout })

/** The row of the message with this text. */
const rowWith = (page: Page, text: string) => page.locator('#thread .message', { has: page.locator('.text', { hasText: text }) })

async function say(page: Page, text: string) {
  await page.fill('#message', text)
  await page.press('#message', 'Enter')
  await shows(page, text)
}

t.test('desktop: edits and deletions as they happen, Edit and Delete on the page, the pill, the count, the counter, one Tab stop', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1', MAX_MESSAGE_LENGTH: '80' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const ann = await enterRoom(browser, base, 'ann', 'refresh')
  const bob = await enterRoom(browser, base, 'bob', 'websocket')

  await say(bob, 'I will be edited https://example.com/a')
  await say(bob, 'I will be deleted')
  await shows(ann, 'I will be deleted')
  await say(ann, 'teh first try')
  const url = ann.url()

  // ann fixes her typo in place: Edit, the new text, Enter. The page stays (no reload).
  const mine = rowWith(ann, 'teh first try')
  await mine.hover()
  await mine.locator('details.edit summary').click()
  const box = mine.locator('details.edit textarea')
  t.equal(await box.inputValue(), 'teh first try', 'the box holds the text to change')
  await box.fill('the first try')
  await ann.evaluate(() => ((window as unknown as { stayed: boolean }).stayed = true))
  await box.press('Enter')
  await shows(ann, 'the first try')
  t.ok(await ann.evaluate(() => (window as unknown as { stayed?: boolean }).stayed), 'no reload: the page stayed')
  t.equal(ann.url(), url)
  t.equal(await rowWith(ann, 'the first try').locator('.edited').textContent(), '(edited)')
  t.notOk(await rowWith(ann, 'the first try').locator('details.edit').evaluate((d) => (d as HTMLDetailsElement).open), 'the edit is put away')

  // bob edits and deletes his: ann's page shows both within a refresh.
  const [edited, deleted] = await ann.evaluate(() =>
    ['I will be edited', 'I will be deleted'].map((x) => Array.from(document.querySelectorAll<HTMLElement>('#thread .message')).find((r) => r.querySelector('.text')?.textContent?.startsWith(x))!.dataset.id),
  )
  await bob.evaluate(async ([e, d]) => {
    await fetch(`/room/messages/${e}/edit`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'edited, with https://example.com/b' }) })
    await fetch(`/room/messages/${d}/delete`, { method: 'POST' })
  }, [edited, deleted])
  await shows(ann, 'edited, with https://example.com/b')
  await ann.waitForSelector(`#m${deleted}.deleted .gone`)
  t.equal(await ann.textContent(`#m${deleted} .content`), 'message deleted')
  t.notOk((await ann.textContent('#thread'))!.includes('I will be deleted'), 'the deleted text is gone from the page')
  t.equal(await ann.locator(`#m${edited} .text a`).getAttribute('href'), 'https://example.com/b', 'the new text\'s link')
  t.equal(await ann.locator(`#m${edited} .own-forms`).count(), 0, 'bob\'s message has no Edit for ann')

  // ann deletes hers, confirming.
  await say(ann, 'posted by mistake')
  const wrong = rowWith(ann, 'posted by mistake')
  await wrong.hover()
  await wrong.locator('details.delete summary').click()
  t.match(await wrong.locator('details.delete form').textContent(), /Delete this message for everyone\?/)
  const wrongId = await wrong.getAttribute('data-id')
  await wrong.locator('details.delete button.danger').click()
  await ann.waitForSelector(`#m${wrongId}.deleted`)
  t.equal(await ann.locator(`#m${wrongId} .own-forms`).count(), 0)
  await screenshot(ann, 'desktop-refresh-edited-deleted')

  // Joins in different refreshes fold into the line before.
  await app.chatroom.join('cy')
  await ann.waitForFunction(() => document.querySelector('#thread > :last-child')?.textContent?.includes('cy'))
  await app.chatroom.join('dan')
  await ann.waitForFunction(() => /cy and dan joined/.test(document.querySelector('#thread > :last-child')?.textContent ?? ''))
  t.equal(await ann.locator('#thread .notice').filter({ hasText: 'dan' }).count(), 1, 'one line for both')

  // One Tab stop: nothing inside the thread is reached by Tab; the arrow keys go from message to message.
  const stops = await ann.evaluate(() =>
    Array.from(document.querySelectorAll<HTMLElement>('#thread a, #thread summary, #thread button, #thread textarea, #thread .message')).filter((n) => n.tabIndex >= 0 && n.checkVisibility()).map((n) => n.outerHTML.slice(0, 80)),
  )
  t.same(stops, [], 'no Tab stops inside the thread')
  t.equal(await ann.evaluate(() => document.getElementById('thread')!.tabIndex), 0, 'the thread is one')
  await ann.focus('#message')
  await ann.focus('#thread')
  await ann.keyboard.press('ArrowUp')
  t.ok(await ann.evaluate(() => document.activeElement?.matches('#thread > .message, #thread > .notice')), 'ArrowUp: a line of the thread has focus')
  await ann.focus('#thread')
  await ann.evaluate(() => (document.getElementById('thread')!.scrollTop = 1e6))
  const own = await ann.evaluate(() => {
    const rows = Array.from(document.querySelectorAll<HTMLElement>('#thread .message'))
    const last = rows.filter((r) => r.querySelector('.own-forms')).at(-1)!
    last.focus()
    return last.id
  })
  await ann.keyboard.press('Tab')
  t.equal(await ann.evaluate(() => document.activeElement?.closest('.message')?.id), own, 'Tab from one\'s own focused message: its Edit')
  t.equal(await ann.evaluate(() => document.activeElement?.closest('details')?.className), 'edit')

  // Over the limit: the box's counter says so (page/composer.ts), and Enter sends nothing (the draft stays).
  const before = app.chatroom.lastId
  await ann.fill('#message', 'x'.repeat(90))
  t.match(await ann.textContent('#say-count'), /10 too many/)
  t.ok(await ann.locator('#say-count').isVisible(), 'the counter shows')
  await ann.press('#message', 'Enter')
  await ann.waitForSelector('#flash:not([hidden])')
  t.match(await ann.textContent('#flash'), /10 characters too long/)
  t.equal(await ann.inputValue('#message'), 'x'.repeat(90), 'the draft stays')
  t.equal(app.chatroom.lastId, before, 'nothing was sent')
  await screenshot(ann, 'desktop-refresh-counter')
  await ann.fill('#message', 'short')
  t.ok(await ann.locator('#say-count').isHidden(), 'far from the limit: no counter')
  await ann.fill('#message', '')

  // Scrolled up, in a hidden tab: the pill and the title count what came.
  for (let i = 0; i < 30; i++) await app.chatroom.post('bob', `filler ${i}`)
  await shows(ann, 'filler 29')
  await ann.evaluate(() => (document.getElementById('thread')!.scrollTop = 0))
  const setHidden = (hidden: boolean) =>
    ann.evaluate((h) => {
      Object.defineProperty(document, 'hidden', { configurable: true, get: () => h })
      document.dispatchEvent(new Event('visibilitychange'))
    }, hidden)
  await setHidden(true)
  await app.chatroom.post('bob', 'while you were away 1')
  await app.chatroom.post('bob', 'while you were away 2')
  await shows(ann, 'while you were away 2')
  t.equal(await ann.textContent('#new-pill'), '2 new messages below')
  t.equal(await ann.title(), '(2) Chat room · Chat', 'the hidden tab counts them')
  await setHidden(false)
  t.equal(await ann.title(), 'Chat room · Chat')
  await ann.click('#new-pill')
  t.ok(await ann.locator('#new-pill').isHidden(), 'the pill goes once read')
  t.same(await axeViolations(ann), [], 'axe: the refresh page with Edit and Delete')
  await ann.locator('#thread .message .own-forms').last().hover()
  await ann.locator('#thread .message .own-forms details.edit summary').last().click()
  t.same(await axeViolations(ann), [], 'axe: with an edit open')
  await screenshot(ann, 'desktop-refresh-editing')
})

t.test('without JavaScript: Edit and Delete post and come back to the page', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const context = await browser.newContext({ ...DESKTOP, javaScriptEnabled: false })
  const page = await context.newPage()
  await page.goto(base + '/')
  await page.fill('#user', 'nojs')
  await page.check('input[name=transport][value=refresh]')
  await Promise.all([page.waitForURL('**/refresh/room'), page.click('button[type=submit]')])
  for (const text of ['a typo hree', 'a mistake']) {
    await page.fill('#message', text)
    await Promise.all([page.waitForURL('**/refresh/room'), page.click('#say button[type=submit]')])
  }
  const typo = page.locator('#thread .message', { hasText: 'a typo hree' })
  await typo.locator('details.edit summary').click()
  await typo.locator('textarea[name=text]').fill('a typo here')
  await Promise.all([page.waitForURL('**/refresh/room'), typo.locator('details.edit button[type=submit]').click()])
  t.equal(await page.locator('#thread .message', { hasText: 'a typo here' }).locator('.edited').textContent(), '(edited)')
  const mistake = page.locator('#thread .message', { hasText: 'a mistake' })
  await mistake.locator('details.delete summary').click()
  await Promise.all([page.waitForURL('**/refresh/room'), mistake.locator('button.danger').click()])
  t.equal(await page.locator('#thread .message.deleted .gone').textContent(), 'message deleted')
  t.equal(await page.locator('#thread').textContent().then((x) => x!.includes('a mistake')), false)
  // Sent twice from the same form (the back button's resubmit): one message.
  await page.fill('#message', 'twice')
  const form = await page.evaluate(() => Object.fromEntries(new FormData(document.getElementById('say') as HTMLFormElement) as unknown as Iterable<[string, string]>))
  t.ok(form.clientId, 'the form sends its clientId')
  const before = app.chatroom.lastId
  for (let i = 0; i < 2; i++) {
    await page.request.post(base + '/refresh/room', { form, headers: { accept: 'text/html' }, maxRedirects: 0 })
  }
  t.equal(app.chatroom.lastId, before + 1, 'posted once')
  await context.close()
})

t.test('the search page and a found message in its room, on desktop and phone', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  await app.chatroom.post('bob', 'Where do we deploy the release candidate? <img src=x onerror=alert(1)>')
  for (let i = 0; i < 30; i++) await app.chatroom.post('cy', `chatter ${i}`)
  await app.chatroom.post('dan', 'The release notes: https://example.com/notes, please read them before Friday. '.repeat(6))
  await app.chatroom.post('bob', 'release done')
  for (const [name, screen] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    const page = await enterRoom(browser, base, `${name}-reader`, 'refresh', screen)
    let alerted = false
    page.on('dialog', (d) => {
      alerted = true
      void d.dismiss()
    })
    if (name === 'phone') {
      // The top bar's links and buttons are 44 px touch targets.
      const sizes = await page.$$eval('.masthead a, .masthead button', (nodes) =>
        nodes.filter((n) => (n as HTMLElement).offsetParent !== null).map((n) => ({ what: n.textContent?.trim() || n.className, ...n.getBoundingClientRect().toJSON() })),
      )
      for (const s of sizes) t.ok(s.width >= 44 && s.height >= 44, `${name}: "${s.what}" is ${Math.round(s.width)}x${Math.round(s.height)}`)
      t.ok((await page.locator('.masthead').boundingBox())!.height < 60, 'the top bar stays one line')
    }
    await Promise.all([page.waitForURL('**/search'), page.click('.search-link')])
    await page.fill('#search-q', 'release')
    await Promise.all([page.waitForURL('**/search?**'), page.press('#search-q', 'Enter')])
    // The empty filters go with the form (until the server takes them as absent, the test fills them).
    t.match(page.url(), /from=%2Frefresh%2Froom/, `${name}: the search keeps the way back to the room`)
    if (page.url().includes('user=&')) {
      await page.goto(`${base}/search?q=release&from=${encodeURIComponent('/refresh/room')}`)
    }
    t.match(await page.textContent('.back'), /Back to the lobby/, `${name}: and offers it`)
    t.equal(await page.locator('.result').count(), 3, `${name}: three results`)
    t.equal(await page.locator('.result mark').first().textContent(), 'release')
    t.ok((await page.locator('.result-text').first().textContent())!.length < 330, `${name}: a long message is an excerpt`)
    t.equal(await page.locator('.result img').count(), 0, `${name}: a message's markup stays text`)
    t.same(await axeViolations(page), [], `${name}: axe, the search page`)
    await screenshot(page, `${name}-search`)
    // The oldest result: its page of the room, scrolled to it and marked.
    await Promise.all([page.waitForURL('**/refresh/room?**'), page.locator('.result').last().click()])
    const target = await page.evaluate(() => {
      const row = document.querySelector<HTMLElement>(location.hash)!
      const thread = document.getElementById('thread')!.getBoundingClientRect()
      const box = row.getBoundingClientRect()
      return { text: row.querySelector('.text')?.textContent, inView: box.top >= thread.top - 1 && box.bottom <= thread.bottom + 1, background: getComputedStyle(row).backgroundColor }
    })
    t.match(target.text, /^Where do we deploy/, `${name}: the message linked to`)
    t.ok(target.inView, `${name}: in view`)
    t.equal(target.background, 'rgb(255, 243, 196)', `${name}: and highlighted`)
    t.notOk(alerted, `${name}: no script ran from a message`)
    await screenshot(page, `${name}-search-found`)
    const empty = await page.goto(`${base}/search?q=nothing+like+this`)
    t.equal(empty?.status(), 200)
    t.equal(await page.textContent('.search-summary'), 'No messages found.')
    await page.context().close()
  }
})

t.test('phone: the refresh page with an edited and a deleted message', { skip }, async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await enterRoom(browser, base, 'pat', 'refresh', PHONE)
  await say(page, 'on my phone, with a tpyo')
  await say(page, 'this one goes')
  await app.chatroom.join('quinn')
  await app.chatroom.join('ray')
  await app.chatroom.post('quinn', 'hi pat')
  const typo = rowWith(page, 'with a tpyo')
  await typo.locator('details.edit summary').tap()
  await typo.locator('textarea[name=text]').fill('on my phone, with a typo fixed')
  await screenshot(page, 'phone-refresh-editing')
  await typo.locator('details.edit button[type=submit]').tap()
  await shows(page, 'on my phone, with a typo fixed')
  const goes = rowWith(page, 'this one goes')
  await goes.locator('details.delete summary').tap()
  await goes.locator('button.danger').tap()
  await page.waitForSelector('#thread .message.deleted')
  const box = await rowWith(page, 'typo fixed').locator('details.edit summary').boundingBox()
  t.ok(box && box.height >= 24, `the Edit button is tappable (${box?.width}x${box?.height})`)
  t.same(await axeViolations(page), [], 'axe: phone refresh page')
  await screenshot(page, 'phone-refresh-edited-deleted')
})
