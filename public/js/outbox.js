// The outbox as the live pages show it: what you wrote and the server has not confirmed yet, at
// the end of the thread, each row saying where it stands (sending, waiting for the connection,
// slowed down with a countdown, or refused with Retry and Discard). The client library's outbox
// (public/js/client/outbox.js) does the work: client ids, localStorage, sending in order and
// exactly once over whatever way is live; this file draws what it says.
import { avatarEl, el, me, textWithLinks } from './chat.js'

export class OutboxView {
  /** `room` is the page's Room (its thread shows the rows); `outbox` the library room's outbox. */
  constructor(room, outbox) {
    this.room = room
    this.outbox = outbox
    this.container = room.thread.outboxEl
    this.rows = new Map()
    /** Confirmed, with the event's id: the row stays until the thread shows that event. */
    this.confirmed = new Map()
    /** The row counting down to its resend after a 429, and to when. */
    this.slowId = null
    this.slowUntil = 0
    this.countdown = null
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
  confirm(clientId, id) {
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
  seen(_events, lastId) {
    for (const [clientId, id] of this.confirmed) if (id <= lastId) this.dropRow(clientId)
  }

  dropRow(clientId) {
    if (this.slowId === clientId) this.stopCountdown()
    this.confirmed.delete(clientId)
    const row = this.rows.get(clientId)
    this.rows.delete(clientId)
    row?.remove()
  }

  showRow(entry) {
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

  stopCountdown() {
    clearInterval(this.countdown)
    this.countdown = null
    this.slowId = null
  }

  /** The row's state line: sending, waiting, slowed down (counting down), or why it was refused (with Retry and Discard). */
  label(entry, status) {
    const row = this.rows.get(entry.clientId)
    if (!row || this.confirmed.has(entry.clientId)) return
    const line = row.querySelector('.outbox-state')
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
    this.slowUntil = status.until
    const why = (status.message || 'Slow down.').replace(/\s*Try again in \d+ s\.?$/, '')
    const show = () => {
      const left = Math.max(0, Math.ceil((status.until - Date.now()) / 1000))
      line.textContent = `${why} Sending it by itself in ${left} s…`
      if (left === 0) clearInterval(this.countdown)
    }
    show()
    this.countdown = setInterval(show, 1000)
  }
}
