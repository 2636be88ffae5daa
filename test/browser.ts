import { existsSync } from 'node:fs'
import { chromium, type Browser, type Page } from 'playwright-core'

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

/** Signs in through the welcome form, as a person would. */
export async function enterRoom(browser: Browser, base: string, user: string, transport: string): Promise<Page> {
  const context = await browser.newContext()
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

/** The thread as a reader sees it: one line per event. */
export function threadLines(page: Page): Promise<string[]> {
  return page.$$eval('#thread > div', (rows) => rows.map((r) => (r.textContent ?? '').replace(/\s+/g, ' ').trim()))
}
