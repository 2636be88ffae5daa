// Active refresh: reload only the thread every few seconds, keeping the reader's place.
import { keepingScroll, roomEl, setStatus, signedOut } from './chat.js'

const interval = Number(roomEl.dataset.interval || 5) * 1000

function localTimes(root) {
  for (const t of root.querySelectorAll('time[datetime]')) {
    t.textContent = new Date(t.dateTime).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
  }
}

async function refresh() {
  try {
    const res = await fetch('/refresh/room/thread', { headers: { accept: 'text/html' } })
    if (res.status === 401) return signedOut()
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    // Parsed by the browser from the server's escaped HTML: no user text is ever put in as markup here.
    const doc = new DOMParser().parseFromString(await res.text(), 'text/html')
    const fresh = doc.getElementById('thread')
    const users = doc.getElementById('users')
    const history = doc.getElementById('history')
    if (!fresh || !users || !history) throw new Error('unexpected answer')
    localTimes(fresh)
    keepingScroll((thread) => thread.replaceChildren(...fresh.childNodes))
    document.getElementById('users').replaceChildren(...users.childNodes)
    document.getElementById('history').replaceChildren(...history.childNodes)
    setStatus('')
  } catch {
    setStatus('Could not reach the server; trying again…')
  }
}

localTimes(document)
keepingScroll(() => {})
document.getElementById('thread').scrollTop = 1e9
// A page of older history stays put; the newest messages reload.
if (!roomEl.dataset.history) setInterval(refresh, interval)
