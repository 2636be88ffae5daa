// Active refresh, with JavaScript: every few seconds, the events after the last one shown
// (drawn by the server) are appended, with who is here and who is typing; edits and deletions
// are applied to the messages shown; sending, editing and deleting stay on the page. Without
// JavaScript the page reloads itself and the forms post as usual.
import './start.js'
import { joinLeaveWords } from '../client/render.js'
import { onSay, onTyping } from './composer.js'
import { me, roomEl, roomName, tab, threadEl } from './context.js'
import { el, fullFormat, keepingScroll, atBottom } from './dom.js'
import { keyboardInThread } from './edit.js'
import { setTyping, showUsers } from './people.js'
import { keepRoomListFresh } from './rooms.js'
import { arrangeAll, arrangeFrom, dayKey } from './rows.js'
import { setStatus, showError, signedOut } from './status.js'
import { markRead, Unseen } from './thread.js'

const interval = Number(roomEl.dataset.interval || 5) * 1000
let lastId = Number(roomEl.dataset.lastId || 0)
const epoch = roomEl.dataset.epoch || ''
let timer: ReturnType<typeof setTimeout> | undefined
/** This room's routes: /refresh/room for the lobby, /refresh/rooms/NAME for another room. */
const base = roomEl.dataset.base || '/refresh/room'
/** The read marker, as the live pages' library room keeps it: POST /rooms/NAME/read. */
const reader = {
  markRead: (id: number) => fetch(`/rooms/${encodeURIComponent(roomName)}/read`, { method: 'POST', body: new URLSearchParams({ id: String(id) }) }).then(() => undefined),
}

/** What arrives while the reader cannot see it, counted as on the live pages: a pill when scrolled up, the tab's title when hidden. */
const unseen = new Unseen()
document.addEventListener('visibilitychange', () => {
  if (!document.hidden && atBottom()) markRead(reader, lastId)
})

