// Active refresh, with JavaScript: every few seconds, the events after the last one shown
// (drawn by the server) are appended, with who is here and who is typing; sending stays on
// the page. Without JavaScript the page reloads itself and the form posts as usual.
import { arrangeAll, arrangeFrom, keepingScroll, onSay, onTyping, roomEl, setStatus, setTyping, showError, showUsers, signedOut, tab } from './chat.js'

const interval = Number(roomEl.dataset.interval || 5) * 1000
const threadEl = document.getElementById('thread')
let lastId = Number(roomEl.dataset.lastId || 0)
const epoch = roomEl.dataset.epoch || ''
let timer = null
/** This room's routes: /refresh/room for the lobby, /refresh/rooms/NAME for another room. */
const base = roomEl.dataset.base || '/refresh/room'

async function refresh() {
  clearTimeout(timer)
  try {
    const query = new URLSearchParams({ lastReceived: String(lastId), epoch, tab })
    const res = await fetch(`${base}/thread?${query}`, { headers: { accept: 'text/html' } })
    if (res.status === 401) return signedOut()
    // Another log of the room (or too far behind): the page starts over.
    if (res.status === 409) return location.assign(base)
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    // Parsed by the browser from the server's escaped HTML: no user text is ever put in as markup here.
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html')
    const fresh = doc.getElementById('thread')
    const users = doc.getElementById('users')
    const typing = doc.getElementById('typing')
    if (!fresh || !users || !typing) throw new Error('unexpected answer')
    const rows = [...fresh.children].filter((node) => node.dataset.id && Number(node.dataset.id) > lastId)
    if (rows.length > 0) {
      keepingScroll((thread) => {
        thread.append(...rows)
        arrangeFrom(rows[0])
      })
      lastId = Number(rows.at(-1).dataset.id)
    }
    showUsers(users, Number(users.dataset.count || 0))
    setTyping(typing.textContent)
    setStatus('')
  } catch {
    setStatus('Could not reach the server; trying again…')
  }
  timer = setTimeout(refresh, interval)
}

onSay(async (text) => {
  try {
    const res = await fetch(base, {
      method: 'POST',
      headers: { accept: 'application/json' },
      body: new URLSearchParams({ message: text, tab }),
    })
    if (res.status === 401) return signedOut()
    if (!res.ok) {
      const body = await res.json().catch(() => ({}))
      return body.message || `Not sent (HTTP ${res.status}); your message is still in the box.`
    }
    void refresh()
    return ''
  } catch {
    return 'Not sent: the server cannot be reached. Your message is still in the box.'
  }
})

onTyping(() => {
  fetch(`${base}/typing`, { method: 'POST' }).catch(() => {})
})

arrangeAll()
threadEl.scrollTop = threadEl.scrollHeight
// An error the server drew (a refused message without JavaScript) goes with the next success.
if (!document.getElementById('flash').hidden) showError(document.getElementById('flash').textContent)
// A page of older history stays put; the newest messages reload.
if (!roomEl.dataset.history) timer = setTimeout(refresh, interval)
