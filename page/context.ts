// What a room page is about, read once from the page the server drew (`#room`'s data): who is
// looking, which room, this page's id, the limits the server set. Every module of the page reads
// these here rather than from the DOM again.

/** The page's room section: its data attributes are the server's word on all of the below. */
export const roomEl = document.getElementById('room') as HTMLElement
/** The name of the person looking. */
export const me = roomEl.dataset.user ?? ''
/** A guest's page: only guest-marked messages of this name can be this person's own. */
export const iAmGuest = roomEl.dataset.guest === '1'
/** This page's id: sent with every request, so its leave ends only this page's connections. */
export const tab = roomEl.dataset.tab || ''
/** The longest message the server takes, in characters. */
export const maxLength = Number(roomEl.dataset.maxLength || 2000)
/** After how long without use this page says it is away (AWAY_AFTER), in milliseconds. */
export const awayAfterMs = (Number(roomEl.dataset.awayAfter) || 300) * 1000

/** This page's room (the lobby when the page does not say): every URL of the room is built from it. */
export let roomName = roomEl.dataset.room ? decodeURIComponent(roomEl.dataset.room) : 'lobby'

/** The page now shows room `name` (the app switched to it in place): every URL of the room follows. */
export function setRoomName(name: string): void {
  roomName = name
}

/** The thread's element: the messages, date lines and join/leave lines, and the outbox at its end. */
export const threadEl = document.getElementById('thread') as HTMLElement
