// WebSocket: one connection both ways. After a drop it reconnects with backoff and resumes
// from the last id it has, so nothing is missed and nothing is shown twice.
import { Room, backoff, onSay, onTyping, setStatus, showError } from './chat.js'
import { CloseCode } from './protocol.js'

const room = new Room()
const thread = room.thread
let socket = null
let failures = 0

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const cursor = thread.lastId > 0 ? `?lastReceived=${thread.lastId}` : ''
  const ws = new WebSocket(`${scheme}//${location.host}/websocket/room/socket${cursor}`)
  socket = ws
  let first = true
  ws.addEventListener('open', () => {
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
    else if (data && data.error) showError(data.message)
  })
  ws.addEventListener('close', (e) => {
    if (socket !== ws) return
    socket = null
    if (e.code === CloseCode.unauthorized) {
      location.assign('/')
      return
    }
    if (e.code === CloseCode.cursorAhead) thread.reset()
    const wait = e.code === CloseCode.cursorAhead ? 0 : backoff(failures++)
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
