// Shared by the room pages: rendering events (always as text, never as HTML), keeping the
// reader's scroll position, the say form, and status lines.

export const roomEl = document.getElementById('room')
export const me = roomEl.dataset.user
const threadEl = document.getElementById('thread')
const statusEl = document.getElementById('status')
const flashEl = document.getElementById('flash')
const form = document.getElementById('say')
const input = document.getElementById('message')
const usersEl = document.getElementById('users')
const typingEl = document.getElementById('typing')

/** Whether the reader is at (or near) the bottom of the thread, so new events should follow. */
function atBottom() {
  return threadEl.scrollHeight - threadEl.scrollTop - threadEl.clientHeight < 24
}

/** Runs a change to the thread; follows new content only if the reader was at the bottom. */
export function keepingScroll(change) {
  const follow = atBottom()
  const top = threadEl.scrollTop
  change(threadEl)
  threadEl.scrollTop = follow ? threadEl.scrollHeight : top
}

function el(tag, className, text) {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

/** Only avatars this server hands out: its own identicons, or Gravatar. */
function avatarEl(url, size) {
  if (typeof url !== 'string' || !(url.startsWith('/avatars/') || url.startsWith('https://www.gravatar.com/avatar/'))) return null
  const img = el('img', 'avatar')
  img.src = url
  img.alt = ''
  img.width = size
  img.height = size
  return img
}

function timeEl(timestamp) {
  const t = el('time', '', new Date(timestamp).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }))
  t.dateTime = new Date(timestamp).toISOString()
  return t
}

/** One event as DOM, the same markup the server renders for the refresh page. */
export function renderEvent(event) {
  const mine = event.user === me
  const who = mine ? 'you' : event.user
  if (event.type === 'message') {
    const row = el('div', mine ? 'message mine' : 'message')
    row.dataset.id = String(event.id)
    row.append(timeEl(event.timestamp), ' ')
    const avatar = avatarEl(event.avatar, 20)
    if (avatar) row.append(avatar)
    row.append(el('span', 'user', who), ' ')
    if (typeof event.via === 'string') {
      const via = el('span', 'via', event.via)
      via.title = `Signed in with ${event.via}`
      row.append(via, ' ')
    }
    row.append(el('span', 'text', event.text ?? ''))
    return row
  }
  const row = el('div', 'notice')
  row.dataset.id = String(event.id)
  const verb = event.type === 'join' ? 'joined' : 'left'
  row.append(timeEl(event.timestamp), ' ', el('span', 'user', who), ` ${verb}${mine ? '' : ' the room'}`)
  return row
}

/**
 * The thread as a sequence of consecutive ids of one log (its epoch): shows each event once,
 * in order, says when events were missed, and loads older ones on request.
 */
export class Thread {
  constructor() {
    this.lastId = 0
    this.firstId = 0
    /** The log the ids belong to: a cursor is (epoch, lastId). */
    this.epoch = roomEl.dataset.epoch || ''
    this.olderButton = document.getElementById('older')
    this.olderButton?.addEventListener('click', () => this.loadOlder())
  }

  /** The query that resumes after what this thread shows (empty when it shows nothing yet). */
  cursor() {
    return this.lastId > 0 ? `lastReceived=${this.lastId}&epoch=${encodeURIComponent(this.epoch)}` : ''
  }

  /** Shows the events not shown yet; returns how many were new. */
  add(events) {
    let added = 0
    keepingScroll((thread) => {
      for (const event of events) {
        if (event.id <= this.lastId) continue
        if (this.lastId > 0 && event.id > this.lastId + 1) {
          const missed = event.id - this.lastId - 1
          thread.append(el('div', 'notice gap', `${missed} earlier event${missed === 1 ? ' was' : 's were'} missed while you were away`))
        }
        thread.append(renderEvent(event))
        if (this.firstId === 0) this.firstId = event.id
        this.lastId = event.id
        added++
      }
    })
    this.showOlder()
    return added
  }

  /** The cursor cannot be resumed (a new log, or too far behind): start over from the newest, with nothing shown twice. */
  reset(epoch) {
    this.lastId = 0
    this.firstId = 0
    if (epoch) this.epoch = epoch
    threadEl.replaceChildren(el('div', 'notice gap', 'The conversation was reloaded from the server.'))
    this.showOlder()
  }

  /** Remembers the epoch the server says the ids belong to (before anything is shown). */
  adopt(epoch) {
    if (epoch && this.lastId === 0) this.epoch = epoch
  }

  showOlder() {
    if (this.olderButton) this.olderButton.hidden = !(this.firstId > 1)
  }

  /** "Load older messages": the page of history before the first event shown, kept in place. */
  async loadOlder() {
    if (this.firstId <= 1) return
    try {
      const res = await fetch(`/room/history?before=${this.firstId}&limit=50&epoch=${encodeURIComponent(this.epoch)}`, { headers: { accept: 'application/json' } })
      if (res.status === 409) return this.reset((await res.json()).epoch)
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const { events } = await res.json()
      const older = events.filter((e) => e.id < this.firstId)
      if (older.length === 0) {
        this.firstId = 1
        return this.showOlder()
      }
      const before = threadEl.scrollHeight
      threadEl.prepend(...older.map(renderEvent))
      threadEl.scrollTop += threadEl.scrollHeight - before
      this.firstId = older[0].id
      this.showOlder()
    } catch {
      showError('Could not load older messages; try again.')
    }
  }
}

