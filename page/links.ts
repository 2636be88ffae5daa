// The live room pages on the client library (client/, the same module a Node bot runs): one way kept connected (the WebSocket, event stream and long-poll pages), or the best
// way the network allows, switching by itself and coming back up (the automatic page). The
// library keeps the cursor (epoch, last id), reconnects, falls back, and sends the outbox exactly
// once; this file shows what it says: the thread, the top bar, the outbox's rows.
import './start.js'
import { ChatClient } from '../client/index.js'
import type { StateInfo } from '../client/connection.js'
import type { ChatRoom } from '../client/room.js'
import type { Transport } from '../client/protocol.js'
import { appShell } from './app.js'
import { onCompose, onTyping, showSlowMode } from './composer.js'
import { me, roomEl, roomName, tab } from './context.js'
import { OutboxView } from './outbox.js'
import { Room } from './room.js'
import { socialRoom, takeReply } from './social.js'
import { wireUploads } from './upload.js'
import { isLeaving, nameTaken, notRemoved, removed, showConnection, showError, signedOut } from './status.js'

/** What the top bar says for each way. */
const wayNames: Record<Transport, string> = { websocket: 'WebSocket', sse: 'event stream', longpolling: 'long polling' }

/** localStorage, unless this browser refuses it (then the outbox lasts as long as the page). */
function pageStorage(): Storage | undefined {
  try {
    return localStorage
  } catch {
    return undefined
  }
}

/**
 * The page over `transports` (strongest first), shown as it goes: one connection, the person's
 * stream, for every room of theirs; the room shown rides it (a public room they are not a member
 * of is visited on it while shown). Choosing another room switches in place.
 */
function run(transports: Transport[], upgradeAfterMs = 60_000): void {
  const chat = new ChatClient({ transports, upgradeAfterMs, storage: pageStorage(), storageKey: (name) => `chat.outbox.v1:${me}:${name}` })
  /** Whether the stream follows the room shown (the lobby, or a room the person is a member of); else it visits it. */
  const follows = (name: string): boolean => name === 'lobby' || roomEl.dataset.member === '1'
  // The room this page was made for goes on, on the stream, from where the server drew the page:
  // what follows comes once by the stream, what came before is its history (no gap between them).
  const seen = Number(roomEl.dataset.seen || 0)
  const cursors = roomEl.dataset.epoch ? { [roomName]: { epoch: roomEl.dataset.epoch, lastId: seen } } : undefined
  const stream = chat.follow({ tab: tab || undefined, cursors })
  let first = true
  /** Rooms visited while shown: let go of when another is shown (unless joined meanwhile). */
  let visited: string | undefined = follows(roomName) ? undefined : roomName
  /** Opens room `name` for the page on the stream: a room not theirs is visited while shown. */
  const open = (name: string): ChatRoom => {
    if (visited !== undefined && visited !== name) stream.unvisit(visited)
    visited = undefined
    if (!follows(name)) {
      stream.visit(name)
      visited = name
    }
    return chat.join(name, { via: stream, tab: tab || undefined })
  }
  let live = open(roomName)
  // A thread's reply goes through the room's outbox, as the message box's messages do (exactly once).
  const room = new Room(live, (text, reply) => live.outbox.add(text, reply))
  socialRoom(live)
  const show = (info: StateInfo): void => {
    const way = wayNames[info.transport]
    if (info.state === 'live') {
      const detail = info.fallback ? `(WebSocket is blocked here; trying again every ${Math.round(upgradeAfterMs / 1000)} s)` : undefined
      showConnection('live', way, { detail })
      // After the window (or what we missed), a fresh list of who is here.
      void room.roster.resync()
    } else if (info.state === 'reconnecting') showConnection('reconnecting', way, { until: info.until, retryNow: () => live.retryNow() })
    else if (info.state !== 'closed') showConnection(info.state, way)
  }
  /** The library's room `current` feeds the page while it is the one shown. */
  const wire = (current: ChatRoom): void => {
    room.outbox = new OutboxView(room, current.outbox)
    current.on('batch', (items) => {
      if (current !== live) return
      room.receive(items)
      // A moderator changed the room's slow mode: the composer says the new one.
      for (const item of items) {
        if (item.type !== 'moderation' || item.action !== 'slow') continue
        roomEl.dataset.slow = String(item.seconds ?? 0)
        showSlowMode()
      }
    })
    current.on('reset', () => {
      if (current !== live) return
      room.thread.reset()
      // On the stream a room starts over from its newest: what came before is history again.
      void room.thread.loadRecent()
    })
    current.on('error', (message) => current === live && showError(message))
    current.on('state', (info) => current === live && show(info))
    current.on('end', (reason) => {
      if (current !== live || isLeaving()) return
      if (reason === 'nameTaken') nameTaken()
      else if (reason === 'signedOut') signedOut()
      // Kicked or banned: the page says so (the room's error said who and why) and takes no more messages.
      else if (reason === 'removed') removed()
      // Left (here or on another device): the lobby.
      else location.assign(reason === 'left' ? `/${roomEl.dataset.transport || 'auto'}/room` : '/')
    })
    // Its events start from now on the stream: what came before is history. The page's own
    // room: history up to where the stream starts it; a room switched to: its recent history.
    void room.thread.loadRecent(first && seen > 0 ? seen + 1 : undefined)
    first = false
  }
  wire(live)
  showSlowMode()
  appShell(
    stream,
    (name) => {
      chat.leave(live.name)
      live = open(name)
      room.switchTo(live)
      socialRoom(live)
      notRemoved()
      showSlowMode()
      wire(live)
      void room.roster.resync()
    },
    () => room.thread.flushRead(),
  )
  // Presence of the people listed beside the room, kept live.
  stream.on('presence', ({ user, presence }) => {
    if (!room.roster.users.has(user)) return
    room.roster.presence ??= new Map()
    room.roster.presence.set(user, presence)
    room.roster.render()
  })
  stream.on('end', (reason) => {
    if (isLeaving()) return
    if (reason === 'signedOut') signedOut()
    else if (reason === 'nameTaken') nameTaken()
  })
  onCompose((text) => live.outbox.add(text, takeReply()))
  wireUploads(() => live, Number(roomEl.dataset.uploadMax) || 10 * 1024 * 1024)
  onTyping(() => live.typing())
  // Going away (closing, navigating, signing out): what the server closes now is not reconnected.
  addEventListener('pagehide', () => chat.close())
  for (const out of document.querySelectorAll('form.signout')) out.addEventListener('submit', () => chat.close())
}

/** One kind, kept connected: after a drop it reconnects and resumes from the cursor. */
export function keepConnected(kind: Transport): void {
  run([kind])
}

/**
 * The automatic page: WebSocket first, then the event stream, then long polling, from the same
 * cursor, trying the stronger ways again every `retryMs`; the user is held present all along,
 * so a switch makes no leave or join.
 */
export function automatic(retryMs: number): void {
  run(['websocket', 'sse', 'longpolling'], retryMs)
}
