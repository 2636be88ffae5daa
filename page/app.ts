// The app shell of the live pages: one connection per tab (the person's stream), the room list
// kept live from it (unread counts, mentions of you, new rooms and direct messages), the tab's
// title and notifications for what happens in the other rooms, and switching rooms in place
// (the URL follows; back and reload land where you were). The thread, the people and the
// composer are the page's other modules; the connection and the rooms are the client library's.
import type { FollowStream } from '../client/follow.js'
import type { Item, MessageEvent } from '../client/protocol.js'
import { mentions } from '../client/render.js'
import { me, roomEl, roomName, setRoomName } from './context.js'
import { el } from './dom.js'
import { inviteInPlace } from './invite.js'
import { unreadBadge } from './rooms.js'

const asideEl = document.getElementById('people') as HTMLElement

/** What came in a room not shown: messages from others, mentions of you, and up to which event the count goes. */
interface News {
  unread: number
  mentions: number
  upTo: number
}

/** Counts of what came in the rooms not shown. */
const news = new Map<string, News>()

/** A room's entry in the list (the `li`), if listed. */
const itemOf = (room: string) => document.querySelector<HTMLElement>(`#room-list li[data-room="${CSS.escape(room)}"]`)

/** Draws a room's unread count and its mention badge, and the tab's title. */
function drawNews(room: string): void {
  const item = itemOf(room)
  const counts = news.get(room)
  if (item) {
    item.querySelector('.unread')?.remove()
    item.querySelector('.mentioned')?.remove()
    if (counts?.mentions) {
      const badge = el('span', 'mentioned', `@${counts.mentions}`)
      badge.title = `${counts.mentions} mention${counts.mentions === 1 ? '' : 's'} of you`
      item.append(' ', badge)
    }
    if (counts?.unread) item.append(' ', unreadBadge(counts.unread))
  }
  drawTitle()
}

/** The tab's title says how many mentions of you and direct messages wait in the other rooms. */
const baseTitle = () => document.title.replace(/^\[\d+\] /, '')
function drawTitle(): void {
  let waiting = 0
  for (const [room, counts] of news) waiting += counts.mentions + (room.startsWith('dm-') ? counts.unread : 0)
  const title = baseTitle()
  document.title = waiting > 0 ? `[${waiting}] ${title}` : title
}

/** A notification (when allowed, and the tab is hidden) for a direct message or a mention elsewhere. */
function notify(room: string, event: MessageEvent, why: 'dm' | 'mention'): void {
  if (!document.hidden || typeof Notification === 'undefined' || Notification.permission !== 'granted') return
  try {
    const note = new Notification(why === 'dm' ? `${event.user} wrote to you` : `${event.user} mentioned you in #${room}`, { body: event.text ?? '', tag: `${room}-${event.id}` })
    note.onclick = () => {
      focus()
      note.close()
    }
  } catch {
    // Some browsers allow notifications only from a service worker: the title still says it.
  }
}

/** What happened in a room not shown: counted in the list (never your own messages). */
function elsewhere(room: string, items: readonly Item[]): void {
  const counts = news.get(room) ?? { unread: 0, mentions: 0, upTo: 0 }
  let changed = false
  for (const item of items) {
    // What the server's count (drawn or fetched) took in already is not counted again.
    if ('id' in item && typeof item.id === 'number') {
      if (item.id <= counts.upTo) continue
      counts.upTo = item.id
    }
    if (item.type !== 'message' || item.user === me) continue
    counts.unread++
    changed = true
    const mentioned = mentions(item.text ?? '', me)
    if (mentioned) counts.mentions++
    if (room.startsWith('dm-')) notify(room, item, 'dm')
    else if (mentioned) notify(room, item, 'mention')
  }
  if (!changed) return
  news.set(room, counts)
  drawNews(room)
}

/**
 * The counts the server drew in the list (since each room's read marker) become the live ones;
 * the mentions counted here stay (the server does not draw them).
 */
