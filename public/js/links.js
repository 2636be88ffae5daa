// The live room pages on the client library (public/js/client/, the same module a Node bot
// runs): one way kept connected (the WebSocket, event stream and long-poll pages), or the best
// way the network allows, switching by itself and coming back up (the automatic page). The
// library keeps the cursor (epoch, last id), reconnects, falls back, and sends the outbox exactly
// once; this file shows what it says: the thread, the top bar, the outbox's rows.
import { ChatClient } from './client/index.js'
import { Room, isLeaving, me, nameTaken, onCompose, onTyping, roomEl, roomName, showConnection, showError, signedOut, tab } from './chat.js'
import { OutboxView } from './outbox.js'

/** What the top bar says for each way. */
const wayNames = { websocket: 'WebSocket', sse: 'event stream', longpolling: 'long polling' }

/** localStorage, unless this browser refuses it (then the outbox lasts as long as the page). */
function pageStorage() {
  try {
    return localStorage
  } catch {
    return undefined
  }
}

/** The room of this page over `transports` (strongest first), shown as it goes. */
function run(transports, upgradeAfterMs = 60_000) {
  const chat = new ChatClient({ transports, upgradeAfterMs, storage: pageStorage(), storageKey: (name) => `chat.outbox.v1:${me}:${name}` })
  const live = chat.join(roomName, { tab: tab || undefined, cursor: { epoch: roomEl.dataset.epoch || '', lastId: 0 } })
  const room = new Room(live)
  room.outbox = new OutboxView(room, live.outbox)
  live.on('batch', (items) => room.receive(items))
  live.on('reset', () => room.thread.reset())
  live.on('error', (message) => showError(message))
  live.on('state', (info) => {
    const way = wayNames[info.transport]
    if (info.state === 'live') {
      const detail = info.fallback ? `(WebSocket is blocked here; trying again every ${Math.round(upgradeAfterMs / 1000)} s)` : undefined
      showConnection('live', way, { detail })
      // After the window (or what we missed), a fresh list of who is here.
      room.roster.resync()
    } else if (info.state === 'reconnecting') showConnection('reconnecting', way, { until: info.until, retryNow: () => live.retryNow() })
    else if (info.state !== 'closed') showConnection(info.state, way)
  })
  live.on('end', (reason) => {
    if (isLeaving()) return
    if (reason === 'nameTaken') nameTaken()
    else if (reason === 'signedOut') signedOut()
    else location.assign('/')
  })
  onCompose((text) => live.outbox.add(text))
  onTyping(() => live.typing())
  // Going away (closing, navigating, signing out): what the server closes now is not reconnected.
  addEventListener('pagehide', () => chat.close())
  for (const out of document.querySelectorAll('form.signout')) out.addEventListener('submit', () => chat.close())
}

/** One kind, kept connected: after a drop it reconnects and resumes from the cursor. */
export function keepConnected(kind) {
  run([kind])
}

/**
 * The automatic page: WebSocket first, then the event stream, then long polling, from the same
 * cursor, trying the stronger ways again every `retryMs`; the user is held present all along,
 * so a switch makes no leave or join.
 */
export function automatic(retryMs) {
  run(['websocket', 'sse', 'longpolling'], retryMs)
}
