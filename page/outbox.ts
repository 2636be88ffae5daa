// The outbox as the live pages show it: what you wrote and the server has not confirmed yet, at
// the end of the thread, each row saying where it stands (sending, waiting for the connection,
// slowed down with a countdown, or refused with Retry and Discard). The client library's outbox
// (client/outbox.ts) does the work: client ids, localStorage, sending in order and exactly once
// over whatever way is live; this file draws what it says.
import type { EntryStatus, Outbox, OutboxEntry } from '../client/outbox.js'
import { me } from './context.js'
import { avatarEl, el, textWithLinks } from './dom.js'

/** What the outbox's rows need of the page's room: its thread (where they go), who is in it (your avatar), its message box. */
export interface OutboxHost {
  thread: { outboxEl: HTMLElement; lastId: number; keepingScroll(change: () => void, follow?: boolean): unknown }
  roster: { users: Map<string, string | undefined> }
  composer?: { focus(): void } | undefined
}

export class OutboxView {
  private readonly container: HTMLElement
  private readonly rows = new Map<string, HTMLElement>()
  /** Confirmed, with the event's id: the row stays until the thread shows that event. */
  private readonly confirmed = new Map<string, number>()
  /** The row counting down to its resend after a 429, and to when. */
  private slowId: string | null = null
  private slowUntil = 0
  private countdown: ReturnType<typeof setInterval> | undefined = undefined

  /** `room` is the page's room (its thread shows the rows); `outbox` the library room's outbox. */
  constructor(
    private readonly room: OutboxHost,
    private readonly outbox: Outbox,
  ) {
    this.container = room.thread.outboxEl
    for (const entry of outbox.entries) this.showRow(entry)
    outbox.on('add', (entry) => this.showRow(entry))
    outbox.on('update', (entry, status) => this.label(entry, status))
    outbox.on('sent', (entry, id) => this.confirm(entry.clientId, id))
    outbox.on('drop', (clientId) => this.dropRow(clientId))
    // Another tab of this room sent (or discarded) some: follow it.
    addEventListener('storage', (e) => {
      if (e.key === outbox.key) outbox.sync()
    })
  }

  /** The server has it: shown until the thread has its event (it may come before or after the answer). */
  confirm(clientId: string, id: number): void {
    const row = this.rows.get(clientId)
    if (!row) return
    if (this.slowId === clientId) this.stopCountdown()
    if (id > this.room.thread.lastId) {
      this.confirmed.set(clientId, id)
      row.classList.remove('pending', 'failed')
      row.classList.add('sent')
      row.querySelector('.outbox-state')?.replaceChildren()
    } else this.dropRow(clientId)
  }

  /** Events shown in the thread: a confirmed row goes once the thread is past its id. */
  seen(_events: unknown, lastId: number): void {
    for (const [clientId, id] of this.confirmed) if (id <= lastId) this.dropRow(clientId)
  }

  dropRow(clientId: string): void {
    if (this.slowId === clientId) this.stopCountdown()
    this.confirmed.delete(clientId)
    const row = this.rows.get(clientId)
    this.rows.delete(clientId)
    row?.remove()
  }

  showRow(entry: OutboxEntry): void {
    if (this.rows.has(entry.clientId)) return
    const row = el('div', 'outgoing mine pending')
    row.dataset.clientId = entry.clientId
    const avatar = avatarEl(this.room.roster.users.get(me), 32)
    if (avatar) row.append(avatar)
    const meta = el('div', 'meta')
    meta.append(el('span', 'user', 'you'), ' ', el('span', 'outbox-state'))
    const body = el('div', 'body')
    body.append(meta, textWithLinks(entry.text))
    row.append(body)
    this.rows.set(entry.clientId, row)
    this.room.thread.keepingScroll(() => this.container.append(row), true)
    this.label(entry, this.outbox.status(entry))
  }

  private stopCountdown(): void {
    clearInterval(this.countdown)
    this.countdown = undefined
    this.slowId = null
  }

  /** The row's state line: sending, waiting, slowed down (counting down), or why it was refused (with Retry and Discard). */
  label(entry: OutboxEntry, status: EntryStatus): void {
    const row = this.rows.get(entry.clientId)
    const line = row?.querySelector<HTMLElement>('.outbox-state')
    if (!row || !line || this.confirmed.has(entry.clientId)) return
    const failed = status.state === 'failed'
    row.classList.toggle('failed', failed)
    row.classList.toggle('pending', !failed)
    if (this.slowId === entry.clientId && !(status.state === 'slow' && status.until === this.slowUntil)) this.stopCountdown()
    if (failed) {
      const retry = el('button', 'link retry', 'Retry')
      retry.type = 'button'
      retry.addEventListener('click', () => {
        // Last in line: what was written after it may have gone already.
        this.container.append(row)
        this.outbox.retry(entry.clientId)
      })
      const discard = el('button', 'link discard', 'Discard')
      discard.type = 'button'
      discard.addEventListener('click', () => {
        this.outbox.discard(entry.clientId)
        this.room.composer?.focus()
      })
      line.replaceChildren(el('span', 'why', `Not sent: ${status.message}`), ' ', retry, ' ', discard)
      line.setAttribute('role', 'alert')
      return
    }
    line.removeAttribute('role')
    if (status.state !== 'slow') {
      line.textContent = status.state === 'held' ? 'sending once reconnected…' : 'sending…'
      return
    }
    // Waiting out the limit: the server's words, and when it goes (counting down), instead of its "try again".
    if (this.slowId === entry.clientId) return
    this.slowId = entry.clientId
    const until = status.until ?? Date.now()
    this.slowUntil = until
    const why = (status.message || 'Slow down.').replace(/\s*Try again in \d+ s\.?$/, '')
    const show = () => {
      const left = Math.max(0, Math.ceil((until - Date.now()) / 1000))
      line.textContent = `${why} Sending it by itself in ${left} s…`
      if (left === 0) clearInterval(this.countdown)
    }
    show()
    this.countdown = setInterval(show, 1000)
  }
}