/**
 * Who is online: a snapshot from /room/users (as of its lastId), kept current by the
 * join and leave events that follow it; fetched again after every reconnect.
 */
export class Roster {
  constructor() {
    this.lastId = Infinity
    this.users = new Map()
    this.recent = []
  }

  async resync() {
    try {
      const res = await fetch('/room/users', { headers: { accept: 'application/json' } })
      if (!res.ok) return
      const snapshot = await res.json()
      this.lastId = snapshot.lastId
      this.users = new Map(snapshot.users.map((u) => [u.name, u.avatar]))
      // Past the server's limit only a count comes; leaves of people not listed come off it.
      this.hidden = Math.max(0, (snapshot.count ?? snapshot.users.length) - snapshot.users.length)
      // Events that arrived while the snapshot was on its way.
      for (const event of this.recent) this.apply(event)
      this.render()
    } catch {
      // The next reconnect tries again.
    }
  }

  /** Join and leave events; those the snapshot already counts are skipped. */
  add(events) {
    let changed = false
    for (const event of events) {
      if (event.type !== 'join' && event.type !== 'leave') continue
      this.recent.push(event)
      if (this.recent.length > 200) this.recent.shift()
      changed = this.apply(event) || changed
    }
    if (changed) this.render()
  }

  apply(event) {
    if (event.id <= this.lastId) return false
    this.lastId = event.id
    if (event.type === 'join') this.users.set(event.user, event.avatar)
    else if (!this.users.delete(event.user) && this.hidden > 0) this.hidden--
    return true
  }

  render() {
    const names = [...this.users.keys()].sort((a, b) => a.localeCompare(b))
    const count = document.getElementById('online-count')
    if (count) count.textContent = String(names.length + (this.hidden ?? 0))
    usersEl.replaceChildren(
      ...names.map((name) => {
        const li = el('li', name === me ? 'online me' : 'online')
        li.dataset.name = name
        const avatar = avatarEl(this.users.get(name), 24)
        if (avatar) li.append(avatar)
        li.append(el('span', 'name', name))
        if (name === me) li.append(' ', el('span', 'you', '(you)'))
        return li
      }),
    )
  }
}

/** "NAME is typing…": shown a few seconds after each signal, cleared when they send. Never for yourself. */
export class TypingLine {
  constructor(showMs = 4000) {
    this.showMs = showMs
    this.until = new Map()
    setInterval(() => this.render(), 1000)
  }

  add(items) {
    let changed = false
    for (const item of items) {
      if (item.user === me) continue
      if (item.type === 'typing') this.until.set(item.user, Date.now() + this.showMs)
      else if (item.type === 'message' || item.type === 'leave') this.until.delete(item.user)
      else continue
      changed = true
    }
    if (changed) this.render()
  }

  render() {
    const now = Date.now()
    for (const [name, until] of this.until) if (until <= now) this.until.delete(name)
    const names = [...this.until.keys()]
    typingEl.textContent =
      names.length === 0 ? '' : names.length === 1 ? `${names[0]} is typing…` : names.length <= 3 ? `${names.join(', ')} are typing…` : 'Several people are typing…'
  }
}

/**
 * Calls notify at most once per intervalMs while the user types in the message box; a
 * keystroke inside the window schedules one trailing call, so nobody types unseen.
 * Sending the message cancels a pending one.
 */
export function onTyping(notify, intervalMs = 2000) {
  let last = 0
  let trailing = null
  const fire = () => {
    trailing = null
    if (!input.value.trim()) return
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
    trailing = null
  })
}

/** The thread, the online list and the typing line, fed from one stream of events and signals. */
export class Room {
  constructor() {
    this.thread = new Thread()
    this.roster = new Roster()
    this.typing = new TypingLine()
  }

  get lastId() {
    return this.thread.lastId
  }

  receive(items) {
    const events = items.filter((item) => typeof item.id === 'number')
    this.thread.add(events)
    this.roster.add(events)
    this.typing.add(items)
  }
}

// Leaving on purpose (the leave or sign-out form): the server closing our connection is expected.
let leaving = false
for (const out of document.querySelectorAll('form.signout, form.leave')) out.addEventListener('submit', () => (leaving = true))

/** The session is gone (signed out elsewhere, expired): back to the welcome page, the name kept. */
export function signedOut() {
  if (leaving) return
  location.assign(`/?signin=expired&name=${encodeURIComponent(me)}`)
}

/** Someone else present now holds this user's name: back to the welcome page to pick another. */
export function nameTaken() {
  if (!leaving) location.assign(`/?signin=taken&name=${encodeURIComponent(me)}`)
}

/** Whether the server no longer knows this session (as opposed to being unreachable). */
export async function sessionGone() {
  try {
    return (await fetch('/room/users', { headers: { accept: 'application/json' } })).status === 401
  } catch {
    return false
  }
}

export function setStatus(text) {
  statusEl.textContent = text
}

export function showError(text) {
  flashEl.textContent = text
  flashEl.hidden = !text
}

/** Enter (or Send) hands the text to `send`; the box is cleared only once it went out. */
export function onSay(send) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const text = input.value.trim()
    if (!text) return
    const error = await send(text)
    if (error) {
      showError(error)
    } else {
      showError('')
      input.value = ''
    }
    input.focus()
  })
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to 15 s. */
export function backoff(attempt) {
  const base = Math.min(15000, 500 * 2 ** attempt)
  return base / 2 + Math.random() * (base / 2)
}
