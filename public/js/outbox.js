// The outbox: what you wrote and the server has not confirmed yet. Each message gets a client id
// when it is written; it is kept in localStorage (per person and room, so a reload keeps it),
// shown at the end of the thread as pending, and sent by itself, in order, whenever the page is
// live, over whatever way it has then. A resend carries the same client id, so the server
// answers it with the first event and nothing is posted twice.
import { avatarEl, el, me, roomName, signedOut, textWithLinks } from './chat.js'

/** 16 random bytes as base64url (22 characters): the message's id from this page. */
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

/** How long a transient failure (503, a dropped request) waits before the next try, growing to 10 s. */
const transientWait = (n) => Math.min(10_000, 1000 * 2 ** n)

export class Outbox {
  /**
   * `room` is the page's Room (its thread shows the rows); `currentLink()` the link sends go
   * through now, or null. A link's send(entry) resolves with one of: {ok, id}, {retryAfter,
   * message}, {refused: message} (400, 403, 404: for good), {transient: message} (try again when
   * live), {signedOut: true}.
   */
  constructor(room, currentLink) {
    this.room = room
    this.currentLink = currentLink
    this.key = `chat.outbox.v1:${me}:${roomName}`
    this.container = room.thread.outboxEl
    /** @type {{clientId: string, text: string, at: number, failed?: string}[]} */
    this.entries = this.load()
    this.rows = new Map()
    /** Confirmed, with the event's id: the row stays until the thread shows that event. */
    this.confirmed = new Map()
    this.running = false
    this.timer = null
    this.transientFailures = 0
    this.live = false
    /** Sending again after a 429: not before this time. */
    this.notBefore = 0
    for (const entry of this.entries) this.showRow(entry)
    // Another tab of this room sent (or discarded) some: follow it.
    addEventListener('storage', (e) => {
      if (e.key === this.key) this.sync()
    })
  }

  load() {
    try {
      const saved = JSON.parse(localStorage.getItem(this.key) ?? '[]')
      return Array.isArray(saved) ? saved.filter((e) => e && typeof e.clientId === 'string' && typeof e.text === 'string') : []
    } catch {
      return []
    }
  }

  save() {
    try {
      if (this.entries.length === 0) localStorage.removeItem(this.key)
      else localStorage.setItem(this.key, JSON.stringify(this.entries))
    } catch {
      // Storage full or refused: the outbox still works for this page.
    }
  }

  sync() {
    const saved = this.load()
    const ids = new Set(saved.map((e) => e.clientId))
    for (const entry of this.entries) if (!ids.has(entry.clientId) && !this.confirmed.has(entry.clientId)) this.dropRow(entry.clientId)
    const known = new Set(this.entries.map((e) => e.clientId))
    this.entries = saved
    for (const entry of saved) {
      if (!known.has(entry.clientId)) this.showRow(entry)
      else this.label(entry)
    }
    this.pump()
  }

  get pending() {
    return this.entries.filter((e) => !e.failed).length
  }

  /** A message written in the box: into the outbox, shown as pending, sent as soon as possible. */
  add(text) {
    const entry = { clientId: newClientId(), text, at: Date.now() }
    this.entries.push(entry)
    this.save()
    this.showRow(entry)
    this.pump()
    return entry
  }

  /** The page is live (or not) on some way: pending rows say so, and sending starts. */
  setLive(live) {
    this.live = live
    for (const entry of this.entries) this.label(entry)
    if (live) {
      this.transientFailures = 0
      this.pump()
    }
  }

  /** Sends what waits, one at a time, in order; stops at the first that cannot go now. */
  async pump() {
    if (this.running) return
    this.running = true
    clearTimeout(this.timer)
    this.timer = null
    try {
      for (;;) {
        const entry = this.entries.find((e) => !e.failed)
        if (!entry) return
        const wait = this.notBefore - Date.now()
        if (wait > 0) return this.later(wait)
        const link = this.currentLink()
        if (!link || !link.live || link.stopped) return
        this.label(entry, 'sending')
        const result = await link.send(entry)
        if (!this.entries.includes(entry)) continue
        if (result.ok) {
          this.transientFailures = 0
          this.confirm(entry.clientId, result.id)
        } else if (result.signedOut) {
          return signedOut()
        } else if (result.retryAfter !== undefined) {
          // Too many too fast: this one goes first again once the limit allows.
          this.notBefore = Date.now() + result.retryAfter * 1000
          this.label(entry, 'slow', result.message)
        } else if (result.refused !== undefined) {
          entry.failed = result.refused
          this.save()
          this.label(entry)
        } else {
          // The server could not take it now (503, a dropped connection): again shortly, or when live again.
          this.label(entry)
          return this.later(transientWait(this.transientFailures++))
        }
      }
    } finally {
      this.running = false
    }
  }

