// Shared by the room pages: rendering events (always as text nodes, never as HTML), grouping,
// date lines and folded join/leave lines, keeping the reader's place, edits and deletions of
// one's own messages, mentions, the message box (its counter and @-completion), the online
// list, the connection state in the top bar, keyboard moves in the thread, leaving. The live
// pages speak to the server only through the client library (public/js/links.js hands its room
// to Room): this file does the page's work.
import { reportAway } from './page/away.js'
import { inviteInPlace } from './page/invite.js'
import { continuesGroup, joinLeaveWords } from './client/render.js'
import { MentionCompleter, MentionTracker, mentions } from './page/mentions.js'
import { awayAfterMs, iAmGuest, maxLength, me, roomEl, roomName, tab, threadEl } from './page/context.js'
import { atBottom, avatarEl, dayFormat, el, fullFormat, keepingScroll, textWithLinks, timeEl, timeFormat } from './page/dom.js'
import { Roster, TypingLine } from './page/people.js'
import { counterText, messageBox } from './page/composer.js'
import { showError } from './page/status.js'
import { messageLength } from './client/render.js'

export { me, roomEl, roomName, setRoomName, tab } from './page/context.js'
export { avatarEl, el, keepingScroll, textWithLinks } from './page/dom.js'
export { Roster, TypingLine, setTyping, showUsers } from './page/people.js'
export { messageLength, typingText } from './client/render.js'
export { onCompose, onSay, onTyping } from './page/composer.js'
export { isLeaving, nameTaken, setStatus, showConnection, showError, signedOut } from './page/status.js'

reportAway(tab, awayAfterMs)
inviteInPlace(document.getElementById('invite-form'))
/** "No messages yet": shown by the style sheet while the thread has nothing else; kept across switches. */
const emptyHint = threadEl?.querySelector('.empty-thread')
const pill = document.getElementById('new-pill')

/** Whether this event is this person's own (the server checks again; a guest's name is not an account's). */
function isOwn(event) {
  return event.user === me && Boolean(event.guest) === iAmGuest
}

/** The text each message row shows now (after edits), for the editor. */
const rowText = new WeakMap()

/** A message's content: its text and "(edited)", or "message deleted". */
function contentEl(text, edited, deleted) {
  const content = el('div', 'content')
  if (deleted) {
    content.append(el('p', 'gone', 'message deleted'))
    return content
  }
  content.append(textWithLinks(text))
  if (edited !== undefined) {
    const mark = el('span', 'edited', '(edited)')
    mark.dataset.ts = String(edited)
    mark.title = `Edited ${fullFormat.format(edited)}`
    content.append(' ', mark)
  }
  return content
}

/**
 * Edit and Delete on one's own message: shown on hover and focus, behind "⋯" on a touch screen.
 * Their words are drawn by chat.css (and named by aria-label), so copying a message, or reading
 * its text, gets the message and not the buttons.
 */
function actionsEl() {
  const actions = el('div', 'actions')
  const button = (className, label) => {
    const b = el('button', className)
    b.type = 'button'
    b.tabIndex = -1
    b.setAttribute('aria-label', label)
    return b
  }
  const more = button('more', 'Edit or delete this message')
  more.setAttribute('aria-expanded', 'false')
  actions.append(more, button('edit', 'Edit'), button('delete', 'Delete'))
  return actions
}

/** One event as DOM: the markup the server renders (views/partials/events.eta). */
export function renderEvent(event) {
  const mine = event.user === me
  const who = mine ? 'you' : event.user
  const row = el('div', event.type === 'message' ? (mine ? 'message mine' : 'message') : 'notice presence')
  row.dataset.id = String(event.id)
  row.dataset.user = event.user
  row.dataset.ts = String(event.timestamp)
  row.dataset.type = event.type
  if (event.type === 'message') {
    row.id = `m${event.id}`
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
    const deleted = event.deleted === true
    body.append(meta, contentEl(event.text ?? '', event.edited, deleted))
    row.append(body)
    rowText.set(row, event.text ?? '')
    if (deleted) row.classList.add('deleted')
    if (!mine && !deleted && mentions(event.text, me)) row.classList.add('mention')
    if (isOwn(event)) {
      row.classList.add('own')
      if (!deleted) row.append(actionsEl())
    }
    return row
  }
  const verb = event.type === 'join' ? 'joined' : 'left'
  row.append(el('span', 'user', who), ` ${verb}${mine ? '' : ' the room'} `, timeEl(event.timestamp))
  return row
}