function adoptBadges(): void {
  for (const item of document.querySelectorAll<HTMLElement>('#room-list li[data-room]')) {
    const room = item.dataset.room ?? ''
    const counts = news.get(room) ?? { unread: 0, mentions: 0, upTo: 0 }
    const drawn = item.querySelector('.unread')?.textContent ?? ''
    counts.unread = room === roomName ? 0 : drawn.startsWith('99+') ? 100 : Number.parseInt(drawn, 10) || 0
    // The server counted up to the room's last event when it drew the list.
    counts.upTo = Math.max(counts.upTo, Number(item.dataset.last) || 0)
    if (room === roomName) counts.mentions = 0
    news.set(room, counts)
  }
  for (const room of news.keys()) drawNews(room)
  drawTitle()
}

/** The room list again from the server (a room joined, a DM opened to you, an invitation), keeping the live counts. */
async function refreshList(): Promise<void> {
  try {
    const res = await fetch('/rooms', { headers: { accept: 'application/json' } })
    if (!res.ok) return
    const { rooms } = (await res.json()) as { rooms: { name: string; title: string; visibility: string; lastId: number; unread: number }[] }
    const list = document.getElementById('room-list')
    if (!list) return
    const way = roomEl.dataset.transport || 'auto'
    for (const room of rooms) {
      if (itemOf(room.name)) continue
      const item = el('li', 'new-room')
      item.dataset.room = room.name
      item.dataset.last = String(room.lastId)
      const link = el('a', '', room.visibility === 'direct' ? room.title : `#${room.name}`)
      link.href = room.name === 'lobby' ? `/${way}/room` : `/${way}/rooms/${encodeURIComponent(room.name)}`
      item.append(link)
      if (room.visibility === 'private') item.append(' ', el('span', 'hint', '(private)'))
      list.append(item)
      if (room.name !== roomName) {
        // The server's count up to its last event; what the stream brought past it stays counted.
        const counts = news.get(room.name) ?? { unread: 0, mentions: 0, upTo: 0 }
        if (room.lastId > counts.upTo) {
          counts.unread = room.unread
          counts.upTo = room.lastId
        }
        news.set(room.name, counts)
        drawNews(room.name)
      }
    }
  } catch {
    // The next change tries again.
  }
}

/**
 * Swaps the page to another room without loading it: the server's page for that room gives the
 * sidebar and the room's settings (who may invite, its topic, its read marker); `show` then
 * gives the thread its room. Falls back to loading the page when that fails.
 */
async function switchTo(url: string, show: (room: string) => void, push: boolean, leaving?: () => Promise<void>): Promise<void> {
  let doc: Document
  try {
    // The room left is read up to what was shown, before the next page's list counts it (a second at most).
    if (leaving) await Promise.race([leaving(), new Promise((resolve) => setTimeout(resolve, 1000))])
    const res = await fetch(url, { headers: { accept: 'text/html' } })
    if (!res.ok || !res.headers.get('content-type')?.includes('text/html')) throw new Error(String(res.status))
    doc = new DOMParser().parseFromString(await res.text(), 'text/html')
  } catch {
    return location.assign(url)
  }
  const next = doc.getElementById('room')
  const nextAside = doc.getElementById('people')
  if (!next || !nextAside) return location.assign(url)
  const name = next.dataset.room ? decodeURIComponent(next.dataset.room) : 'lobby'
  for (const key of ['room', 'epoch', 'seen', 'where', 'member', 'dm', 'guest', 'moderator', 'slow']) {
    const value = next.dataset[key]
    if (value === undefined) delete roomEl.dataset[key]
    else roomEl.dataset[key] = value
  }
  setRoomName(name)
  // The sidebar: the server's for that room, with this page's list of people kept (it is redrawn).
  const users = document.getElementById('users')
  const fresh = [...nextAside.childNodes].map((node) => document.adoptNode(node))
  asideEl.replaceChildren(...fresh)
  if (users) document.getElementById('users')?.replaceWith(users)
  inviteInPlace(document.getElementById('invite-form') as HTMLFormElement | null)
  const say = document.getElementById('say') as HTMLFormElement | null
  const nextSay = doc.getElementById('say') as HTMLFormElement | null
  if (say && nextSay) say.action = nextSay.action
  document.title = doc.title
  // A direct room's line of presence goes with its room.
  const over = document.getElementById('dm-with')
  const nextOver = doc.getElementById('dm-with')
  if (nextOver) {
    const adopted = document.adoptNode(nextOver)
    if (over) over.replaceWith(adopted)
    else document.querySelector('.room-bar')?.prepend(adopted)
  } else over?.remove()
  const hint = document.querySelector('#thread .empty-thread')
  const nextHint = doc.querySelector('#thread .empty-thread')
  if (hint && nextHint) hint.textContent = nextHint.textContent
  if (push) history.pushState({ room: name }, '', url)
  adoptBadges()
  show(name)
}

