// WebSocket: one connection both ways. After a drop it reconnects with backoff and resumes
// from the last id it has, so nothing is missed and nothing is shown twice.
import { Room, backoff, nameTaken, onSay, onTyping, sessionGone, setStatus, showError, signedOut } from './chat.js'
import { CloseCode } from './protocol.js'

const room = new Room()
const thread = room.thread
let socket = null
let failures = 0

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const cursor = thread.cursor()
  const ws = new WebSocket(`${scheme}//${location.host}/websocket/room/socket${cursor ? '?' + cursor : ''}`)
  socket = ws
  let first = true
  let opened = false
  ws.addEventListener('open', () => {
    opened = true
    failures = 0
    setStatus('')
  })
  ws.addEventListener('message', (e) => {
    const data = JSON.parse(e.data)
    if (Array.isArray(data)) {
      room.receive(data)
      // After the archive (or what we missed), a fresh list of who is here.
      if (first) room.roster.resync()
      first = false
    }
    else if (data && data.type === 'hello') thread.adopt(data.epoch)
    else if (data && data.error) showError(data.message)
  })
  ws.addEventListener('close', async (e) => {
    if (socket !== ws) return
    socket = null
    if (e.code === CloseCode.nameTaken) return nameTaken()
    // Signed out (4401), or refused before it opened (a browser does not say why): the session may
    // be gone, or replaced by a new sign-in in another tab; only a gone one leaves the room.
    if ((e.code === CloseCode.unauthorized || !opened) && (await sessionGone())) return signedOut()
    // Another log of the room, or too far behind: start over from the newest.
    if (e.code === CloseCode.startOver) thread.reset()
    const wait = e.code === CloseCode.startOver ? 0 : backoff(failures++)
    setStatus(`Disconnected; reconnecting in ${Math.round(wait / 1000)} s…`)
    setTimeout(connect, wait)
  })
}

onSay(async (text) => {
  if (!socket || socket.readyState !== WebSocket.OPEN) return 'Not connected right now; try again in a moment.'
  socket.send(JSON.stringify({ text }))
  return ''
})

onTyping(() => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ typing: true }))
})

connect()
