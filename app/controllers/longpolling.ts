import type { FastifyReply, FastifyRequest } from 'fastify'
import { frameFor } from '../chatroom/event.js'
import { currentUser, renewPresence } from '../plugins/session.js'
import { cursorAheadMessage } from '../protocol.js'
import { firstIssue, pollQuerySchema } from '../validation.js'
import { speak } from './speak.js'

const JSON_TYPE = 'application/json; charset=utf-8'

const here = (request: FastifyRequest) => renewPresence(request, 'longpolling')

/** GET /longpolling/room — the page; its script polls for events. */
export function room(request: FastifyRequest, reply: FastifyReply) {
  const { chatroom, config } = request.server
  return reply.view('longpolling/room', { user: here(request), roster: chatroom.roster(), maxLength: config.MAX_MESSAGE_LENGTH })
}

/**
 * GET /longpolling/room/messages?lastReceived=ID — the events after ID at once if there are
 * any, else the next ones as soon as they come, else [] after LONGPOLL_TIMEOUT.
 */
export async function waitMessages(request: FastifyRequest, reply: FastifyReply) {
  const query = pollQuerySchema.safeParse(request.query)
  if (!query.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  const { chatroom, config, presence } = request.server
  const { lastReceived, typing } = query.data
  if (lastReceived !== undefined && lastReceived > chatroom.lastId) {
    return reply.code(409).send({ error: 'Conflict', message: cursorAheadMessage(chatroom.lastId), lastId: chatroom.lastId })
  }
  const user = here(request)
  reply.type(JSON_TYPE).header('cache-control', 'no-store')
  const subscription = chatroom.subscribe(lastReceived, { typing: typing ? { self: user.name } : undefined })
  if (subscription.size > 0) {
    const events = subscription.take()
    subscription.cancel()
    return frameFor(events, [])
  }
  // A waiting poll holds the user online like an open socket.
  const release = presence.hold(user)
  const stats = request.server.transportStats
  stats.pendingPolls++
  return new Promise<string | Buffer>((resolve) => {
    // Answers on the first of: events or signals, timeout, the room closing (shutdown answers []).
    const answer = () => {
      clearTimeout(timer)
      reply.raw.off('close', clientGone)
      const events = subscription.take()
      const signals = subscription.takeSignals()
      subscription.cancel()
      here(request)
      release()
      stats.pendingPolls--
      resolve(frameFor(events, signals))
    }
    // The client went away: release everything now (subscription, timer, hold), not at the
    // timeout, and end the connection, which would otherwise linger and hold up close().
    const clientGone = () => {
      answer()
      request.raw.socket?.destroy()
    }
    const timer = setTimeout(answer, config.LONGPOLL_TIMEOUT * 1000)
    subscription.onReadable = answer
    reply.raw.on('close', clientGone)
  })
}

/** POST /longpolling/room/messages — says form field `message` or JSON {"text": …}; 201 with the event. */
export async function say(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const raw = typeof body === 'object' && 'text' in body ? body.text : body.message
  const spoken = await speak(request.server, here(request), raw)
  if (spoken.ok) return reply.code(201).type(JSON_TYPE).send(spoken.stored.json)
  if (spoken.status === 429) {
    return reply.code(429).header('retry-after', String(spoken.retryAfter)).send({ error: 'Too Many Requests', message: spoken.message })
  }
  if (spoken.status === 503) return reply.code(503).send({ error: 'Service Unavailable', message: spoken.message })
  return reply.code(400).send({ error: 'Bad Request', message: spoken.message })
}

/** POST /longpolling/room/typing — "I am typing"; others' pages show it for a few seconds. */
export function typing(request: FastifyRequest, reply: FastifyReply) {
  request.server.chatroom.typing(here(request).name)
  return reply.code(204).send()
}

/** GET /longpolling/room/leave — leaves and goes back to the welcome page. */
export function leave(request: FastifyRequest, reply: FastifyReply) {
  request.server.presence.drop(currentUser(request), 'longpolling')
  return reply.redirect('/', 303)
}
