// The refresh page's room list (no stream there): its unread counts fetched again every 30 s
// while the page is visible. The live pages keep theirs from the person's stream (app.js).
import { roomEl } from './context.js'
import { el } from './dom.js'

export function keepRoomListFresh(): void {
  const list = document.getElementById('room-list')
  if (!list || roomEl.dataset.transport !== 'refresh') return
  setInterval(async () => {
    if (document.hidden) return
    try {
      const res = await fetch('/rooms', { headers: { accept: 'application/json' } })
      if (!res.ok) return
      const { rooms } = (await res.json()) as { rooms: { name: string; unread: number }[] }
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
          ;(badge as HTMLElement).title = `${room.unread} new`
        } else badge?.remove()
      }
    } catch {
      // The next round tries again.
    }
  }, 30_000)
}