/** A row of one's own message gets its Edit and Delete forms (the page's template, made for this message). */
const ownTemplate = document.getElementById('own-actions') as HTMLTemplateElement | null
function withOwnActions(row: HTMLElement): void {
  const template = ownTemplate?.content.firstElementChild
  const body = row.querySelector('.body')
  if (!template || !body || !row.matches('.message.mine:not(.deleted)') || row.querySelector('.own-forms')) return
  const own = template.cloneNode(true) as HTMLElement
  const id = row.dataset.id ?? ''
  for (const f of own.querySelectorAll('form')) {
    f.action = (f.getAttribute('action') ?? '').replace('/0/', `/${id}/`)
    const back = f.elements.namedItem('back') as HTMLInputElement | null
    if (back) back.value = back.value.replace(/#m0$/, `#m${id}`)
  }
  const box = own.querySelector('textarea')
  const text = row.querySelector<HTMLElement>('.text')
  if (box) box.value = text?.dataset.source ?? text?.textContent ?? ''
  body.append(own)
}

/**
 * Nothing in the thread is a Tab stop (the thread is one; its links the server drew so):
 * messages take focus from the arrow keys, and a focused message's Edit and Delete from Tab.
 */
function quiet(rows: Iterable<Element>): void {
  for (const row of rows as Iterable<HTMLElement>) {
    if (row.matches('.message')) row.tabIndex = -1
    for (const summary of row.querySelectorAll<HTMLElement>('.own-forms summary, .social-forms summary, .reactions button')) summary.tabIndex = -1
  }
}

/** A new notice after a notice of the same day: one line for both (as the server draws them). */
function foldInto(line: HTMLElement | null, row: HTMLElement): boolean {
  if (!line?.matches('.notice[data-joined]') || !row.matches('.notice[data-joined]') || dayKey(Number(line.dataset.ts)) !== dayKey(Number(row.dataset.ts))) return false
  const union = (a: string | undefined, b: string | undefined): string[] => [...new Set([...(JSON.parse(a || '[]') as string[]), ...(JSON.parse(b || '[]') as string[])])]
  const joined = union(line.dataset.joined, row.dataset.joined)
  const left = union(line.dataset.left, row.dataset.left)
  const words = joinLeaveWords(joined, left, me).map((w) => (w.user ? el('span', 'user', w.text) : document.createTextNode(w.text)))
  line.replaceChildren(...words, ' ', row.querySelector('time') ?? '')
  Object.assign(line.dataset, { id: row.dataset.id ?? '', ts: row.dataset.ts ?? '', user: row.dataset.user ?? '', joined: JSON.stringify(joined), left: JSON.stringify(left) })
  const shown = words.filter((w) => w.nodeType === Node.ELEMENT_NODE).length
  if (shown < joined.length + left.length) line.title = [joined.length ? `Joined: ${joined.join(', ')}.` : '', left.length ? `Left: ${left.join(', ')}.` : ''].filter(Boolean).join(' ')
  return true
}

/** An edit or a deletion of a message on the page, applied to it; a reaction or a reply in its thread: the message as it stands now, in its place. */
function applyChange(change: HTMLElement): void {
  const row = document.getElementById(`m${change.dataset.ref}`)
  if (change.dataset.change === 'message') {
    const now = change.querySelector<HTMLElement>('.message')
    if (!row || !now) return
    // What is open on it (a reply being written, an edit) stays as it is: it is drawn again on the next change.
    if (row.querySelector('details[open]')) return
    now.classList.toggle('cont', row.classList.contains('cont'))
    withOwnActions(now)
    localTimes(now)
    quiet([now])
    row.replaceWith(now)
    return
  }
  const content = row?.querySelector('.content')
  if (!row || !content || row.classList.contains('deleted')) return
  if (change.dataset.change === 'delete') {
    row.classList.add('deleted')
    content.replaceChildren(el('p', 'gone', 'message deleted'))
    row.querySelector('.own-forms')?.remove()
    return
  }
  const text = change.querySelector('.text')
  const mark = change.querySelector('.edited')
  if (!text || !mark) return
  content.replaceChildren(text, ' ', mark)
  const box = row.querySelector<HTMLTextAreaElement>('.own-forms textarea')
  // What is being typed in an open edit stays.
  if (box && !box.closest('details')?.open) box.value = text.textContent ?? ''
  localTimes(row)
}

/** Edit marks say when in the reader's own time. */
function localTimes(root: ParentNode): void {
  for (const mark of root.querySelectorAll<HTMLElement>('.edited[data-ts]')) mark.title = `Edited ${fullFormat.format(Number(mark.dataset.ts))}`
}

async function refresh(): Promise<void> {
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
    const news = ([...fresh.children] as HTMLElement[]).filter((node) => node.dataset.id && Number(node.dataset.id) > lastId)
    const changes = news.filter((node) => node.classList.contains('change'))
    const rows = news.filter((node) => !node.classList.contains('change'))
    let followed = keepingScroll((thread) => {
      const line = thread.lastElementChild as HTMLElement | null
      if (rows[0] && foldInto(line, rows[0])) {
        rows.shift()
        arrangeFrom(line)
      }
      for (const row of rows) {
        withOwnActions(row)
        localTimes(row)
      }
      quiet(rows)
      thread.append(...rows)
      arrangeFrom(rows[0] ?? null)
      for (const change of changes) applyChange(change)
    })
    if (news.length > 0) lastId = Math.max(lastId, ...news.map((n) => Number(n.dataset.id)))
    // What you just sent is where you look: the thread goes to it.
    if (!followed && rows.some((r) => r.matches('.message.mine'))) {
      threadEl.scrollTop = threadEl.scrollHeight
      unseen.seenBelow()
      followed = true
    }
    unseen.add(rows.filter((r) => r.matches('.message:not(.mine)')).length, followed)
    if (news.length > 0 && followed && !document.hidden) markRead(reader, lastId)
    showUsers(users, Number(users.dataset.count || 0))
    setTyping(typing.textContent ?? '')
    setStatus('')
  } catch {
    setStatus('Could not reach the server; trying again…')
  }
  if (!roomEl.dataset.history) timer = setTimeout(refresh, interval)
}

