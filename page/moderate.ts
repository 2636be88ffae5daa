// What one does about someone else's message, in place: anyone reports it (with a reason); a
// room's moderator also deletes it, or mutes, removes (kick) or bans its author, each asked once
// with a reason (and for how long), then done by the room's moderation routes. Reached from the
// message's actions: hover or focus on a desktop, "⋯" on a touch screen, Tab from the focused row.
import { roomEl, roomName } from './context.js'
import { askInRow, el, keepingScroll } from './dom.js'

export type MessageAction = 'report' | 'delete' | 'mute' | 'kick' | 'ban'

/** Whether the person looking moderates the room shown (the server's word on the page; it checks again). */
export const moderating = (): boolean => roomEl.dataset.moderator === '1'

const base = (): string => (roomName === 'lobby' ? '/room' : `/rooms/${encodeURIComponent(roomName)}`)

const asked: Record<MessageAction, { question: (user: string) => string; confirm: string; done: string; long?: true }> = {
  report: { question: () => 'Report this message to the moderators?', confirm: 'Report', done: 'Reported: the moderators will look at it.' },
  delete: { question: (user) => `Delete ${user}'s message for everyone?`, confirm: 'Delete', done: 'Deleted.' },
  mute: { question: (user) => `Mute ${user}? They can read, not write.`, confirm: 'Mute', done: 'Muted.', long: true },
  kick: { question: (user) => `Remove ${user} from this room? They may come back.`, confirm: 'Remove', done: 'Removed.' },
  ban: { question: (user) => `Ban ${user} from this room?`, confirm: 'Ban', done: 'Banned.', long: true },
}

/** How long a mute or a ban lasts: the choices, in minutes ('' for good). */
const LENGTHS: [string, string][] = [
  ['10', '10 minutes'],
  ['60', '1 hour'],
  ['1440', '1 day'],
  ['10080', '1 week'],
  ['', 'for good'],
]

/** Asks in the row, once, then does it; Escape or Cancel lets it be. */
export function askInPlace(row: HTMLElement, action: MessageAction): void {
  const body = row.querySelector('.body')
  if (!body || row.querySelector('.confirm-moderation') || row.classList.contains('deleted')) return
  const id = Number(row.dataset.id)
  const user = row.dataset.user ?? ''
  const { question, confirm, done, long } = asked[action]
  const ask = el('form', 'confirm-moderation')
  ask.setAttribute('role', 'group')
  ask.setAttribute('aria-label', question(user))
  const reason = el('input')
  reason.type = 'text'
  reason.maxLength = 200
  reason.placeholder = action === 'report' ? 'Why? (optional)' : 'Reason (optional)'
  reason.setAttribute('aria-label', 'Reason')
  const parts: (Node | string)[] = [el('span', 'question', question(user)), reason]
  let length: HTMLSelectElement | undefined
  if (long) {
    length = el('select')
    length.setAttribute('aria-label', 'For how long')
    for (const [value, label] of LENGTHS) {
      const option = el('option', '', label)
      option.value = value
      length.append(option)
    }
    parts.push(length)
  }
  const yes = el('button', action === 'report' ? 'save' : 'danger', confirm)
  yes.type = 'submit'
  const no = el('button', 'link', 'Cancel')
  no.type = 'button'
  const said = el('span', 'edit-error')
  said.setAttribute('role', 'alert')
  ask.append(...parts, yes, no, said)
  askInRow(row, body, ask, no, reason)
  ask.addEventListener('submit', async (e) => {
    e.preventDefault()
    yes.disabled = true
    const url = action === 'report' ? `${base()}/messages/${id}/report` : `${base()}/moderation`
    const payload: Record<string, string> = action === 'report' ? { reason: reason.value } : { action, reason: reason.value, ...(action === 'delete' ? { id: String(id) } : { user }) }
    if (length && length.value !== '') payload.minutes = length.value
    let message: string
    try {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json' }, body: JSON.stringify(payload) })
      const answer = (await res.json().catch(() => ({}))) as { message?: string }
      message = res.ok ? done : (answer.message ?? `That did not work (${res.status}).`)
      if (res.ok) {
        // Said in the row for a moment; the room's own events show the rest (the deletion, the line).
        keepingScroll(() => ask.replaceChildren(el('span', 'done', message)))
        ask.setAttribute('role', 'status')
        setTimeout(() => keepingScroll(() => ask.remove()), 4000)
        return
      }
    } catch {
      message = 'The server did not answer: try again.'
    }
    yes.disabled = false
    said.textContent = message
  })
}
