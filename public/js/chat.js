// Shared by the room pages: rendering events (always as text, never as HTML), keeping the
// reader's scroll position, the say form, and status lines.

export const roomEl = document.getElementById('room')
export const me = roomEl.dataset.user
const threadEl = document.getElementById('thread')
const statusEl = document.getElementById('status')
const flashEl = document.getElementById('flash')
const form = document.getElementById('say')
const input = document.getElementById('message')

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
    row.append(timeEl(event.timestamp), ' ', el('span', 'user', who), ' ', el('span', 'text', event.text ?? ''))
    return row
  }
  const row = el('div', 'notice')
  row.dataset.id = String(event.id)
  const verb = event.type === 'join' ? 'joined' : 'left'
  row.append(timeEl(event.timestamp), ' ', el('span', 'user', who), ` ${verb}${mine ? '' : ' the room'}`)
  return row
}

/**
 * The thread as a sequence of consecutive ids: shows each event once, in order, and says
 * when events were missed (the cursor fell out of the archive).
 */
export class Thread {
  constructor() {
    this.lastId = 0
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
        this.lastId = event.id
        added++
      }
    })
    return added
  }

  /** The room restarted without its history: start over. */
  reset() {
    this.lastId = 0
    keepingScroll((thread) => thread.append(el('div', 'notice gap', 'The room restarted.')))
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
