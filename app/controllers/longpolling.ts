import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpActions, JSON_TYPE, roomOf, roomPage, sendEnterRefusal, whileConnected } from '../http.js'
import { bindToSession, currentUser } from '../plugins/session.js'
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
  const { config } = request.server
  const chatroom = await roomOf(request)
  reply.header('x-room-epoch', chatroom.epoch)
  const query = pollQuerySchema.safeParse(request.query)
  if (!query.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  // Far behind: one page of at most REPLAY_MAX_BYTES, and the client polls on from its end.
  const entered = await chatroom.enter(currentUser(request), 'longpolling', { ...query.data, paged: true })
  if (!entered.ok) return sendEnterRefusal(reply, entered)
  const { subscription } = entered
  // Signed out here or on another process while waiting: answered 401 at once.
  let signedOut = false
  const unbind = bindToSession(request, {
    close: () => {
      signedOut = true
      subscription.cancel()
    },
  })
  try {
    await whileConnected(reply, (gone) => subscription.wait(config.LONGPOLL_TIMEOUT * 1000, gone))
    if (signedOut) return reply.code(401).send({ error: 'Unauthorized', message: 'You were signed out. Sign in again.' })
    return reply.type(JSON_TYPE).header('cache-control', 'no-store').send(subscription.takeFrame())
  } finally {
    unbind()
    subscription.cancel()
  }
}

/**
 * POST /longpolling/room/messages — says form field `message` or JSON {"text": …}; 201 with the event.
 * POST /longpolling/room/typing — "I am typing"; others' pages show it for a few seconds (204).
 * POST /longpolling/room/leave[tab=T] — leaves (that page, when it says which), then back to the welcome page.
 */
export const { say, typing, leave } = httpActions('longpolling', '/longpolling/room')