/** A message row now reads `text` (an edit): "(edited)" beside it, the mention mark redone. */
function showEdited(row, text, at) {
  if (row.classList.contains('deleted')) return
  rowText.set(row, text)
  const content = contentEl(text, at, false)
  const old = row.querySelector('.content')
  if (old) old.replaceWith(content)
  else row.querySelector('.body')?.append(content)
  if (row.dataset.user !== me) row.classList.toggle('mention', mentions(text, me))
}

/** A message row now says "message deleted"; its actions go. */
function showDeleted(row) {
  rowText.delete(row)
  row.classList.add('deleted')
  row.classList.remove('mention', 'editing', 'open')
  row.querySelector('.content')?.replaceWith(contentEl('', undefined, true))
  row.querySelector('.edit-form')?.remove()
  row.querySelector('.actions')?.remove()
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

/** The row before this one that a reader sees (folded join/leave lines and hidden rows skipped). */
function previousShown(row) {
  for (let node = row.previousElementSibling; node; node = node.previousElementSibling) {
    if (!node.hidden && !node.classList.contains('folded')) return node
  }
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
  const adjacent = !newDay && prev !== null && previousShown(row) === prev
  const kind = (r) => (r.classList.contains('message') ? 'message' : 'notice')
  const cont = adjacent && continuesGroup({ type: kind(prev), user: prev.dataset.user, timestamp: Number(prev.dataset.ts) }, { type: kind(row), user: row.dataset.user, timestamp: ts }, true)
  row.classList.toggle('cont', cont)
  const time = row.querySelector('time')
  if (time) {
    time.textContent = timeFormat.format(ts)
    time.title = fullFormat.format(ts)
  }
  // Links are no Tab stops, in rows the server drew too.
  for (const a of row.querySelectorAll('.text a')) a.tabIndex = -1
  if (row.classList.contains('message') && row.dataset.user !== me && !row.classList.contains('deleted')) {
    const text = row.querySelector('.text')?.textContent
    if (text && mentions(text, me)) row.classList.add('mention')
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

const isPresenceRow = (node) => node?.classList?.contains('presence') === true
const isFoldRow = (node) => node?.classList?.contains('fold') === true

/**
 * Consecutive join and leave lines fold into one ("ann, bob and cy joined · dan left"): the
 * single lines stay in the thread (hidden, each with its id), and one line before them stands
 * for them.
 * Refolds the run of such lines `row` belongs to.
 */
function refold(row) {
  let start = row
  while (isPresenceRow(start.previousElementSibling) || isFoldRow(start.previousElementSibling)) start = start.previousElementSibling
  const run = []
  for (let node = start; isPresenceRow(node) || isFoldRow(node); node = node.nextElementSibling) run.push(node)
  const rows = run.filter(isPresenceRow)
  const folds = run.filter(isFoldRow)
  if (rows.length < 2) {
    for (const r of rows) r.classList.remove('folded')
    for (const f of folds) f.remove()
    return
  }
  const joined = []
  const left = []
  for (const r of rows) {
    const list = r.dataset.type === 'leave' ? left : joined
    if (!list.includes(r.dataset.user)) list.push(r.dataset.user)
    r.classList.add('folded')
  }
  for (const f of folds.slice(1)) f.remove()
  const fold = folds[0] ?? el('div', 'notice fold')
  fold.replaceChildren(...joinLeaveWords(joined, left, me).map((w) => (w.user ? el('span', 'user', w.text) : w.text)), ' ', timeEl(Number(rows.at(-1).dataset.ts)))
  fold.title = [joined.length ? `Joined: ${joined.join(', ')}.` : '', left.length ? `Left: ${left.join(', ')}.` : ''].filter(Boolean).join(' ')
  // Before the lines it stands for: the first line of the run a reader (or a search) comes to.
  rows[0].before(fold)
}

/** Refolds every run of join and leave lines among `rows`. */
function refoldAround(rows) {
  const done = new Set()
  for (const row of rows) {
    if (!isPresenceRow(row) || done.has(row)) continue
    refold(row)
    for (let node = row; isPresenceRow(node) || isFoldRow(node); node = node.nextElementSibling) done.add(node)
  }
}

/**
 * Counts what arrives while the reader cannot see it: a pill over the thread when scrolled up
 * ("3 new messages"), and the count in the tab's title while the tab is hidden (with the
 * mentions of you not seen yet: "(@1 · 3) …").
 */
class Unseen {
  constructor() {
    this.below = 0
    this.hidden = 0
    this.mentions = 0
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
        this.showTitle()
      }
    })
  }

  showTitle() {
    const counts = [this.mentions > 0 ? `@${this.mentions}` : '', this.hidden > 0 ? String(this.hidden) : ''].filter(Boolean)
    document.title = counts.length > 0 ? `(${counts.join(' · ')}) ${this.title}` : this.title
  }

  setMentions(n) {
    this.mentions = n
    this.showTitle()
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
      this.showTitle()
    }
  }

  seenBelow() {
    this.below = 0
    if (pill) pill.hidden = true
  }
}

