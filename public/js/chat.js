// What every room page starts with (the live pages and the refresh page): presence of this page,
// the invitation form in place, and, on the refresh page, the room list's counts and the keyboard
// in the thread. The page's work is in its TypeScript modules (page/, served at /public/js/page/):
// this file starts them and hands the pages' other scripts (links.js, app.js, refresh.js, auto.js)
// what they use, until those move to page/ too.
import { reportAway } from './page/away.js'
import { inviteInPlace } from './page/invite.js'
import { awayAfterMs, roomEl, tab } from './page/context.js'
import { keyboardInThread } from './page/edit.js'
import { keepRoomListFresh } from './page/rooms.js'

export { me, roomEl, roomName, setRoomName, tab } from './page/context.js'
export { avatarEl, el, keepingScroll, textWithLinks } from './page/dom.js'
export { Roster, TypingLine, setTyping, showUsers } from './page/people.js'
export { messageLength, typingText } from './client/render.js'
export { onCompose, onSay, onTyping } from './page/composer.js'
export { isLeaving, nameTaken, setStatus, showConnection, showError, signedOut } from './page/status.js'
export { arrangeAll, arrangeFrom, renderEvent } from './page/rows.js'
export { Thread } from './page/thread.js'
export { Room } from './page/room.js'

reportAway(tab, awayAfterMs)
inviteInPlace(document.getElementById('invite-form'))
keepRoomListFresh()
// The refresh page has no Room: its thread still moves with the keyboard.
if (roomEl.dataset.transport === 'refresh') keyboardInThread(null)
