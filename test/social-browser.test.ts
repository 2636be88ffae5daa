import sharp from 'sharp'
import t from 'tap'
import type { Page } from 'playwright-core'
import { axeViolations, DESKTOP, haveChromium, launchChromium, livePage, PHONE, rowOf, screenshot } from './browser.js'
import { buildTestApp, post, registerAccount, skipUnless } from './helpers.js'

// Issue 32 in Chromium, on a desktop (WebSocket) and a phone (long polling): formatting (a code
// block and bold typed in the message box), a reply that quotes what it answers (and tells its
// author as a mention does), reactions from the picker (its search too) and from a chip, and a
// thread beside the room with a reply kept in it; the other person sees each live. The page with
// the thread open passes axe.

const skip = skipUnless(haveChromium, 'Chromium is not installed')

/** A message's action, as the screen allows (hover on a desktop; "⋯" first on a touch screen). */
async function act(page: Page, text: string, action: string, phone: boolean) {
  const row = rowOf(page, text)
  if (phone) await row.locator('.actions .more').click()
  else await row.hover()
  await row.locator(`.actions .${action}`).click()
  return row
}

for (const [way, screen, label] of [['websocket', DESKTOP, 'desktop'], ['longpolling', PHONE, 'phone']] as const) {
  const phone = label === 'phone'
  t.test(`${way} (${label}): formatting, a reply, reactions and a thread, each seen live by the other person`, { skip }, async (t) => {
    const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '5', RATE_LIMIT_MESSAGES: '1000' })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const [ann, bob] = await Promise.all(['ann', 'bob'].map((name) => registerAccount(app, name)))
    await post(base, ann!, '/rooms', { name: 'dev' })
    await post(base, bob!, '/rooms/dev/join')
    const browser = await launchChromium()
    t.teardown(() => browser.close())
    const anns = await livePage(browser, base, ann!, `/${way}/rooms/dev`, screen)
    const bobs = await livePage(browser, base, bob!, `/${way}/rooms/dev`, screen)

    // Formatting: typed in the box (Shift+Enter for new lines), drawn on both pages.
    await bobs.fill('#message', 'The fix is **here**:\n```\nif (a < b) {\n  return b\n}\n```')
    await bobs.press('#message', 'Enter')
    const code = anns.locator('#thread .message pre code')
    await code.waitFor({ timeout: 10_000 })
    t.equal(await code.textContent(), 'if (a < b) {\n  return b\n}', 'the code block keeps its lines and indentation')
    t.equal(await anns.locator('#thread .message strong').first().textContent(), 'here', 'bold is bold')

    // A reply: it quotes what it answers, and tells bob as a mention does.
    await act(anns, 'The fix is', 'reply', phone)
    await anns.locator('#reply-bar:not([hidden])').waitFor()
    t.match(await anns.textContent('#reply-bar'), /Replying to bob: The fix is here:/)
    await anns.fill('#message', 'Looks right, `b` wins')
    await anns.press('#message', 'Enter')
    const reply = rowOf(bobs, 'Looks right')
    await reply.waitFor({ timeout: 10_000 })
    t.match(await reply.locator('.quote').textContent(), /^In reply to you The fix is here:$/, "the reply quotes bob's first line (to him: you)")
    t.ok(await reply.evaluate((r) => r.classList.contains('mention')), 'a reply to his message is marked as a mention for bob')
    t.equal(await reply.locator('code').textContent(), 'b', 'inline code in a reply')

    // A reaction from the picker, and one from its search.
    await act(anns, 'The fix is', 'react', phone)
    await anns.locator('.emoji-picker').waitFor()
    await screenshot(anns, `social-picker-${label}`)
    await anns.locator('.emoji-picker button[aria-label="👍"]').click()
    const chip = rowOf(bobs, 'The fix is').locator('.reaction', { hasText: '👍' })
    await chip.waitFor({ timeout: 10_000 })
    t.match(await chip.getAttribute('title'), /ann reacted with 👍/, 'who reacted, on hover')
    await chip.click()
    await rowOf(anns, 'The fix is').locator('.reaction[aria-pressed="true"] .count:text("2")').waitFor({ timeout: 10_000 })
    t.pass('bob adds his to the same chip; ann sees 2')
    await act(anns, 'Looks right', 'react', phone)
    await anns.fill('.emoji-picker input', 'rocket')
    await anns.locator('.emoji-picker button[aria-label^="rocket"]').click()
    await rowOf(bobs, 'Looks right').locator('.reaction', { hasText: '🚀' }).waitFor({ timeout: 10_000 })
    t.pass('a reaction found by searching the full list')

    if (!phone) {
      // The keyboard alone: the message takes the focus, Tab reaches React, Enter opens the picker, Enter picks.
      // As the arrow keys do it (a row takes the focus when moved to).
      await rowOf(anns, 'Looks right').evaluate((row: HTMLElement) => {
        row.tabIndex = -1
        row.focus()
      })
      let reached = false
      for (let i = 0; i < 8 && !reached; i++) {
        await anns.keyboard.press('Tab')
        reached = await anns.evaluate(() => document.activeElement?.classList.contains('react') === true)
        if (!reached) t.comment(await anns.evaluate(() => `${document.activeElement?.tagName}.${document.activeElement?.className}`))
      }
      t.ok(reached, 'React is a Tab stop of the focused message')
      await anns.keyboard.press('Enter')
      await anns.locator('.emoji-picker').waitFor()
      await anns.keyboard.press('ArrowRight')
      await anns.keyboard.press('Enter')
      await rowOf(bobs, 'Looks right').locator('.reaction', { hasText: '❤' }).waitFor({ timeout: 10_000 })
      t.pass('a reaction by the keyboard alone')
    }

    // A thread: bob answers in it (kept there); ann's page counts it and shows it when opened.
    await act(bobs, 'Looks right', 'in-thread', phone)
    await bobs.locator('#thread-panel:not([hidden]) .thread-log .message').first().waitFor()
    await bobs.fill('#thread-panel textarea', 'Merged it, thanks')
    await bobs.press('#thread-panel textarea', 'Enter')
    await bobs.locator('#thread-panel .thread-log .message .text:text("Merged it")').waitFor({ timeout: 10_000 })
    await screenshot(bobs, `social-thread-${label}`)
    const count = rowOf(anns, 'The fix is').locator('.replies')
    await anns.waitForFunction(() => /2 replies/.test(document.querySelector('#thread .message .replies')?.textContent ?? ''), undefined, { timeout: 10_000 })
    t.equal(await rowOf(anns, 'Merged it').count(), 0, "a reply kept in its thread is no line of the room's")
    await count.click()
    await anns.locator('#thread-panel .thread-log .text:text("Merged it")').waitFor({ timeout: 10_000 })
    t.pass("ann opens the thread and reads bob's reply")
    await screenshot(anns, `social-thread-open-${label}`)
    const violations = await axeViolations(anns)
    t.same(violations, [], 'axe finds nothing on the page with the thread open')
    await anns.locator('#thread-panel .close-thread').click()
    t.ok(await anns.locator('#thread-panel').isHidden(), 'Close shuts the thread')

    // The thread's own unread mark: a reply after ann last read it says "1 new" on its first message, until she opens it.
    await bobs.fill('#thread-panel textarea', 'One more thing')
    await bobs.press('#thread-panel textarea', 'Enter')
    await anns.waitForFunction(() => document.querySelector('#thread .message .replies .thread-unread')?.textContent === '1 new', undefined, { timeout: 10_000 })
    t.match(await count.textContent(), /^3 replies 1 new/, 'the thread says what is new in it')
    await count.click()
    await anns.locator('#thread-panel .thread-log .text:text("One more thing")').waitFor({ timeout: 10_000 })
    t.equal(await count.locator('.thread-unread').count(), 0, 'read once opened')
    await anns.locator('#thread-panel .close-thread').click()

    // A picture pasted into the message box: sent, shown at its size to both.
    await bobs.locator('#thread-panel .close-thread').click()
    const png = await sharp({ create: { width: 640, height: 400, channels: 3, background: '#c2410c' } }).png().toBuffer()
    await anns.evaluate(async (base64) => {
      const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0))
      const data = new DataTransfer()
      data.items.add(new File([bytes], 'image.png', { type: 'image/png' }))
      document.getElementById('message')!.dispatchEvent(new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }))
    }, png.toString('base64'))
    const picture = bobs.locator('#thread .message .file.image img')
    await picture.waitFor({ timeout: 15_000 })
    t.same([await picture.getAttribute('width'), await picture.getAttribute('height')], ['360', '225'], 'the picture is drawn at its thumbnail size, known before it loads')
    await bobs.waitForFunction(() => (document.querySelector('#thread .message .file.image img') as HTMLImageElement | null)?.naturalWidth === 360, undefined, { timeout: 10_000 })
    t.pass("bob's page loads its thumbnail")
    t.match(await picture.getAttribute('alt'), /^pasted .*\.png$/, 'a pasted picture gets a name')
    await screenshot(bobs, `social-picture-${label}`)
    await screenshot(anns, `social-room-${label}`)
  })
}
