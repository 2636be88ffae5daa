import type { FastifyReply, FastifyRequest } from 'fastify'
import { jsonArray } from '../chatroom/event.js'
import { currentUser } from '../plugins/session.js'
import { cursorAheadMessage } from '../protocol.js'
import { firstIssue, lastReceivedSchema, messageTextSchema } from '../validation.js'

const JSON_TYPE = 'application/json; charset=utf-8'

/** GET /longpolling/room — the page; its script polls for events. */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  const user = currentUser(request)
  await request.server.chatroom.join(user.name)
  return reply.view('longpolling/room', { user, maxLength: request.server.config.MAX_MESSAGE_LENGTH })
}

/**
 * GET /longpolling/room/messages?lastReceived=ID — the events after ID at once if there are
 * any, else the next ones as soon as they come, else [] after LONGPOLL_TIMEOUT.
 */
export async function waitMessages(request: FastifyRequest, reply: FastifyReply) {
  const query = lastReceivedSchema.safeParse(request.query)
  if (!query.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  const { chatroom, config } = request.server
  const { lastReceived } = query.data
  if (lastReceived !== undefined && lastReceived > chatroom.lastId) {
    return reply.code(409).send({ error: 'Conflict', message: cursorAheadMessage(chatroom.lastId), lastId: chatroom.lastId })
  }
  reply.type(JSON_TYPE).header('cache-control', 'no-store')
  const subscription = chatroom.subscribe(lastReceived)
  if (subscription.size > 0) {
    const events = subscription.take()
    subscription.cancel()
    return jsonArray(events)
  }
  return new Promise<string>((resolve) => {
    // Answers on the first of: events, timeout, the room closing (shutdown answers []).
    const answer = () => {
      clearTimeout(timer)
      reply.raw.off('close', clientGone)
      const events = subscription.take()
      subscription.cancel()
      resolve(events.length > 0 ? jsonArray(events) : '[]')
    }
    // The client went away: release the subscription now, not at the timeout.
    const clientGone = () => subscription.cancel()
    const timer = setTimeout(answer, config.LONGPOLL_TIMEOUT * 1000)
    subscription.onReadable = answer
    reply.raw.on('close', clientGone)
  })
}

/** POST /longpolling/room/messages — says form field `message` or JSON {"text": …}; 201 with the event. */
export async function say(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const raw = typeof body === 'object' && 'text' in body ? body.text : body.message
  const text = messageTextSchema(request.server.config.MAX_MESSAGE_LENGTH).safeParse(raw)
  if (!text.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(text.error) })
  const stored = await request.server.chatroom.say(currentUser(request).name, text.data)
  return reply.code(201).type(JSON_TYPE).send(stored.json)
}

/** GET /longpolling/room/leave — leaves and goes back to the welcome page. */
export async function leave(request: FastifyRequest, reply: FastifyReply) {
  await request.server.chatroom.leave(currentUser(request).name)
  return reply.redirect('/', 303)
}