let readTimer = null
let readUpTo = 0
/** Tells the server (through the library's room `chat`) this room is read up to `id`, at most every 2 s. */
function markRead(chat, id) {
  readUpTo = Math.max(readUpTo, id)
  if (readTimer) return
  readTimer = setTimeout(() => {
    readTimer = null
    chat.markRead(readUpTo).catch(() => {})
  }, 2000)
}

/** The refresh page's room list: its unread counts fetched again every 30 s while the page is visible. */
function keepRoomListFresh() {
  const list = document.getElementById('room-list')
  // The live pages keep the list from the person's stream (public/js/app.js): only the refresh page asks.
  if (!list || roomEl.dataset.transport !== 'refresh') return
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
 * The thread as a sequence of consecutive ids of one log: shows each event once, in order,
 * applies edits and deletions to the messages they refer to, folds join and leave lines, says
 * when events were missed, and loads older ones on request. Pending messages (the outbox) stay
 * at its end. `chat` is the client library's room (its cursor, history, edits).
 */
export class Thread {
  constructor(chat) {
    this.chat = chat
    this.lastId = 0
    this.firstId = 0
    this.unseen = new Unseen()
    this.olderButton = document.getElementById('older')
    this.olderButton?.addEventListener('click', () => this.loadOlder())
    /** Where the outbox shows what is not confirmed yet: always last. */
    this.outboxEl = el('div', 'outbox')
    this.outboxEl.id = 'outbox'
    threadEl.append(this.outboxEl)
    /** The room's last event when the page was made: mentions after it are news, those before were there already. */
    this.seenUpTo = Number(roomEl.dataset.seen || 0)
    this.mentions = new MentionTracker({
      thread: threadEl,
      badge: document.getElementById('mention-badge'),
      notifyButton: document.getElementById('notify-me'),
      room: roomName,
      onChange: (n) => this.unseen.setMentions(n),
    })
  }

  keepingScroll(change, follow) {
    return keepingScroll(change, follow)
  }

  /** Shows the events not shown yet; returns how many were new. */
  add(events) {
    const rows = []
    const changes = []
    const mentioned = []
    let fromOthers = 0
    let sentByMe = false
    let followed = keepingScroll((thread) => {
      for (const event of events) {
        if (event.id <= this.lastId) continue
        if (this.lastId > 0 && event.id > this.lastId + 1) {
          const missed = event.id - this.lastId - 1
          const gap = el('div', 'notice gap', `${missed} earlier event${missed === 1 ? ' was' : 's were'} missed while you were away`)
          this.outboxEl.before(gap)
          rows.push(gap)
        }
        if (this.firstId === 0) this.firstId = event.id
        this.lastId = event.id
        if (event.type === 'edit' || event.type === 'delete') {
          changes.push(event)
          continue
        }
        if (event.type !== 'message' && event.type !== 'join' && event.type !== 'leave') continue
        const row = renderEvent(event)
        this.outboxEl.before(row)
        rows.push(row)
        if (event.type === 'message' && event.user !== me) {
          fromOthers++
          if (row.classList.contains('mention')) mentioned.push([row, event])
        } else if (event.type === 'message') sentByMe = true
      }
      if (rows.length > 0) {
        arrangeFrom(rows[0])
        refoldAround(rows)
      }
      for (const change of changes) this.applyChange(change)
    })
    // What you just sent is where you look: the thread goes to it.
    if (sentByMe && !followed) {
      threadEl.scrollTop = threadEl.scrollHeight
      this.unseen.seenBelow()
      followed = true
    }
    this.unseen.add(fromOthers, followed)
    // After a start over, the first batch is the window again: history, not news.
    if (!this.restarted) for (const [row, event] of mentioned) if (event.id > this.seenUpTo) this.mentions.add(row, event)
    if (events.length > 0) this.restarted = false
    // Seen: the read marker follows (so this room is not "new" on your other devices).
    if (rows.length > 0 && followed && !document.hidden) markRead(this.chat, this.lastId)
    this.showOlder()
    return rows.length
  }

  /** An edit or a deletion (from the stream, or the answer to one's own): applied once, in place; unknown ids are ignored. */
  applyChange(event) {
    const row = threadEl.querySelector(`.message[data-id="${Number(event.ref)}"]`)
    if (!row || row.classList.contains('deleted')) return
    if (event.type === 'delete') {
      this.mentions.drop(row)
      return keepingScroll(() => showDeleted(row))
    }
    if (typeof event.text !== 'string') return
    const edited = Number(row.querySelector('.edited')?.dataset.ts ?? 0)
    // An older edit (the answer to ours, after the stream's newer one) changes nothing.
    if (edited > event.timestamp) return
    keepingScroll(() => showEdited(row, event.text, event.timestamp))
    if (!row.classList.contains('mention')) this.mentions.drop(row)
  }

  /** The cursor cannot be resumed (a new log, or too far behind): start over from the newest, with nothing shown twice. */
  reset() {
    this.lastId = 0
    this.firstId = 0
    this.seenUpTo = 0
    this.restarted = true
    threadEl.replaceChildren(...(emptyHint ? [emptyHint] : []), el('div', 'notice gap', 'The conversation was reloaded from the server.'), this.outboxEl)
    this.mentions.render()
    this.showOlder()
  }

  showOlder() {
    if (this.olderButton) this.olderButton.hidden = !(this.firstId > 1)
  }

  /** Another room shown in place (`chat`, the library's room): the thread starts empty; its recent history comes next. */
  switchTo(chat) {
    this.chat = chat
    this.lastId = 0
    this.firstId = 0
    this.restarted = true
    this.seenUpTo = Number(roomEl.dataset.seen || 0)
    for (const row of [...this.mentions.unseen]) this.mentions.drop(row)
    this.mentions.room = roomName
    this.outboxEl.replaceChildren()
    threadEl.replaceChildren(...(emptyHint ? [emptyHint] : []), this.outboxEl)
    this.unseen.seenBelow()
    this.showOlder()
  }

  /**
   * The room's recent history (before `before`, when the stream starts the room there), when its
   * events come from the person's stream.
   */
  async loadRecent(before) {
    const chat = this.chat
    try {
      const { events } = await chat.history(before === undefined ? { limit: 50 } : { before, limit: 50 })
      if (chat !== this.chat) return
      // Live events came first: what came before them is older history.
      if (this.lastId > 0) await this.loadOlder()
      else {
        this.restarted = true
        this.add(events)
        threadEl.scrollTop = threadEl.scrollHeight
      }
      await this.revealTarget()
    } catch (error) {
      if (error?.kind !== 'conflict') showError('Could not load the conversation; try again.')
    }
  }

  /** A link to a message (#mID, as search results give): older history is loaded until it is shown, then it is scrolled to. */
  async revealTarget() {
    const id = Number(/^#m(\d+)$/.exec(location.hash)?.[1] ?? 0)
    if (!id) return
    for (let pages = 0; pages < 20 && this.firstId > id && this.firstId > 1; pages++) await this.loadOlder()
    const row = document.getElementById(`m${id}`)
    if (!row) return
    row.classList.add('target')
    row.scrollIntoView({ block: 'center' })
    row.tabIndex = -1
    row.focus({ preventScroll: true })
  }

  /** "Load older messages": the page of history before the first event shown; what the reader sees stays in place. */
  async loadOlder() {
    if (this.firstId <= 1) return
    try {
      // Another log of the room: the library starts over (the thread with it).
      const { events } = await this.chat.history({ before: this.firstId, limit: 50 })
      const older = events.filter((e) => e.id < this.firstId)
      if (older.length === 0) {
        this.firstId = 1
        return this.showOlder()
      }
      keepingScroll(() => {
        const oldFirst = threadEl.querySelector('[data-ts]')
        // History shows messages as they stand: its edits and deletions are already applied.
        const rows = older.filter((e) => e.type === 'message' || e.type === 'join' || e.type === 'leave').map(renderEvent)
        if (rows.length === 0) return
        threadEl.prepend(...rows)
        arrangeFrom(rows[0])
        if (oldFirst) arrange(oldFirst)
        refoldAround(oldFirst ? [...rows, oldFirst] : rows)
      }, false)
      this.firstId = older[0].id
      this.showOlder()
    } catch (error) {
      if (error?.kind !== 'conflict') showError('Could not load older messages; try again.')
    }
  }

  /** The newest of your own messages that can still be edited. */
  lastOwn() {
    const rows = threadEl.querySelectorAll(':scope > .message.own:not(.deleted)')
    return rows[rows.length - 1] ?? null
  }
}

/** An edit or a deletion of one's own message, through the library's room (the answer is the event), or why not. */
async function changeMessage(thread, id, kind, text) {
  try {
    return { event: await (kind === 'edit' ? thread.chat.edit(id, text) : thread.chat.delete(id)) }
  } catch (error) {
    if (error.kind === 'signedOut') {
      signedOut()
      return { error: 'You were signed out.' }
    }
    return { error: error.message || 'That did not work.' }
  }
}

/** Edits one's own message in place: a box with its text; Enter saves, Escape cancels. */
function startEdit(row, thread) {
  if (row.classList.contains('editing') || row.classList.contains('deleted')) return
  const id = Number(row.dataset.id)
  const original = rowText.get(row) ?? row.querySelector('.text')?.textContent ?? ''
  row.classList.add('editing')
  row.classList.remove('open')
  const editor = el('form', 'edit-form')
  const box = el('textarea')
  box.value = original
  box.rows = Math.min(8, original.split('\n').length + 1)
  box.setAttribute('aria-label', 'Your message, edited')
  const hint = el('span', 'hint', 'Enter saves · Esc cancels')
  const counter = el('span', 'say-count')
  counter.hidden = true
  const error = el('p', 'edit-error')
  error.setAttribute('role', 'alert')
  error.hidden = true
  const save = el('button', 'save', 'Save')
  save.type = 'submit'
  const cancel = el('button', 'cancel link', 'Cancel')
  cancel.type = 'button'
  const bar = el('div', 'edit-bar')
  bar.append(hint, counter, cancel, save)
  editor.append(box, bar, error)
  keepingScroll(() => row.querySelector('.body').append(editor))
  box.focus()
  box.setSelectionRange(box.value.length, box.value.length)
  const done = () => {
    keepingScroll(() => {
      editor.remove()
      row.classList.remove('editing')
    })
    row.tabIndex = -1
    row.focus({ preventScroll: true })
  }
  const count = () => {
    const n = messageLength(box.value)
    counter.hidden = n <= maxLength * 0.9
    counter.textContent = counterText(n)
    counter.classList.toggle('over', n > maxLength)
    save.disabled = n > maxLength
  }
  box.addEventListener('input', count)
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault()
      e.stopPropagation()
      done()
    } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault()
      editor.requestSubmit()
    }
  })
  cancel.addEventListener('click', done)
  editor.addEventListener('submit', async (e) => {
    e.preventDefault()
    const text = box.value
    const n = messageLength(text)
    if (n === 0) {
      error.textContent = 'A message cannot be empty: use Delete to remove it.'
      error.hidden = false
      return
    }
    if (n > maxLength) return
    if (text.trim() === (rowText.get(row) ?? '').trim()) return done()
    editor.setAttribute('aria-busy', 'true')
    save.disabled = true
    const result = await changeMessage(thread, id, 'edit', text)
    editor.removeAttribute('aria-busy')
    save.disabled = false
    if (result.error) {
      error.textContent = result.error
      error.hidden = false
      return
    }
    done()
    thread.applyChange(result.event)
  })
  count()
}

