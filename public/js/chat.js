// Shared by the room pages: rendering events (always as text nodes, never as HTML), grouping
// and date lines, keeping the reader's place, the message box, the online list, leaving.
import { linkSegments } from './linkify.js'

export const roomEl = document.getElementById('room')
export const me = roomEl.dataset.user
/** This page's id: sent with every request, so its leave ends only this page's connections. */
export const tab = roomEl.dataset.tab || ''
/** This page's room (the lobby when the page does not say): every URL of the room is built from it. */
const roomName = roomEl.dataset.room ? decodeURIComponent(roomEl.dataset.room) : 'lobby'
/** `/KIND/room/REST` for the lobby (the Revel routes), `/KIND/rooms/NAME/REST` for another room; KIND '' for the room's own routes. */
export function roomUrl(kind, rest) {
  const room = roomName === 'lobby' ? 'room' : `rooms/${encodeURIComponent(roomName)}`
  return `${kind ? `/${kind}` : ''}/${room}${rest}`
}
const threadEl = document.getElementById('thread')
const statusEl = document.getElementById('status')
const flashEl = document.getElementById('flash')
const form = document.getElementById('say')
const input = document.getElementById('message')
const usersEl = document.getElementById('users')
const typingEl = document.getElementById('typing')
const pill = document.getElementById('new-pill')

/** Consecutive messages of one sender within this long show as one group (as the server's app/thread.ts). */
const GROUP_WITHIN_MS = 5 * 60_000

/** Whether the reader is at (or near) the bottom of the thread, so new events should follow. */
function atBottom() {
  return threadEl.scrollHeight - threadEl.scrollTop - threadEl.clientHeight < 32
}

