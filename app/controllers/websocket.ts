import type { FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { jsonArray } from '../chatroom/event.js'
import { currentUser } from '../plugins/session.js'
import { CloseCode, cursorAheadMessage, type ErrorBody } from '../protocol.js'
import { firstIssue, lastReceivedSchema, messageTextSchema } from '../validation.js'
import { z } from 'zod'

/** Stop handing a socket more while this much is still unsent; its queue takes the rest. */
const SOCKET_HIGH_WATER = 1 << 20

/** GET /websocket/room — the page; its script opens the socket. */
export function room(request: FastifyRequest, reply: FastifyReply) {
  return reply.view('websocket/room', { user: currentUser(request), maxLength: request.server.config.MAX_MESSAGE_LENGTH })
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

const frameSchema = z.object({ text: z.unknown() })

function sendError(socket: WebSocket, error: ErrorBody) {
  socket.send(JSON.stringify(error))
}

/**
 * GET /websocket/room/socket[?lastReceived=ID] — joins, sends the archive (or what follows
 * the cursor), then relays both ways: server frames are JSON arrays of events, client
 * frames are {"text": …}. Leaves on close.
 */
export function roomSocket(socket: WebSocket, request: FastifyRequest) {
  const { chatroom, config } = request.server
  const user = currentUser(request)
  const query = lastReceivedSchema.safeParse(request.query)
  if (!query.success) return socket.close(CloseCode.badRequest, firstIssue(query.error).slice(0, 120))
  const { lastReceived } = query.data
  if (lastReceived !== undefined && lastReceived > chatroom.lastId) {
    return socket.close(CloseCode.cursorAhead, cursorAheadMessage(chatroom.lastId).slice(0, 120))
  }
  const messageText = messageTextSchema(config.MAX_MESSAGE_LENGTH)

  // Handlers first, synchronously, so no early frame is missed.
  socket.on('message', (data, isBinary) => {
    if (isBinary) return socket.close(CloseCode.invalidData, 'frames are JSON text: {"text": "..."}')
    let parsed: unknown
    try {
      parsed = JSON.parse(data.toString())
    } catch {
      return sendError(socket, { error: 'Bad Request', message: 'A frame must be JSON: {"text": "..."}.' })
    }
    const frame = frameSchema.safeParse(parsed)
    const text = frame.success ? messageText.safeParse(frame.data.text) : undefined
    if (!text?.success) {
      const message = text ? firstIssue(text.error) : 'A frame must be {"text": "..."}.'
      return sendError(socket, { error: 'Bad Request', message })
    }
    chatroom.say(user.name, text.data).catch((err: unknown) => {
      request.log.error({ err }, 'say failed')
      sendError(socket, { error: 'Service Unavailable', message: 'Your message was not sent; try again.' })
    })
  })

  const subscription = chatroom.subscribe(lastReceived)
  let scheduled = false
  let waitingForDrain = false
  const rawSocket = request.raw.socket

  // Everything queued goes out in one frame: under load, fewer and larger frames.
  const flush = () => {
    scheduled = false
    if (socket.readyState !== socket.OPEN) return
    if (subscription.state === 'lagged') return socket.close(CloseCode.lagged, 'too far behind: reconnect with lastReceived')
    if (subscription.state === 'closed') return socket.close(CloseCode.goingAway, 'server shutting down')
    if (socket.bufferedAmount > SOCKET_HIGH_WATER) {
      if (!waitingForDrain) {
        waitingForDrain = true
        rawSocket.once('drain', onDrain)
      }
      return
    }
    const events = subscription.take()
    if (events.length > 0) socket.send(jsonArray(events))
  }
  const onDrain = () => {
    waitingForDrain = false
    flush()
  }
  const schedule = () => {
    if (scheduled) return
    scheduled = true
    setImmediate(flush)
  }
  subscription.onReadable = schedule

  socket.on('close', () => {
    rawSocket.off('drain', onDrain)
    subscription.cancel()
    chatroom.leave(user.name).catch((err: unknown) => request.log.error({ err }, 'leave failed'))
  })

  chatroom.join(user.name).catch((err: unknown) => request.log.error({ err }, 'join failed'))
  schedule()
}