/** Deleting one's own message: asked once, in place. */
function confirmDelete(row, thread) {
  if (row.querySelector('.confirm-delete') || row.classList.contains('deleted')) return
  const id = Number(row.dataset.id)
  const ask = el('div', 'confirm-delete')
  ask.setAttribute('role', 'group')
  ask.setAttribute('aria-label', 'Delete this message?')
  const yes = el('button', 'danger', 'Delete')
  yes.type = 'button'
  const no = el('button', 'link', 'Cancel')
  no.type = 'button'
  const error = el('span', 'edit-error')
  ask.append(el('span', '', 'Delete this message for everyone?'), ' ', yes, ' ', no, ' ', error)
  keepingScroll(() => row.querySelector('.body').append(ask))
  row.classList.remove('open')
  yes.focus()
  const close = () => {
    keepingScroll(() => ask.remove())
    if (row.isConnected) {
      row.tabIndex = -1
      row.focus({ preventScroll: true })
    }
  }
  no.addEventListener('click', close)
  ask.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation()
      close()
    }
  })
  yes.addEventListener('click', async () => {
    yes.disabled = true
    const result = await changeMessage(thread, id, 'delete')
    yes.disabled = false
    if (result.error) {
      error.textContent = result.error
      return
    }
    ask.remove()
    thread.applyChange(result.event)
  })
}

