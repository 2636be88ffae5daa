import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { frameFor } from '../chatroom/event.js'
import { currentUser } from '../plugins/session.js'
import { CloseCode, cursorAheadMessage, type ErrorBody } from '../protocol.js'
import { firstIssue, lastReceivedSchema } from '../validation.js'
import { z } from 'zod'
import { speak } from './speak.js'

/** How long a dropped (lagged) socket gets to complete the close handshake before it is cut. */
const LAGGED_CLOSE_GRACE_MS = 2000

const TEXT_FRAME = { binary: false } as const

/** Invalid frames in a row before a socket is closed as garbage (1007). */
const MAX_BAD_FRAMES = 5

/** GET /websocket/room — the page; its script opens the socket. */
export function room(request: FastifyRequest, reply: FastifyReply) {
  const { chatroom, config } = request.server
  return reply.view('websocket/room', { user: currentUser(request), roster: chatroom.roster(), maxLength: config.MAX_MESSAGE_LENGTH })
}

/** GET /websocket/room/socket without an upgrade. */
export function notUpgraded(_request: FastifyRequest, reply: FastifyReply) {
  return reply
    .code(426)
    .header('upgrade', 'websocket')
    .send({ error: 'Upgrade Required', message: 'Open this URL as a WebSocket.' })
}

/** GET /websocket/room/leave — the socket closing is the leave; back to the welcome page. */
export function leave(_request: FastifyRequest, reply: FastifyReply) {
  return reply.redirect('/', 303)
}

/** Client frames: {"text": …} says something, {"typing": true} tells others you are typing. */
const frameSchema = z.union([z.object({ text: z.unknown() }), z.object({ typing: z.literal(true) })])
const badFrame = 'A frame must be {"text": "..."} or {"typing": true}.'

function sendError(socket: WebSocket, error: ErrorBody) {
  socket.send(JSON.stringify(error))
}

/**
 * GET /websocket/room/socket[?lastReceived=ID] — joins, sends the archive (or what follows
 * the cursor), then relays both ways: server frames are JSON arrays of events, client
 * frames are {"text": …}. Leaves on close.
 */
export function roomSocket(socket: WebSocket, request: FastifyRequest) {
  // Nothing that lives as long as the socket may hold `request`: it keeps the upgrade's
  // request, reply and their headers alive (about 8 KB a connection).
  const app = request.server
  const { chatroom, config, presence } = app
  const log = request.log
  const user = currentUser(request)
  // @fastify/websocket's own 'error' listener closes over request and reply for the life of
  // the socket; ours logs the same way without holding them.
  socket.removeAllListeners('error')
  socket.on('error', (err) => log.debug({ err }, 'websocket error'))
  const query = lastReceivedSchema.safeParse(request.query)
  if (!query.success) return socket.close(CloseCode.badRequest, firstIssue(query.error).slice(0, 120))
  const { lastReceived } = query.data
  if (lastReceived !== undefined && lastReceived > chatroom.lastId) {
    return socket.close(CloseCode.cursorAhead, cursorAheadMessage(chatroom.lastId).slice(0, 120))
  }
  let badFrames = 0
  const refuse = (message: string) => {
    if (++badFrames >= MAX_BAD_FRAMES) return socket.close(CloseCode.invalidData, 'too many invalid frames')
    sendError(socket, { error: 'Bad Request', message })
  }

  // Handlers first, synchronously, so no early frame is missed.
  socket.on('message', (data, isBinary) => {
    if (isBinary) return socket.close(CloseCode.invalidData, 'frames are JSON text: {"text": "..."}')
    let parsed: unknown
    try {
      parsed = JSON.parse(data.toString())
    } catch {
      return refuse('A frame must be JSON: {"text": "..."}.')
    }
    const frame = frameSchema.safeParse(parsed)
    if (!frame.success) return refuse(badFrame)
    if (!('text' in frame.data)) {
      badFrames = 0
      chatroom.typing(user.name)
      return
    }
    speak(app, user, frame.data.text).then(
      (spoken) => {
        if (spoken.ok) badFrames = 0
        else if (spoken.status === 400) refuse(spoken.message)
        else if (spoken.status === 429) sendError(socket, { error: 'Too Many Requests', message: spoken.message, retryAfter: spoken.retryAfter })
        else sendError(socket, { error: 'Service Unavailable', message: spoken.message })
      },
      (err: unknown) => log.error({ err }, 'say failed'),
    )
  })

  const subscription = chatroom.subscribe(lastReceived, { typing: { self: user.name } })
  const release = presence.hold(user)
  let waitingForDrain = false
  const rawSocket = request.raw.socket
  // The ServerResponse @fastify/websocket routed the upgrade through stays attached to the TCP
  // socket (and holds the reply, which holds the request); the socket is the WebSocket's now.
  ;(rawSocket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.detachSocket(rawSocket)

  // Everything queued goes out in one frame: under load, fewer and larger frames. The room
  // calls this once per tick for all readers (see Chatroom.wake).
  const flush = () => {
    if (socket.readyState !== socket.OPEN) return
    if (subscription.state === 'lagged') {
      socket.close(CloseCode.lagged, 'too far behind: reconnect with lastReceived')
      // A reader that stopped will not answer the close either: free its buffers soon.
      setTimeout(() => socket.terminate(), LAGGED_CLOSE_GRACE_MS).unref()
      return
    }
    if (subscription.state === 'closed') return socket.close(CloseCode.goingAway, 'server shutting down')
    if (socket.bufferedAmount > config.SOCKET_BUFFER_LIMIT) {
      if (!waitingForDrain) {
        waitingForDrain = true
        rawSocket.once('drain', onDrain)
      }
      return
    }
    const events = subscription.take()
    const signals = subscription.takeSignals()
    // A Buffer would go out as a binary frame unless told otherwise; the protocol is text.
    if (events.length > 0 || signals.length > 0) socket.send(frameFor(events, signals), TEXT_FRAME)
  }
  const onDrain = () => {
    waitingForDrain = false
    flush()
  }
  subscription.onReadable = flush

  socket.on('close', () => {
    rawSocket.off('drain', onDrain)
    subscription.cancel()
    release()
  })

  // The archive (or what followed the cursor), in one frame.
  if (subscription.pending) setImmediate(flush)
}