/**
 * Runs the app shell over `stream` (the library's person's stream): `show(name)` shows a room
 * in place. Room links of the list switch in place; back and forward too.
 */
export function appShell(stream: FollowStream, show: (room: string) => void, leaving?: () => Promise<void>): void {
  adoptBadges()
  stream.on('room', (room, items) => {
    if (room !== roomName) elsewhere(room, items)
  })
  // The presence of the other person of each direct room, beside it in the list.
  stream.on('presence', ({ user, presence }) => {
    // Over a direct room's thread: the other person, in words.
    const over = document.getElementById('dm-with')
    if (over?.dataset.with === user) {
      over.querySelector('.dot')?.setAttribute('class', `dot ${presence}`)
      const words = over.querySelector('.words')
      if (words) words.textContent = `${user} is ${presence}`
    }
    for (const item of document.querySelectorAll(`#room-list li[data-with="${CSS.escape(user)}"]`)) {
      const dot = item.querySelector<HTMLElement>('.dot')
      if (!dot) continue
      dot.className = `dot ${presence}`
      dot.title = `${user} is ${presence}`
      dot.setAttribute('aria-label', `${user} is ${presence}`)
    }
  })
  stream.on('person', (event) => {
    if (event.kind === 'direct' || event.kind === 'invited' || event.kind === 'joined' || event.kind === 'renamed') void refreshList()
    if (event.kind === 'left' || event.kind === 'removed') {
      itemOf(event.room)?.remove()
      news.delete(event.room)
      drawTitle()
    }
    // Read on another device: its count goes.
    if (event.kind === 'read' && event.room !== roomName && news.has(event.room)) {
      news.delete(event.room)
      drawNews(event.room)
    }
  })
  // Room links switch in place (a click with a modifier opens a new tab as usual).
  asideEl?.addEventListener('click', (e) => {
    // The phone's Close of a sidebar swapped in (its own listener went with the old one).
    if (e.target instanceof Element && e.target.closest('#close-people') && document.body.classList.contains('people-open')) {
      e.preventDefault()
      document.body.classList.remove('people-open')
      return
    }
    const link = e.target instanceof Element ? e.target.closest<HTMLAnchorElement>('#room-list a[href]') : null
    if (!link || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
    const url = new URL(link.href, location.href)
    if (url.origin !== location.origin) return
    e.preventDefault()
    // On a phone the list is a panel over the thread: it closes.
    document.body.classList.remove('people-open')
    if (location.hash === '#people') history.replaceState(history.state, '', location.pathname + location.search)
    if (url.pathname === location.pathname) return
    void switchTo(url.pathname, show, true, leaving)
  })
  addEventListener('popstate', () => void switchTo(location.pathname, show, false, leaving))
  history.replaceState({ room: roomName }, '', location.href)
}