/** The rows arrow keys move between: what the reader sees, in order. */
function navigableRows() {
  return [...threadEl.querySelectorAll(':scope > .message, :scope > .notice, :scope > .outbox > .outgoing')].filter((r) => r.offsetHeight > 0)
}

function focusRow(row) {
  row.tabIndex = -1
  row.focus({ preventScroll: true })
  row.scrollIntoView({ block: 'nearest' })
}

/**
 * The thread is one Tab stop (role=log): Up and Down move between its rows, Home and End go to
 * the first and the last, Enter opens the focused message's first link, Escape goes back to the
 * thread. Your own message's Edit and Delete are the next Tab stops while it has the focus.
 */
function keyboardInThread(thread) {
  threadEl.addEventListener('keydown', (e) => {
    if (e.target.closest('textarea, input, button, summary, form, [role=group]') || e.altKey || e.ctrlKey || e.metaKey) return
    const current = e.target === threadEl ? null : e.target.closest('.message, .notice, .outgoing')
    if (e.key === 'Enter' && current) {
      const link = current.querySelector('.text a')
      if (link) {
        e.preventDefault()
        link.click()
      }
      return
    }
    if (e.key === 'Escape' && current) {
      e.preventDefault()
      threadEl.focus()
      return
    }
    if ((e.key === 'e' || e.key === 'F2') && current?.classList.contains('own') && thread) {
      e.preventDefault()
      startEdit(current, thread)
      return
    }
    if (!['ArrowUp', 'ArrowDown', 'Home', 'End'].includes(e.key)) return
    if (!current && (e.key === 'Home' || e.key === 'End')) return
    const rows = navigableRows()
    if (rows.length === 0) return
    e.preventDefault()
    const view = threadEl.getBoundingClientRect()
    const inView = rows.filter((r) => {
      const box = r.getBoundingClientRect()
      return box.bottom > view.top + 1 && box.top < view.bottom - 1
    })
    let next
    if (e.key === 'Home') next = rows[0]
    else if (e.key === 'End') next = rows.at(-1)
    else if (!current) next = e.key === 'ArrowUp' ? (inView.at(-1) ?? rows.at(-1)) : (inView[0] ?? rows[0])
    else next = rows[rows.indexOf(current) + (e.key === 'ArrowUp' ? -1 : 1)]
    if (next) focusRow(next)
  })
  // The focused row's buttons are Tab stops; every other row's are not.
  threadEl.addEventListener('focusin', (e) => {
    const row = e.target.closest?.('.message, .outgoing')
    if (row && row.parentElement && (row.parentElement === threadEl || row.parentElement.classList.contains('outbox'))) {
      for (const button of row.querySelectorAll('.actions button')) button.tabIndex = 0
    }
  })
  threadEl.addEventListener('focusout', (e) => {
    const row = e.target.closest?.('.message, .outgoing')
    if (!row || (e.relatedTarget && row.contains(e.relatedTarget))) return
    for (const button of row.querySelectorAll('.actions button')) button.tabIndex = -1
    row.classList.remove('open')
  })
  if (!thread) return
  // Edit, Delete, and "⋯" (touch screens) on one's own messages.
  threadEl.addEventListener('click', (e) => {
    const button = e.target.closest('.actions button')
    if (!button) return
    const row = button.closest('.message')
    if (!row) return
    if (button.classList.contains('more')) {
      const open = !row.classList.contains('open')
      for (const other of threadEl.querySelectorAll(':scope > .message.open')) other.classList.remove('open')
      row.classList.toggle('open', open)
      button.setAttribute('aria-expanded', String(open))
    } else if (button.classList.contains('edit')) startEdit(row, thread)
    else if (button.classList.contains('delete')) confirmDelete(row, thread)
  })
}