  later(ms) {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => this.pump(), ms)
  }

  /** The server has it (an ack, 201 or 200, or its client id seen in the stream): out of the outbox. */
  confirm(clientId, id) {
    const i = this.entries.findIndex((e) => e.clientId === clientId)
    if (i >= 0) {
      this.entries.splice(i, 1)
      this.save()
    }
    const row = this.rows.get(clientId)
    if (!row) return
    // Shown until the thread has its event (it may come before or after the answer).
    if (typeof id === 'number' && id > this.room.thread.lastId) {
      this.confirmed.set(clientId, id)
      row.classList.remove('pending', 'failed')
      row.classList.add('sent')
      row.querySelector('.outbox-state')?.replaceChildren()
    } else this.dropRow(clientId)
  }

  /** Events shown in the thread: one of ours by client id, or the thread past a confirmed id. */
  seen(events, lastId) {
    for (const event of events) if (event.type === 'message' && typeof event.clientId === 'string' && this.rows.has(event.clientId)) this.confirm(event.clientId)
    for (const [clientId, id] of this.confirmed) if (id <= lastId) this.dropRow(clientId)
  }

  dropRow(clientId) {
    this.confirmed.delete(clientId)
    const row = this.rows.get(clientId)
    this.rows.delete(clientId)
    row?.remove()
  }

  retry(clientId) {
    const i = this.entries.findIndex((e) => e.clientId === clientId)
    if (i < 0) return
    const [entry] = this.entries.splice(i, 1)
    delete entry.failed
    // Last in line: what was written after it may have gone already.
    this.entries.push(entry)
    this.save()
    const row = this.rows.get(clientId)
    if (row) this.container.append(row)
    this.label(entry)
    this.pump()
  }

  discard(clientId) {
    this.entries = this.entries.filter((e) => e.clientId !== clientId)
    this.save()
    this.dropRow(clientId)
    this.room.composer?.focus()
  }

  showRow(entry) {
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
    this.label(entry)
  }

  /** The row's state line: sending, waiting, slowed down, or why it was refused (with Retry and Discard). */
  label(entry, state, message) {
    const row = this.rows.get(entry.clientId)
    if (!row) return
    const line = row.querySelector('.outbox-state')
    row.classList.toggle('failed', Boolean(entry.failed))
    row.classList.toggle('pending', !entry.failed)
    if (entry.failed) {
      const retry = el('button', 'link retry', 'Retry')
      retry.type = 'button'
      retry.addEventListener('click', () => this.retry(entry.clientId))
      const discard = el('button', 'link discard', 'Discard')
      discard.type = 'button'
      discard.addEventListener('click', () => this.discard(entry.clientId))
      line.replaceChildren(el('span', 'why', `Not sent: ${entry.failed}`), ' ', retry, ' ', discard)
      line.setAttribute('role', 'alert')
      return
    }
    line.removeAttribute('role')
    // Waiting out the limit: it says so until it is sent again.
    if (state === undefined && this.slowId === entry.clientId && this.notBefore > Date.now()) return
    if (this.slowId === entry.clientId) {
      clearInterval(this.countdown)
      this.slowId = null
    }
    if (state === 'slow') {
      clearInterval(this.countdown)
      this.slowId = entry.clientId
      // The server's words, and when it goes (counting down), instead of its "try again".
      const why = (message || 'Slow down.').replace(/\s*Try again in \d+ s\.?$/, '')
      const show = () => {
        const left = Math.max(0, Math.ceil((this.notBefore - Date.now()) / 1000))
        line.textContent = `${why} Sending it by itself in ${left} s…`
        if (left === 0) clearInterval(this.countdown)
      }
      show()
      this.countdown = setInterval(show, 1000)
    } else line.textContent = this.live || state === 'sending' ? 'sending…' : 'sending once reconnected…'
  }
}