/** The message id of the text being sent: the same text sent again after a failure is the same message (posted once). */
let pending = { text: '', clientId: '' }
// (The box counts near the limit and sends nothing over it.)
onSay(async (text) => {
  if (pending.text !== text) pending = { text, clientId: crypto.randomUUID() }
  try {
    const res = await fetch(base, {
      method: 'POST',
      headers: { accept: 'application/json' },
      body: new URLSearchParams({ message: text, tab, clientId: pending.clientId }),
    })
    if (res.status === 401) {
      signedOut()
      return ''
    }
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as { message?: string }
      return body.message || `Not sent (HTTP ${res.status}); your message is still in the box.`
    }
    pending = { text: '', clientId: '' }
    void refresh()
    return ''
  } catch {
    return 'Not sent: the server cannot be reached. Your message is still in the box.'
  }
})

onTyping(() => {
  fetch(`${base}/typing`, { method: 'POST' }).catch(() => {})
})

// Editing and deleting one's own messages stays on the page: the change comes back with the
// next refresh (without JavaScript the forms post and come back to the page).
threadEl.addEventListener('submit', async (e) => {
  const own = (e.target as HTMLElement).closest<HTMLFormElement>('.own-forms form')
  // A page of history has no refresh: its forms post and come back to the message.
  if (!own || roomEl.dataset.history) return
  e.preventDefault()
  if (own.getAttribute('aria-busy')) return
  own.setAttribute('aria-busy', 'true')
  try {
    const res = await fetch(own.action, { method: 'POST', headers: { accept: 'application/json' }, body: new URLSearchParams(new FormData(own) as unknown as Record<string, string>) })
    if (res.status === 401) return signedOut()
    if (!res.ok) {
      const body = (await res.json().catch(() => ({}))) as { message?: string }
      return showError(body.message || `Not changed (HTTP ${res.status}).`)
    }
    showError('')
    const details = own.closest('details')
    if (details) details.open = false
    details?.querySelector('summary')?.focus()
    await refresh()
  } catch {
    showError('Not changed: the server cannot be reached.')
  } finally {
    own.removeAttribute('aria-busy')
  }
})

threadEl.addEventListener('keydown', (e) => {
  // In an edit: Enter saves, Shift+Enter starts a new line, Escape puts it away.
  const box = e.target as HTMLTextAreaElement
  if (box.matches('.own-forms textarea')) {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault()
      box.form?.requestSubmit()
    } else if (e.key === 'Escape') {
      const details = box.closest('details')
      if (details) details.open = false
      details?.querySelector('summary')?.focus()
    }
  }
})

// A focused message's Edit and Delete are Tab stops; nothing else in the thread is.
threadEl.addEventListener('focusin', (e) => {
  const row = (e.target as HTMLElement).closest('.message')
  for (const summary of threadEl.querySelectorAll<HTMLElement>('.own-forms summary, .social-forms summary, .reactions button')) summary.tabIndex = row?.contains(summary) ? 0 : -1
})
threadEl.addEventListener('focusout', (e) => {
  if (e.relatedTarget instanceof Node && threadEl.contains(e.relatedTarget)) return
  for (const summary of threadEl.querySelectorAll<HTMLElement>('.own-forms summary, .social-forms summary, .reactions button')) summary.tabIndex = -1
})

arrangeAll()
quiet(threadEl.children)
localTimes(threadEl)
// A link to one message (from the search) shows it; otherwise the newest.
const target = location.hash.startsWith('#m') ? document.getElementById(location.hash.slice(1)) : null
if (target && threadEl.contains(target)) target.scrollIntoView({ block: 'center' })
else threadEl.scrollTop = threadEl.scrollHeight
// An error the server drew (a refused message without JavaScript) goes with the next success.
const flash = document.getElementById('flash')
if (flash && !flash.hidden) showError(flash.textContent ?? '')
keepRoomListFresh()
// The thread moves with the keyboard (its rows' forms are the server's).
keyboardInThread(null)
// A page of older history stays put; the newest messages reload.
if (!roomEl.dataset.history) timer = setTimeout(refresh, interval)
