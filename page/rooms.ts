// The room list's unread badges: drawn by the live pages from the person's stream (app.ts) and,
// on the refresh page (no stream there), from /rooms every 30 s while the page is visible.
import { el } from './dom.js'

/** A room's unread count as the list shows it (the server's templates draw the same). */
export function unreadBadge(unread: number): HTMLSpanElement {
  const badge = el('span', 'unread', unread > 99 ? '99+' : String(unread))
  badge.title = `${unread} new`
  badge.append(el('span', 'visually-hidden', ' new'))
  return badge
}

/** The refresh page's list: its unread counts fetched again every 30 s while the page is visible. */
export function keepRoomListFresh(): void {
  const list = document.getElementById('room-list')
  if (!list) return
  setInterval(async () => {
    if (document.hidden) return
    try {
      const res = await fetch('/rooms', { headers: { accept: 'application/json' } })
      if (!res.ok) return
      const { rooms } = (await res.json()) as { rooms: { name: string; unread: number }[] }
      for (const room of rooms) {
        const item = list.querySelector(`li[data-room="${CSS.escape(room.name)}"]`)
        if (!item || item.classList.contains('current')) continue
        const badge = item.querySelector('.unread')
        if (room.unread === 0) badge?.remove()
        else if (badge) badge.replaceWith(unreadBadge(room.unread))
        else item.append(' ', unreadBadge(room.unread))
      }
    } catch {
      // The next round tries again.
    }
  }, 30_000)
}
