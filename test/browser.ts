import { existsSync, mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const haveChromium = existsSync(CHROMIUM)

/** Debian's chromium, headless, with nothing reaching out to the network. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
}

/** The two screens the pages are made for. */
export const DESKTOP: BrowserContextOptions = { viewport: { width: 1280, height: 800 } }
export const PHONE: BrowserContextOptions = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }

/** Signs in through the welcome form, as a person would; `init` runs in every page before its scripts. */
export async function enterRoom(browser: Browser, base: string, user: string, transport: string, screen: BrowserContextOptions = DESKTOP, init?: string): Promise<Page> {
  const context = await browser.newContext(screen)
  if (init) await context.addInitScript(init)
  const page = await context.newPage()
  page.on('pageerror', (error) => {
    throw error
  })
  await page.goto(base + '/')
  await page.fill('#user', user)
  await page.check(`input[name=transport][value=${transport}]`)
  await Promise.all([page.waitForURL(`**/${transport}/room`), page.click('button[type=submit]')])
  return page
}

/** A live page opened with a session already made (its cookie), once it says it is live. */
export async function livePage(browser: Browser, base: string, cookie: string, url: string, screen: BrowserContextOptions): Promise<Page> {
  const context = await browser.newContext(screen)
  await context.addCookies([{ name: 'chat_session', value: cookie.replace(/^chat_session=/, ''), url: base }])
  const page = await context.newPage()
  await page.goto(`${base}${url}`)
  await page.waitForFunction(() => document.getElementById('way')?.dataset.state === 'live', undefined, { timeout: 15_000 })
  return page
}

/** A row of the thread by its text. */
export const rowOf = (page: Page, text: string) => page.locator('#thread > .message', { has: page.locator('.text', { hasText: text }) })

/** The thread as a reader sees it: one line per event. */
export function threadLines(page: Page): Promise<string[]> {
  // What a reader reads: a row's text without its controls (the refresh page's Edit and Delete forms).
  return page.$$eval('#thread > div', (rows) =>
    rows.map((r) => {
      const copy = r.cloneNode(true) as HTMLElement
      for (const control of copy.querySelectorAll('form, details, button, template')) control.remove()
      return (copy.textContent ?? '').replace(/\s+/g, ' ').trim()
    }),
  )
}

/** Where the browser tests leave screenshots to look at (git-ignored). */
export const SCREENSHOTS = fileURLToPath(new URL('./screenshots/', import.meta.url))

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: `${SCREENSHOTS}${name}.png` })
}

const axeSource = createRequire(import.meta.url)('axe-core').source as string

/** axe-core's findings on the page as it is now (WCAG 2.x A and AA rules, and best practices). */
export async function axeViolations(page: Page): Promise<{ id: string; impact: string | null; nodes: string[] }[]> {
  // Evaluated through the debugging protocol, so the page's Content-Security-Policy does not apply.
  await page.evaluate(axeSource)
  return page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[] }> } }).axe
    const result = await axe.run(document, { resultTypes: ['violations'] })
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }))
  })
}
