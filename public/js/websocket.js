// WebSocket: one connection both ways. After a drop it reconnects with backoff and resumes
// from the last id it has, so nothing is missed and nothing is shown twice. A message leaves
// the box only when the server acknowledged it.
import { Room, backoff, isLeaving, nameTaken, onSay, onTyping, sessionGone, setStatus, showError, signedOut, tab } from './chat.js'
import { CloseCode } from './protocol.js'

const room = new Room()
const thread = room.thread
let socket = null
let failures = 0
/** Messages sent and not yet answered: ref -> resolve('' or why not). */
const pending = new Map()
let refs = 0
/** How long a sent message may wait for the server's answer before the page says so. */
const ACK_TIMEOUT_MS = 10_000

function settleAll(why) {
  for (const resolve of pending.values()) resolve(why)
  pending.clear()
}

function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
  const query = [thread.cursor(), tab && `tab=${encodeURIComponent(tab)}`].filter(Boolean).join('&')
  const ws = new WebSocket(`${scheme}//${location.host}/websocket/room/socket${query ? '?' + query : ''}`)
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
    } else if (data?.type === 'hello') thread.adopt(data.epoch)
    else if (data?.type === 'ack') pending.get(data.ref)?.('')
    else if (data?.error) {
      // The answer to one of ours (kept in its box), or about the connection.
      const resolve = pending.get(data.ref)
      if (resolve) resolve(data.message)
      else showError(data.message)
    }
    if (data?.ref !== undefined) pending.delete(data.ref)
  })
  ws.addEventListener('close', async (e) => {
    if (socket !== ws) return
    socket = null
    settleAll('The connection dropped before the server confirmed this message; it is still in the box. Send it again once reconnected.')
    if (isLeaving()) return
    if (e.code === CloseCode.nameTaken) return nameTaken()
    if (e.code === CloseCode.left) return location.assign('/')
    // Signed out (4401), or refused before it opened (a browser does not say why): the session may
    // be gone, or replaced by a new sign-in in another tab; only a gone one leaves the room.
    if ((e.code === CloseCode.unauthorized || !opened) && (await sessionGone())) return signedOut()
    // Another log of the room, or too far behind: start over from the newest.
    if (e.code === CloseCode.startOver) thread.reset()
    const wait = e.code === CloseCode.startOver ? 0 : backoff(failures++)
    setStatus('Disconnected; reconnecting {s}…', Date.now() + wait)
    setTimeout(connect, wait)
  })
}

onSay(
  (text) =>
    new Promise((resolve) => {
      if (!socket || socket.readyState !== WebSocket.OPEN) return resolve('Not connected right now; your message is still in the box. Send it again once reconnected.')
      const ref = String(++refs)
      pending.set(ref, resolve)
      socket.send(JSON.stringify({ text, ref }))
      setTimeout(() => {
        if (pending.delete(ref)) resolve('The server has not confirmed this message yet; it is still in the box. Check the thread before sending it again.')
      }, ACK_TIMEOUT_MS)
    }),
)

onTyping(() => {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ typing: true }))
})

connect()