/** Runs a change to the thread; follows new content only if the reader was at the bottom. */
export function keepingScroll(change) {
  const follow = atBottom()
  const top = threadEl.scrollTop
  change(threadEl)
  threadEl.scrollTop = follow ? threadEl.scrollHeight : top
  return follow
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

const timeFormat = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' })
const fullFormat = new Intl.DateTimeFormat([], { dateStyle: 'full', timeStyle: 'short' })
const dayFormat = new Intl.DateTimeFormat([], { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })

function timeEl(timestamp) {
  const t = el('time', '', timeFormat.format(timestamp))
  t.dateTime = new Date(timestamp).toISOString()
  t.title = fullFormat.format(timestamp)
  return t
}

/** A message's text with its http(s) links as safe links (the same function the server renders with). */
export function textWithLinks(text) {
  const node = el('div', 'text')
  for (const part of linkSegments(text)) {
    if (!part.href) {
      node.append(part.text)
      continue
    }
    const a = el('a', '', part.text)
    a.href = part.href
    a.rel = 'noopener noreferrer nofollow'
    a.target = '_blank'
    node.append(a)
  }
  return node
}

/** One event as DOM: the markup the server renders (views/partials/events.eta). */
export function renderEvent(event) {
  const mine = event.user === me
  const who = mine ? 'you' : event.user
  const row = el('div', event.type === 'message' ? (mine ? 'message mine' : 'message') : 'notice')
  row.dataset.id = String(event.id)
  row.dataset.user = event.user
  row.dataset.ts = String(event.timestamp)
  if (event.type === 'message') {
    const avatar = avatarEl(event.avatar, 32)
    if (avatar) row.append(avatar)
    const meta = el('div', 'meta')
    meta.append(el('span', 'user', who))
    if (typeof event.via === 'string') {
      const via = el('span', 'via', event.via)
      via.title = `Signed in with ${event.via}`
      meta.append(' ', via)
    }
    if (event.guest === true) {
      const guest = el('span', 'guest', 'guest')
      guest.title = 'A guest: the name is theirs only while they stay'
      meta.append(' ', guest)
    }
    meta.append(' ', timeEl(event.timestamp))
    const body = el('div', 'body')
    body.append(meta, textWithLinks(event.text ?? ''))
    row.append(body)
    return row
  }
  const verb = event.type === 'join' ? 'joined' : 'left'
  row.append(el('span', 'user', who), ` ${verb}${mine ? '' : ' the room'} `, timeEl(event.timestamp))
  return row
}

const dayKey = (ts) => {
  const d = new Date(ts)
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`
}

function dayLabel(ts) {
  const key = dayKey(ts)
  if (key === dayKey(Date.now())) return 'Today'
  if (key === dayKey(Date.now() - 86_400_000)) return 'Yesterday'
  return dayFormat.format(ts)
}

function dayEl(ts) {
  const p = el('p', 'day')
  p.setAttribute('role', 'separator')
  p.append(el('span', '', dayLabel(ts)))
  return p
}

/** The event row before this one in the thread (date lines and notices without an id skipped). */
function previousEvent(row) {
  for (let node = row.previousElementSibling; node; node = node.previousElementSibling) if (node.dataset.ts) return node
  return null
}

/**
 * Puts one event row in its place: a date line before it when its (local) day differs from
 * the event before, and `cont` when it continues that sender's group. The server draws the
 * same with UTC dates; here local time wins.
 */
function arrange(row) {
  if (!row.dataset.ts) return
  const ts = Number(row.dataset.ts)
  const prev = previousEvent(row)
  const before = row.previousElementSibling
  const line = before?.classList.contains('day') ? before : null
  const newDay = !prev || dayKey(Number(prev.dataset.ts)) !== dayKey(ts)
  if (newDay && !line) row.before(dayEl(ts))
  else if (newDay) line.firstElementChild.textContent = dayLabel(ts)
  else line?.remove()
  const adjacent = !newDay && prev !== null && row.previousElementSibling === prev
  const cont =
    adjacent && row.classList.contains('message') && prev.classList.contains('message') && prev.dataset.user === row.dataset.user && ts - Number(prev.dataset.ts) < GROUP_WITHIN_MS
  row.classList.toggle('cont', Boolean(cont))
  const time = row.querySelector('time')
  if (time) {
    time.textContent = timeFormat.format(ts)
    time.title = fullFormat.format(ts)
  }
}

/** Arranges every row from `first` on (after adding rows there). */
export function arrangeFrom(first) {
  for (let node = first; node; node = node.nextElementSibling) arrange(node)
}

/** Server-rendered rows (the refresh page): local dates and times, and groups. */
export function arrangeAll() {
  for (const line of threadEl.querySelectorAll('.day')) line.remove()
  arrangeFrom(threadEl.firstElementChild)
}

/**
 * Counts what arrives while the reader cannot see it: a pill over the thread when scrolled up
 * ("3 new messages"), and the count in the tab's title while the tab is hidden.
 */
class Unseen {
  constructor() {
    this.below = 0
    this.hidden = 0
    this.title = document.title
    pill?.addEventListener('click', () => {
      threadEl.scrollTop = threadEl.scrollHeight
      this.seenBelow()
    })
    threadEl.addEventListener('scroll', () => {
      if (atBottom()) this.seenBelow()
    })
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) {
        this.hidden = 0
        document.title = this.title
      }
    })
  }

  /** `count` messages from others arrived; `followed` says whether the thread scrolled to them. */
  add(count, followed) {
    if (count === 0) return
    if (!followed) {
      this.below += count
      if (pill) {
        pill.textContent = `${this.below} new message${this.below === 1 ? '' : 's'} below`
        pill.hidden = false
      }
    }
    if (document.hidden) {
      this.hidden += count
      document.title = `(${this.hidden}) ${this.title}`
    }
  }

  seenBelow() {
    this.below = 0
    if (pill) pill.hidden = true
  }
}

let readTimer = null
let readUpTo = 0
/** Tells the server this room is read up to `id`, at most every 2 s. */
function markRead(id) {
  readUpTo = Math.max(readUpTo, id)
  if (readTimer) return
  readTimer = setTimeout(() => {
    readTimer = null
    fetch(`/rooms/${encodeURIComponent(roomName)}/read`, { method: 'POST', body: new URLSearchParams({ id: String(readUpTo) }) }).catch(() => {})
  }, 2000)
}

/** The room list's unread counts, fetched again every 30 s while the page is visible. */
function keepRoomListFresh() {
  const list = document.getElementById('room-list')
  if (!list) return
  setInterval(async () => {
    if (document.hidden) return
    try {
      const res = await fetch('/rooms', { headers: { accept: 'application/json' } })
      if (!res.ok) return
      const { rooms } = await res.json()
      for (const room of rooms) {
        const item = list.querySelector(`li[data-room="${CSS.escape(room.name)}"]`)
        if (!item || item.classList.contains('current')) continue
        let badge = item.querySelector('.unread')
        if (room.unread > 0) {
          if (!badge) {
            badge = el('span', 'unread', '')
            item.append(' ', badge)
          }
          badge.textContent = room.unread > 99 ? '99+' : String(room.unread)
          badge.title = `${room.unread} new`
        } else badge?.remove()
      }
    } catch {
      // The next round tries again.
    }
  }, 30_000)
}
keepRoomListFresh()

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
    this.unseen = new Unseen()
    this.olderButton = document.getElementById('older')
    this.olderButton?.addEventListener('click', () => this.loadOlder())
  }

  /** The query that resumes after what this thread shows (empty when it shows nothing yet). */
  cursor() {
    return this.lastId > 0 ? `lastReceived=${this.lastId}&epoch=${encodeURIComponent(this.epoch)}` : ''
  }

  /** Shows the events not shown yet; returns how many were new. */
  add(events) {
    const rows = []
    let fromOthers = 0
    let sentByMe = false
    let followed = keepingScroll((thread) => {
      for (const event of events) {
        if (event.id <= this.lastId) continue
        if (this.lastId > 0 && event.id > this.lastId + 1) {
          const missed = event.id - this.lastId - 1
          const gap = el('div', 'notice gap', `${missed} earlier event${missed === 1 ? ' was' : 's were'} missed while you were away`)
          thread.append(gap)
          rows.push(gap)
        }
        const row = renderEvent(event)
        thread.append(row)
        rows.push(row)
        if (event.type === 'message' && event.user !== me) fromOthers++
        else if (event.type === 'message') sentByMe = true
        if (this.firstId === 0) this.firstId = event.id
        this.lastId = event.id
      }
      if (rows.length > 0) arrangeFrom(rows[0])
    })
    // What you just sent is where you look: the thread goes to it.
    if (sentByMe && !followed) {
      threadEl.scrollTop = threadEl.scrollHeight
      this.unseen.seenBelow()
      followed = true
    }
    this.unseen.add(fromOthers, followed)
    // Seen: the read marker follows (so this room is not "new" on your other devices).
    if (rows.length > 0 && followed && !document.hidden) markRead(this.lastId)
    this.showOlder()
    return rows.length
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
      const res = await fetch(`${roomUrl('', '/history')}?before=${this.firstId}&limit=50&epoch=${encodeURIComponent(this.epoch)}`, { headers: { accept: 'application/json' } })
      if (res.status === 409) return this.reset((await res.json()).epoch)
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      const { events } = await res.json()
      const older = events.filter((e) => e.id < this.firstId)
      if (older.length === 0) {
        this.firstId = 1
        return this.showOlder()
      }
      const before = threadEl.scrollHeight
      const oldFirst = threadEl.querySelector('[data-ts]')
      const rows = older.map(renderEvent)
      threadEl.prepend(...rows)
      arrangeFrom(rows[0])
      if (oldFirst) arrange(oldFirst)
      threadEl.scrollTop += threadEl.scrollHeight - before
      this.firstId = older[0].id
      this.showOlder()
    } catch {
      showError('Could not load older messages; try again.')
    }
  }
}

/** The online count, in the list's heading and on the phone's "Online" button. */
function showCount(n) {
  for (const id of ['online-count', 'online-toggle-count']) {
    const node = document.getElementById(id)
    if (node) node.textContent = String(n)
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
      const res = await fetch(roomUrl('', '/users'), { headers: { accept: 'application/json' } })
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
    showCount(names.length + (this.hidden ?? 0))
    usersEl.replaceChildren(
      ...names.map((name) => {
        const li = el('li', name === me ? 'online me' : 'online')
        li.dataset.name = name
        const avatar = avatarEl(this.users.get(name), 24)
        if (avatar) li.append(avatar)
        li.append(el('span', 'name', name))
        if (name === me) li.append(' ', el('span', 'you', '(you)'))
        else if (roomEl.dataset.dm === '1') li.append(dmForm(name))
        return li
      }),
    )
  }
}

/** "Message": opens (or finds) the direct room with this person (an account; the server says so otherwise). */
function dmForm(name) {
  const form = el('form', 'dm')
  form.method = 'post'
  form.action = '/direct'
  for (const [field, value] of [['user', name], ['transport', roomEl.dataset.transport || 'auto']]) {
    const input = document.createElement('input')
    input.type = 'hidden'
    input.name = field
    input.value = value
    form.append(input)
  }
  const button = el('button', 'link', 'Message')
  button.type = 'submit'
  button.setAttribute('aria-label', `Direct message to ${name}`)
  form.append(button)
  return form
}

/** The online list drawn by the server (the refresh page): swapped in whole, with its count. */
export function showUsers(list, count) {
  usersEl.replaceChildren(...list.childNodes)
  showCount(count)
}

/** "NAME is typing…" (the same words as the refresh page's, drawn by the server). */
export function typingText(names) {
  if (names.length === 0) return ''
  if (names.length === 1) return `${names[0]} is typing…`
  return names.length <= 3 ? `${names.join(', ')} are typing…` : 'Several people are typing…'
}

export function setTyping(text) {
  if (typingEl.textContent !== text) typingEl.textContent = text
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
    setTyping(typingText([...this.until.keys()]))
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

// Leaving: the page tells the server as it goes (closing the tab, navigating away), so others
// see the leave at once; a reload's new page is already holding the user by then.
let leaving = false
/** Whether this page is on its way out (the server closing our connection is expected). */
export const isLeaving = () => leaving
for (const out of document.querySelectorAll('form.signout')) out.addEventListener('submit', () => (leaving = true))
addEventListener('pagehide', () => {
  leaving = true
  if (tab) navigator.sendBeacon('/room/leave', new URLSearchParams({ tab }))
})
// Back from the browser's page cache: this page left when it was hidden, so it starts anew.
addEventListener('pageshow', (e) => {
  if (e.persisted) location.reload()
})

// The online list on a phone: behind the "Online" button (a plain #people link without JavaScript).
const toggle = document.getElementById('online-toggle')
const closePeople = document.getElementById('close-people')
function showPeople(open) {
  document.body.classList.toggle('people-open', open)
  toggle?.setAttribute('aria-expanded', String(open))
  if (open) document.getElementById('people')?.focus?.()
}
toggle?.addEventListener('click', (e) => {
  e.preventDefault()
  showPeople(!document.body.classList.contains('people-open'))
})
closePeople?.addEventListener('click', (e) => {
  e.preventDefault()
  showPeople(false)
  toggle?.focus()
})
addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && document.body.classList.contains('people-open')) showPeople(false)
})

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

let countdown = null

/** The status line; with `untilMs`, `{s}` in the text counts down the seconds to it. */
export function setStatus(text, untilMs) {
  clearInterval(countdown)
  countdown = null
  if (untilMs === undefined) {
    statusEl.textContent = text
    return
  }
  const show = () => {
    const left = Math.max(0, Math.ceil((untilMs - Date.now()) / 1000))
    statusEl.textContent = text.replace('{s}', left === 0 ? 'now' : `in ${left} s`)
    if (left === 0) {
      clearInterval(countdown)
      countdown = null
    }
  }
  show()
  countdown = setInterval(show, 1000)
}

/** The error line over the message box (it takes room from the thread, which keeps its place). */
export function showError(text) {
  if (flashEl.textContent === text && flashEl.hidden === !text) return
  keepingScroll(() => {
    flashEl.textContent = text
    flashEl.hidden = !text
  })
}

/** The message box grows with its text, up to a few lines (then it scrolls). */
function fitInput() {
  input.style.height = 'auto'
  input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`
}

/**
 * Enter (or Send) hands the text to `send`, which resolves with '' once the server took it or
 * with why not; the box is cleared only then, so a refused message stays for another try.
 * Shift+Enter starts a new line.
 */
export function onSay(send) {
  let sending = false
  input.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' || e.shiftKey || e.isComposing) return
    e.preventDefault()
    form.requestSubmit()
  })
  input.addEventListener('input', fitInput)
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const text = input.value
    if (!text.trim() || sending) return
    sending = true
    form.setAttribute('aria-busy', 'true')
    const error = await send(text)
    sending = false
    form.removeAttribute('aria-busy')
    if (error) {
      showError(error)
    } else {
      showError('')
      // What was typed meanwhile stays.
      if (input.value === text) input.value = ''
      fitInput()
    }
    input.focus()
  })
  fitInput()
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to 15 s. */
export function backoff(attempt) {
  const base = Math.min(15000, 500 * 2 ** attempt)
  return base / 2 + Math.random() * (base / 2)
}