/** The thread, the online list and the typing line, fed from one stream of events and signals: those of `chat`, the client library's room. */
export class Room {
  constructor(chat) {
    this.chat = chat
    this.thread = new Thread(chat)
    this.roster = new Roster(chat)
    this.typing = new TypingLine()
    /** Set by the page's links (page/outbox.ts): what is written and not confirmed yet, as rows. */
    this.outbox = null
    keyboardInThread(this.thread)
    // @name completion: recent senders first, then who is online.
    const list = document.getElementById('mention-list')
    if (list) {
      new MentionCompleter(messageBox, list, () => {
        const names = []
        const rows = threadEl.querySelectorAll(':scope > .message')
        for (let i = rows.length - 1; i >= 0 && names.length < 50; i--) names.push(rows[i].dataset.user)
        names.push(...[...this.roster.users.keys()].sort((a, b) => a.localeCompare(b)))
        return [...new Set(names)].filter((n) => n && n !== me)
      })
    }
    // Up in an empty box edits your last message (as in most chat apps).
    messageBox.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowUp' || messageBox.value !== '' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return
      const row = this.thread.lastOwn()
      if (!row) return
      e.preventDefault()
      row.scrollIntoView({ block: 'nearest' })
      startEdit(row, this.thread)
    })
  }

  get lastId() {
    return this.thread.lastId
  }

  /** Shows another room in place: the thread, the people and the typing line start over with `chat`. */
  switchTo(chat) {
    this.chat = chat
    this.thread.switchTo(chat)
    this.roster.switchTo(chat)
    this.typing.clear()
  }

  receive(items) {
    const events = items.filter((item) => typeof item.id === 'number')
    this.thread.add(events)
    this.roster.add(events)
    this.roster.signals(items)
    this.typing.add(items)
    this.outbox?.seen(events, this.thread.lastId)
  }

  /** Puts the focus back in the message box. */
  get composer() {
    return messageBox
  }
}

// Leaving: the page tells the server as it goes (closing the tab, going to another site), so
// others see the leave at once; a reload's new page is already holding the user by then.
// The refresh page has no Room: its thread still moves with the keyboard.
if (roomEl.dataset.transport === 'refresh') keyboardInThread(null)
