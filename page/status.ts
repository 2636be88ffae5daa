// What the page says about itself: the connection in the top bar ("Live · WebSocket",
// "Reconnecting in 3 s"), the status line under it, the error line over the message box; and the
// page going away (a sign-out, closing the tab, another site) as against following a link of its
// own, which is no leaving.
import { me, roomEl, tab } from './context.js'
import { el, keepingScroll } from './dom.js'

const statusEl = document.getElementById('status') as HTMLElement
const flashEl = document.getElementById('flash') as HTMLElement

let leaving = false
/** Whether this page is on its way out (the server closing our connection is expected). */
export const isLeaving = (): boolean => leaving
for (const out of document.querySelectorAll('form.signout')) out.addEventListener('submit', () => (leaving = true))
// Following a link of this site (search, the account page, another room) is not leaving: no
// goodbye is sent, so the presence grace covers a quick return (no leave and join lines). A
// link that did not navigate (opened in another tab) stops counting after a few seconds.
let following = 0
const follow = () => (following = Date.now())
document.addEventListener('click', (e) => {
  const link = e.target instanceof Element ? e.target.closest('a[href]') : null
  const samePage = link instanceof HTMLAnchorElement && link.pathname === location.pathname && link.search === location.search
  if (link instanceof HTMLAnchorElement && link.origin === location.origin && !link.target && !samePage) follow()
})
document.addEventListener('submit', (e) => {
  if (!(e.target instanceof HTMLFormElement) || e.defaultPrevented) return
  if (e.target.method === 'get') follow()
  // A form the page's script did not take (join or leave the room, sign out) loads the page it
  // answers with: the stream ending meanwhile (a leave) is that, not something to go elsewhere for.
  else leaving = true
})
addEventListener('pagehide', () => {
  leaving = true
  if (tab && Date.now() - following > 3000) navigator.sendBeacon('/room/leave', new URLSearchParams({ tab }))
})
// Back from the browser's page cache: this page left when it was hidden, so it starts anew.
addEventListener('pageshow', (e) => {
  if (e.persisted) location.reload()
})

/** Set once the page is on its way back to the welcome page: a second path that hears the refusal does not navigate again (cutting the first). */
let signingOut = false

/** The session is gone (signed out elsewhere, expired): back to the welcome page, the name kept. */
export function signedOut(): void {
  if (leaving || signingOut) return
  signingOut = true
  location.assign(`/?signin=expired&name=${encodeURIComponent(me)}`)
}

/**
 * A moderator put this person out of the room shown (kicked or banned): the error line keeps
 * their words (who, until when, why), the status line says it plainly with a way to the lobby,
 * and the message box takes no more (the server would refuse it).
 */
export function removed(): void {
  isRemoved = true
  const lobby = el('a', '', 'Go to the lobby')
  lobby.href = `/${roomEl.dataset.transport || 'auto'}/room`
  statusEl.replaceChildren('You are no longer in this room. ', lobby)
  statusEl.classList.add('removed')
  composerOpen(false)
}

/** The message box and its Send: shut (saying why in its placeholder) or open again. */
function composerOpen(open: boolean): void {
  const box = document.getElementById('message') as HTMLTextAreaElement | null
  if (box) {
    box.disabled = !open
    box.placeholder = open ? 'Write a message' : 'You can no longer write here.'
  }
  const send = document.querySelector<HTMLButtonElement>('#say button[type=submit]')
  if (send) send.disabled = !open
}

let isRemoved = false

/** Another room is shown (the app switched in place): what removed() said and shut is undone. */
export function notRemoved(): void {
  if (!isRemoved) return
  isRemoved = false
  statusEl.classList.remove('removed')
  statusEl.textContent = ''
  showError('')
  composerOpen(true)
}

/** Someone else present now holds this user's name: back to the welcome page to pick another. */
export function nameTaken(): void {
  if (!leaving) location.assign(`/?signin=taken&name=${encodeURIComponent(me)}`)
}

let countdown: ReturnType<typeof setInterval> | undefined

/** The status line; with `untilMs`, `{s}` in the text counts down the seconds to it. */
export function setStatus(text: string, untilMs?: number): void {
  clearInterval(countdown)
  countdown = undefined
  if (untilMs === undefined) {
    statusEl.textContent = text
    return
  }
  const show = () => {
    const left = Math.max(0, Math.ceil((untilMs - Date.now()) / 1000))
    statusEl.textContent = text.replace('{s}', left === 0 ? 'now' : `in ${left} s`)
    if (left === 0) {
      clearInterval(countdown)
      countdown = undefined
    }
  }
  show()
  countdown = setInterval(show, 1000)
}

const wayEl = document.getElementById('way')
let wayTimer: ReturnType<typeof setInterval> | undefined
let wasLive = false

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline'

/**
 * The connection as it is, in the top bar: "Connecting · WebSocket…", "Live · WebSocket",
 * "Reconnecting in 3 s · WebSocket" (counting down to the next try), "Offline · WebSocket".
 * `#way` carries the state (data-state) and since when (data-since, ms), and the status line
 * says what happens to messages meanwhile.
 */
export function showConnection(state: ConnectionState, way: string, { until, detail, retryNow }: { until?: number | undefined; detail?: string | undefined; retryNow?: (() => void) | undefined } = {}): void {
  clearInterval(wayTimer)
  wayTimer = undefined
  const where = roomEl.dataset.where || ''
  const text = () => {
    if (state === 'live') return `Live · ${way}${detail ? ` ${detail}` : ''}`
    if (state === 'offline') return `Offline · ${way}`
    if (state === 'connecting') return `Connecting · ${way}…`
    const left = until === undefined ? 0 : Math.ceil((until - Date.now()) / 1000)
    return left > 0 ? `Reconnecting in ${left} s · ${way}` : `Reconnecting · ${way}…`
  }
  if (wayEl) {
    if (wayEl.dataset.state !== state) wayEl.dataset.since = String(Date.now())
    wayEl.dataset.state = state
    wayEl.textContent = where + text()
    if (state === 'reconnecting' && until !== undefined) {
      wayTimer = setInterval(() => {
        wayEl.textContent = where + text()
        if (until <= Date.now()) {
          clearInterval(wayTimer)
          wayTimer = undefined
        }
      }, 250)
    }
  }
  if (state === 'live') {
    wasLive = true
    setStatus('')
    return
  }
  if (!wasLive) return
  const words =
    state === 'offline'
      ? 'You are offline. What you write is kept and sent by itself once you are back.'
      : 'Not connected. What you write is kept and sent by itself once reconnected.'
  setStatus(words)
  if (retryNow && state === 'reconnecting') {
    const button = el('button', 'link retry-now', 'Retry now')
    button.type = 'button'
    button.addEventListener('click', retryNow)
    statusEl.append(' ', button)
  }
}

/** The error line over the message box (it takes room from the thread, which keeps its place). */
export function showError(text: string): void {
  if (flashEl.textContent === text && flashEl.hidden === !text) return
  keepingScroll(() => {
    flashEl.textContent = text
    flashEl.hidden = !text
  })
}

/** Whether the error line says a message is too long (said by the composer, cleared once it is not). */
export function errorIsTooLong(): boolean {
  return flashEl.dataset.tooLong === '1'
}

/** The error line says the message is too long (`why`), or no longer. */
export function showTooLong(why: string): void {
  if (why) flashEl.dataset.tooLong = '1'
  else delete flashEl.dataset.tooLong
  showError(why)
}
