// Presence of a person, from this page: it tells the server when the page is away (hidden, or
// idle for AWAY_AFTER) and when it is in use again. A person is away when every page of theirs
// is: the server decides it across tabs, devices and processes, and tells those who share a room
// with them.

export function reportAway(tab: string | undefined, awayAfterMs: number): void {
  if (!tab) return
  let away = false
  let timer: ReturnType<typeof setTimeout> | undefined
  let lastActive = 0
  const send = (presence: 'away' | 'online') =>
    fetch('/presence', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ presence, tab }), keepalive: true }).catch(() => {
      // Presence is best effort: the next change says it again.
    })
  const set = (next: boolean) => {
    if (next === away) return
    away = next
    void send(next ? 'away' : 'online')
  }
  const idleLater = () => {
    clearTimeout(timer)
    timer = setTimeout(() => set(true), awayAfterMs)
  }
  const active = () => {
    if (document.visibilityState !== 'visible') return
    // Pointer moves come by the hundred: the timer is reset at most once a second.
    const now = Date.now()
    if (!away && now - lastActive < 1000) return
    lastActive = now
    set(false)
    idleLater()
  }
  document.addEventListener('visibilitychange', () => (document.visibilityState === 'hidden' ? set(true) : active()))
  for (const type of ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'focus']) addEventListener(type, active, { passive: true })
  if (document.visibilityState === 'hidden') set(true)
  else idleLater()
}
