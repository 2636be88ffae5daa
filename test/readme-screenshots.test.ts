import { mkdirSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { BrowserContextOptions, Page } from 'playwright-core'
import { buildTestApp, registerAccount, skipUnless } from './helpers.js'
import { DESKTOP, haveChromium, launchChromium, PHONE, SCREENSHOTS } from './browser.js'

/**
 * The README's pictures of the room, at desktop and phone size. A normal run writes them to
 * test/screenshots/ (git-ignored), so the tree stays clean; UPDATE_DOCS_IMAGES=1 writes the
 * committed ones in docs/images/.
 */
const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')
const DOCS_IMAGES = fileURLToPath(new URL('../docs/images/', import.meta.url))
const target = process.env.UPDATE_DOCS_IMAGES === '1' ? DOCS_IMAGES : SCREENSHOTS
/** registerAccount's. */
const PASSWORD = 'a long enough password'

t.test('the room at desktop and phone size, for the README', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })

  // Three people with accounts (no guest marks) come in over HTTP, one after another: their
  // join lines fold into one.
  const people: Record<string, string> = {}
  for (const name of ['bob', 'cat', 'dee']) {
    people[name] = await registerAccount(app, name)
    await fetch(`${base}/longpolling/room`, { headers: { cookie: people[name]! } })
  }
  const say = async (name: string, text: string) => {
    const res = await fetch(`${base}/longpolling/room/messages`, { method: 'POST', headers: { cookie: people[name]!, 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
    t.equal(res.status, 201, `${name}: ${text}`)
    return ((await res.json()) as { id: number }).id
  }
  await say('bob', 'Morning! The notes from yesterday are at https://example.com/notes/standup')
  await say('bob', 'Two open points: the migration and the release checklist.')
  await say('cat', 'The migration ran overnight without a hitch.')
  const deploy = await say('dee', 'Deploy finised, all green.')
  await say('cat', '@ann could you look over the release checklist before lunch?')
  const edited = await fetch(`${base}/room/messages/${deploy}/edit`, { method: 'POST', headers: { cookie: people.dee!, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Deploy finished, all green.' }) })
  t.equal(edited.status, 201, 'dee fixes a typo')
  await say('bob', 'Nice work. Lunch at noon, the usual place?')

  // Whenever the pictures are made, the clock in them reads mid-morning: a whole-hour time zone
  // (Etc/GMT-N is UTC+N) that puts the current hour at 10.
  const offset = ((10 - new Date().getUTCHours() + 36) % 24) - 12
  const timezoneId = offset === 0 ? 'UTC' : `Etc/GMT${offset > 0 ? '-' : '+'}${Math.abs(offset)}`
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const annIn = async (screen: BrowserContextOptions): Promise<Page> => {
    const context = await browser.newContext({ ...screen, colorScheme: 'light', timezoneId })
    const page = await context.newPage()
    page.on('pageerror', (error) => {
      throw error
    })
    await page.goto(`${base}/`)
    await page.fill('#user', 'ann')
    await page.fill('#password', PASSWORD)
    await page.check('input[name=transport][value=auto]')
    await Promise.all([page.waitForURL('**/auto/room'), page.click('button[type=submit]')])
    await page.waitForFunction(() => /Live/.test(document.querySelector('header')?.textContent ?? ''), undefined, { timeout: 20_000 })
    return page
  }

  // ann signs in with her password on the automatic page, at each screen size.
  await registerAccount(app, 'ann')
  const desktop = await annIn(DESKTOP)
  await desktop.fill('#message', 'On it, I will go through it now.')
  await desktop.press('#message', 'Enter')
  await desktop.waitForFunction(() => Array.from(document.querySelectorAll('#thread .message.mine .text')).some((n) => n.textContent === 'On it, I will go through it now.'), undefined, { timeout: 20_000 })

  // 1.5 pixels per point: sharp at the size the README shows it, and a small file.
  const phone = await annIn({ ...PHONE, deviceScaleFactor: 1.5 })
  for (const [name, page] of [['desktop', desktop], ['phone', phone]] as const) {
    const seen = await page.evaluate(() => ({
      fold: document.querySelector('#thread .fold')?.textContent ?? '',
      edited: document.querySelectorAll('#thread .edited').length,
      mention: document.querySelectorAll('#thread .message.mention').length,
      link: document.querySelectorAll('#thread .text a').length,
    }))
    t.match(seen.fold, /bob, cat and dee joined/, `${name}: the three joins are one line`)
    t.equal(seen.edited, 1, `${name}: dee's message says it was edited`)
    t.equal(seen.mention, 1, `${name}: cat's mention of ann stands out`)
    t.equal(seen.link, 1, `${name}: the link is a link`)
    // No caret or focus ring in the picture.
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur())
    mkdirSync(target, { recursive: true })
    const file = `${target}room-${name}.png`
    await page.screenshot({ path: file })
    const size = statSync(file).size
    t.ok(size < 150_000, `${name}: the picture is ${Math.round(size / 1000)} KB, well under 200 KB`)
  }
})
