import t from 'tap'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'
import { buildTestApp, skipUnless } from './helpers.js'
import { axeViolations, DESKTOP, haveChromium, launchChromium, PHONE, screenshot } from './browser.js'

// One account on two devices, as a person uses it: registered in one browser, signed in with
// the password on a phone, one person in the room; then signed out everywhere else from the
// phone's account page, and the first browser is back on the welcome page.

const skip = skipUnless(haveChromium, 'chromium is not installed (apt-get install chromium)')

async function newPage(browser: Browser, screen: BrowserContextOptions): Promise<Page> {
  const context = await browser.newContext(screen)
  const page = await context.newPage()
  page.on('pageerror', (error) => {
    throw error
  })
  return page
}

const listed = (page: Page, name: string) => page.waitForFunction((n) => Boolean(document.querySelector(`#users li[data-name="${n}"]`)), name, { timeout: 20_000 })

t.test('an account on a laptop and a phone: one person in the room, sessions listed, "sign out everywhere else" signs the laptop out', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())

  const laptop = await newPage(browser, DESKTOP)
  await laptop.goto(base + '/')
  await laptop.fill('#register-name', 'alice')
  await laptop.fill('#register-password', 'correct horse battery')
  await Promise.all([laptop.waitForURL('**/auto/room'), laptop.click('form.register button[type=submit]')])
  await listed(laptop, 'alice')
  t.equal(await laptop.textContent('.whoami'), 'alice', 'registered and in the room')

  // Someone else cannot come in as alice, or as a look-alike.
  const stranger = await newPage(browser, DESKTOP)
  await stranger.goto(base + '/')
  await stranger.fill('#user', 'Alice.')
  await Promise.all([stranger.waitForURL(base + '/'), stranger.click('form.signin:not(.register) button[type=submit]')])
  t.match(await stranger.textContent('.flash.error'), /registered name/, 'a guest is told the name is registered')

  const phone = await newPage(browser, PHONE)
  await phone.goto(base + '/')
  await phone.fill('#user', 'alice')
  await phone.fill('#password', 'correct horse battery')
  await phone.check('input[name=transport][value=websocket]')
  await Promise.all([phone.waitForURL('**/websocket/room'), phone.click('form.signin:not(.register) button[type=submit]')])
  await phone.fill('#message', 'from the phone')
  await phone.press('#message', 'Enter')
  await laptop.waitForFunction(() => Array.from(document.querySelectorAll('#thread .message .text')).some((n) => n.textContent === 'from the phone'), undefined, { timeout: 20_000 })
  const entries = await laptop.$$eval('#users li', (items) => items.map((li) => li.getAttribute('data-name')))
  t.same(entries, ['alice'], 'one entry in the online list for two devices')
  t.notOk(await laptop.$('#thread .message .guest'), 'an account\'s message has no guest mark')

  await phone.goto(base + '/account')
  t.equal(await phone.locator('.sessions li').count(), 2, 'the phone lists two sessions')
  t.match(await phone.textContent('.sessions'), /this one/)
  t.same(await axeViolations(phone), [], 'the account page passes axe on the phone')
  await screenshot(phone, 'phone-account')
  await laptop.goto(base + '/account')
  await screenshot(laptop, 'desktop-account')
  await laptop.goto(base + '/auto/room')
  await listed(laptop, 'alice')

  await Promise.all([phone.waitForURL('**/account?done=others'), phone.click('text=Sign out everywhere else')])
  t.equal(await phone.locator('.sessions li').count(), 1, 'one session left: this one')
  await laptop.waitForURL(base + '/**', { timeout: 20_000 })
  await laptop.waitForFunction(() => !location.pathname.startsWith('/auto'), undefined, { timeout: 20_000 })
  t.notMatch(laptop.url(), /\/auto\/room/, `the laptop left the room by itself (now at ${new URL(laptop.url()).pathname})`)
})

t.test('the welcome page with its account form, on both screens', { skip }, async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  for (const [name, screen] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    const page = await newPage(browser, screen)
    await page.goto(base + '/')
    t.same(await axeViolations(page), [], `${name}: axe finds nothing on the welcome page`)
    await screenshot(page, `${name}-welcome-accounts`)
  }
})
