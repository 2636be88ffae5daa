import type { FastifyReply, FastifyRequest } from 'fastify'
import { answerSay, JSON_TYPE, messageText, roomPage, sendEnterRefusal, tabOf, whileConnected } from '../http.js'
import { currentUser } from '../plugins/session.js'
import { firstIssue, pollQuerySchema } from '../validation.js'

/** GET /longpolling/room — the page; its script polls for events. */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  return reply.view('longpolling/room', await roomPage(request, 'longpolling'))
}

/**
 * GET /longpolling/room/messages?lastReceived=ID&epoch=E — the events after ID at once if there are
 * any, else the next ones as soon as they come, else [] after LONGPOLL_TIMEOUT (or at once
 * when the server shuts down). X-Room-Epoch says which log the ids belong to. A client that goes
 * away releases its wait at once.
 */
export async function waitMessages(request: FastifyRequest, reply: FastifyReply) {
  const { chatroom, config } = request.server
  reply.header('x-room-epoch', chatroom.epoch)
  const query = pollQuerySchema.safeParse(request.query)
  if (!query.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  const entered = await chatroom.enter(currentUser(request), 'longpolling', query.data)
  if (!entered.ok) return sendEnterRefusal(reply, entered)
  const { subscription } = entered
  try {
    await whileConnected(reply, (gone) => subscription.wait(config.LONGPOLL_TIMEOUT * 1000, gone))
    return reply.type(JSON_TYPE).header('cache-control', 'no-store').send(subscription.takeFrame())
  } finally {
    subscription.cancel()
  }
}

/** POST /longpolling/room/messages — says form field `message` or JSON {"text": …}; 201 with the event. */
export async function say(request: FastifyRequest, reply: FastifyReply) {
  const said = await request.server.chatroom.say(currentUser(request), messageText(request), 'longpolling')
  return answerSay(request, reply, said, '/longpolling/room')
}

/** POST /longpolling/room/typing — "I am typing"; others' pages show it for a few seconds. */
export function typing(request: FastifyRequest, reply: FastifyReply) {
  request.server.chatroom.typing(currentUser(request), 'longpolling')
  return reply.code(204).send()
}

/** POST /longpolling/room/leave[tab=T] — leaves (that page, when it says which), then back to the welcome page. */
export async function leave(request: FastifyRequest, reply: FastifyReply) {
  await request.server.chatroom.leave(currentUser(request), 'longpolling', tabOf(request))
  return reply.redirect('/', 303)
}
