// The message box: Enter sends, Shift+Enter starts a new line; it grows with its text, counts
// near the limit (characters as the server counts them) and says why a text cannot go as it is,
// never cutting it; it tells the room you are typing, at most every few seconds.
import { messageLength } from '../client/render.js'
import { maxLength, roomEl } from './context.js'
import { el } from './dom.js'
import { errorIsTooLong, showError, showTooLong } from './status.js'

const form = document.getElementById('say') as HTMLFormElement
const input = document.getElementById('message') as HTMLTextAreaElement
const countEl = document.getElementById('say-count')
const sendButton = form.querySelector<HTMLButtonElement>('button[type=submit]')

/** The message box itself (the page puts the focus back in it). */
export const messageBox = input

const numberFormat = new Intl.NumberFormat()

/** What the counter says for `n` characters (shown near and over the limit). */
export function counterText(n: number): string {
  if (n > maxLength) return `${numberFormat.format(n)} / ${numberFormat.format(maxLength)}: ${numberFormat.format(n - maxLength)} too many`
  return `${numberFormat.format(n)} / ${numberFormat.format(maxLength)}`
}

/** The message box grows with its text, up to a few lines (then it scrolls). */
function fitInput(): void {
  input.style.height = 'auto'
  input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`
}

/**
 * The counter under the box: shown near the limit, and over it the Send button is off and
 * Enter says why. Nothing is ever cut: a pasted text stays whole, for you to shorten.
 */
function countInput(): boolean {
  const n = messageLength(input.value)
  const over = n > maxLength
  if (countEl) {
    countEl.hidden = n <= maxLength * 0.9
    countEl.textContent = counterText(n)
    countEl.classList.toggle('over', over)
  }
  if (sendButton) sendButton.disabled = over
  input.toggleAttribute('aria-invalid', over)
  if (!over && errorIsTooLong()) showTooLong('')
  return over
}

/** Why a text cannot be sent as it is, or '' when it can. */
function tooLong(text: string): string {
  const n = messageLength(text)
  if (n <= maxLength) return ''
  return `This message is ${numberFormat.format(n - maxLength)} characters too long (at most ${numberFormat.format(maxLength)}). Shorten it to send it.`
}

/** Enter sends, Shift+Enter starts a new line; the box grows, and counts near the limit. */
function composer(submit: (text: string) => void): void {
  // The page counts instead: the browser's maxlength would cut a pasted text without a word.
  input.removeAttribute('maxlength')
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing) return
    e.preventDefault()
    form.requestSubmit()
  })
  input.addEventListener('input', () => {
    fitInput()
    countInput()
  })
  form.addEventListener('submit', (e) => {
    e.preventDefault()
    const text = input.value
    if (!text.trim()) return
    const why = tooLong(text)
    if (why) return showTooLong(why)
    submit(text)
  })
  fitInput()
  countInput()
}

/** The box is free for the next message (what was typed meanwhile stays). */
function sent(text: string): void {
  showError('')
  if (input.value === text) input.value = ''
  fitInput()
  countInput()
  input.focus()
}

/**
 * The refresh page: Enter (or Send) hands the text to `send`, which resolves with '' once the
 * server took it or with why not; the box is cleared only then, so a refused message stays for
 * another try.
 */
export function onSay(send: (text: string) => Promise<string>): void {
  let sending = false
  composer(async (text) => {
    if (sending) return
    sending = true
    form.setAttribute('aria-busy', 'true')
    const error = await send(text)
    sending = false
    form.removeAttribute('aria-busy')
    if (!error) return sent(text)
    showError(error)
    input.focus()
  })
}

/**
 * The live pages: a message goes into the outbox (`add`) at once, and the box is cleared and
 * free for the next one; the outbox sends it.
 */
export function onCompose(add: (text: string) => void): void {
  composer((text) => {
    add(text)
    sent(text)
  })
}

/**
 * Calls notify at most once per intervalMs while the user types in the message box; a
 * keystroke inside the window schedules one trailing call, so nobody types unseen.
 * Sending the message cancels a pending one.
 */
export function onTyping(notify: () => void, intervalMs = 2000): void {
  let last = 0
  let trailing: ReturnType<typeof setTimeout> | undefined
  const fire = () => {
    trailing = undefined
    if (!input.value.trim() || document.activeElement !== input) return
    last = Date.now()
    notify()
  }
  input.addEventListener('input', () => {
    if (!input.value.trim() || trailing) return
    const wait = last + intervalMs - Date.now()
    if (wait <= 0) fire()
    else trailing = setTimeout(fire, wait)
  })
  form.addEventListener('submit', () => {
    clearTimeout(trailing)
    trailing = undefined
  })
}

/**
 * Slow mode in the composer: a line over the hint says it (the room's moderators are not
 * slowed, so theirs says nothing). A message sent too soon waits in the outbox for its turn.
 * Called when the page starts, when the room shown changes, and when the room's rule does.
 */
export function showSlowMode(): void {
  const seconds = Number(roomEl.dataset.slow || 0)
  let line = document.getElementById('slow-mode')
  if (!seconds || roomEl.dataset.moderator === '1') return line?.remove()
  if (!line) {
    line = el('p', 'hint slow-mode')
    line.id = 'slow-mode'
    document.getElementById('say-hint')?.before(line)
  }
  line.textContent = `Slow mode: one message every ${seconds} s per person here.`
}
