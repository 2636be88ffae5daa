import t from 'tap'
import type { Page } from 'playwright-core'
import { DESKTOP, haveChromium, launchChromium, livePage, PHONE, rowOf, screenshot } from './browser.js'
import { buildTestApp, registerAccount, skipUnless, post } from './helpers.js'

// Moderation on the live page, in Chromium, on a desktop (WebSocket) and a phone (long polling):
// a moderator deletes a message, mutes and bans its author from the message's "⋯" menu, each
// asked once in place with a reason; the muted person's sends are refused saying why; the banned
// person's page says who banned them and why at once, takes no more messages, and a reload says
// it again. On the desktop a member reports a message with the keyboard alone.

const skip = skipUnless(haveChromium, 'Chromium is not installed')

/** Opens a message's "⋯" and picks an action, as the screen allows (a touch screen has "⋯" shown; a desktop shows it on hover). */
async function pick(page: Page, text: string, action: string, phone: boolean) {
  const row = rowOf(page, text)
  if (!phone) await row.hover()
  await row.locator('.actions .more').click()
  await row.locator(`.actions .${action}`).click()
  await row.locator('.confirm-moderation input').waitFor()
  return row
}

for (const [way, screen, label] of [['websocket', DESKTOP, 'desktop'], ['longpolling', PHONE, 'phone']] as const) {
  const phone = label === 'phone'
  t.test(`${way} (${label}): a moderator deletes, mutes and bans from a message's menu; the banned person's page says why`, { skip }, async (t) => {
    const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '5', RATE_LIMIT_MESSAGES: '1000' })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const [ann, bob, cat] = await Promise.all(['ann', 'bob', 'cat'].map((name) => registerAccount(app, name)))
    await post(base, ann!, '/rooms', { name: 'dev' })
    for (const cookie of [bob!, cat!]) await post(base, cookie, '/rooms/dev/join')
    for (const text of ['buy watches', 'cheap pills', 'click here']) await post(base, cat!, '/longpolling/rooms/dev/messages', { text })
    await post(base, bob!, '/longpolling/rooms/dev/messages', { text: 'a fair point' })
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const anns = await livePage(browser, base, ann!, `/${way}/rooms/dev`, screen)
    const cats = await livePage(browser, base, cat!, `/${way}/rooms/dev`, screen)
    await anns.waitForSelector('#thread .message .text:text("a fair point")')
    t.ok(await anns.isVisible('a[href="/rooms/dev/moderate"]') || phone, 'the moderator has the moderation page in the sidebar')

    // Delete, with a reason.
    const spam = await pick(anns, 'buy watches', 'mod-delete', phone)
    await screenshot(anns, `moderation-ask-${label}`)
    await spam.locator('.confirm-moderation input').fill('spam')
    await spam.locator('.confirm-moderation button[type=submit]').click()
    await cats.waitForFunction(() => [...document.querySelectorAll('#thread > .message.deleted')].length === 1, undefined, { timeout: 10_000 })
    t.pass("the message is deleted on the author's page too")
    await anns.waitForSelector('#thread .notice.moderation:has-text("deleted a message by cat: spam")')
    t.pass('a line says who deleted whose message and why')

    // Mute for 10 minutes: her next message is refused, saying why.
    const pills = await pick(anns, 'cheap pills', 'mute', phone)
    await pills.locator('.confirm-moderation input').fill('flooding')
    await pills.locator('.confirm-moderation select').selectOption('10')
    await pills.locator('.confirm-moderation button[type=submit]').click()
    await anns.waitForSelector('#thread .notice.moderation:has-text("muted cat for 10 minutes: flooding")')
    await cats.fill('#message', 'let me talk')
    await cats.press('#message', 'Enter')
    await cats.waitForFunction(() => /You are muted in this room until .*: flooding/.test(document.body.innerText), undefined, { timeout: 10_000 })
    t.pass("her page says she is muted, until when and why")

    // Ban for good: her page says so at once and takes no more.
    const click = await pick(anns, 'click here', 'ban', phone)
    await click.locator('.confirm-moderation input').fill('spam bot')
    await click.locator('.confirm-moderation select').selectOption('')
    await click.locator('.confirm-moderation button[type=submit]').click()
    await cats.waitForSelector('#status.removed', { timeout: 10_000 })
    t.match(await cats.textContent('#flash'), /^ann banned you from this room: spam bot$/, 'her page says who banned her and why')
    t.match(await cats.textContent('#status'), /You are no longer in this room/, 'and that she is out')
    t.equal(await cats.isDisabled('#message'), true, 'the message box takes no more')
    await screenshot(cats, `moderation-banned-${label}`)
    await screenshot(anns, `moderation-moderator-${label}`)
    await cats.reload()
    t.match(await cats.textContent('body'), /ann banned you from this room: spam bot/, 'a reload says it again')
    await screenshot(cats, `moderation-banned-reload-${label}`)

    if (!phone) {
      // bob reports a message with the keyboard alone: the row, Tab to "⋯", Enter, Tab to Report, Enter, a reason, Enter.
      await post(base, ann!, '/longpolling/rooms/dev/messages', { text: 'rules: be kind' })
      const bobs = await livePage(browser, base, bob!, `/${way}/rooms/dev`, screen)
      await bobs.waitForSelector('#thread .message .text:text("rules: be kind")')
      await bobs.focus('#thread')
      await bobs.keyboard.press('ArrowUp')
      t.equal(await bobs.evaluate(() => document.activeElement?.querySelector('.text')?.textContent), 'rules: be kind', 'Up from the thread: its last message')
      await bobs.keyboard.press('Tab')
      t.equal(await bobs.evaluate(() => document.activeElement?.classList.contains('more')), true, 'Tab from the row reaches "⋯"')
      await bobs.keyboard.press('Enter')
      await bobs.keyboard.press('Tab')
      t.equal(await bobs.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Report', 'then Report')
      await bobs.keyboard.press('Enter')
      await bobs.keyboard.type('not kind')
      await bobs.keyboard.press('Enter')
      await bobs.waitForSelector('.confirm-moderation .done:text("Reported")')
      const listed = (await (await fetch(`${base}/rooms/dev/reports`, { headers: { cookie: ann! } })).json()) as { reports: { user: string; reports: { user: string; reason: string }[] }[] }
      t.match(listed.reports, [{ user: 'ann', reports: [{ user: 'bob', reason: 'not kind' }] }], 'the report reached the moderators')
      const moderation = await anns.context().newPage()
      await moderation.goto(`${base}/rooms/dev/moderate`)
      await screenshot(moderation, 'moderation-page-desktop')
    }
  })
}
