import type { FastifyReply, FastifyRequest } from 'fastify'
import { httpRefusal } from '../protocol.js'
import { currentUser } from '../plugins/session.js'

/** Enters the room for one page load: the replay window and who is here (Revel's Room action). */
function inRoom(request: FastifyRequest) {
  const { chatroom } = request.server
  const user = currentUser(request)
  const entered = chatroom.enter(user, 'refresh')
  if (!entered.ok) throw new Error('entering without a cursor is never refused')
  try {
    return { user, events: entered.subscription.take().map((s) => s.event), users: chatroom.roster().users }
  } finally {
    entered.subscription.cancel()
  }
}

function renderRoom(request: FastifyRequest, reply: FastifyReply, extra: { error?: string; draft?: string } = {}) {
  const { config } = request.server
  return reply.view('refresh/room', { ...inRoom(request), interval: config.REFRESH_INTERVAL, maxLength: config.MAX_MESSAGE_LENGTH, ...extra })
}

/** GET /refresh — enters the room (join, unless already here), then shows it. */
export function index(request: FastifyRequest, reply: FastifyReply) {
  request.server.chatroom.renew(currentUser(request), 'refresh')
  return reply.redirect('/refresh/room', 303)
}

/** GET /refresh/room — the replay window and who is here, as a page; it reloads the thread every few seconds. */
export function room(request: FastifyRequest, reply: FastifyReply) {
  return renderRoom(request, reply)
}

/** GET /refresh/room/thread — just the thread and the online list, for the page's script to swap in. */
export function thread(request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').view('refresh/thread', inRoom(request))
}

/** POST /refresh/room — says the form's message, then back to the room (post/redirect/get); a refusal shows on the page. */
export async function say(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const said = await request.server.chatroom.say(currentUser(request), body.message, 'refresh')
  if (said.outcome === 'ok') return reply.redirect('/refresh/room', 303)
  const { status, body: error, headers } = httpRefusal(said)
  const draft = typeof body.message === 'string' ? body.message : ''
  return renderRoom(request, reply.code(status).headers(headers), { error: error.message, draft })
}

/** GET /refresh/room/leave — leaves the room and goes back to the welcome page. */
export function leave(request: FastifyRequest, reply: FastifyReply) {
  request.server.chatroom.leave(currentUser(request), 'refresh')
  return reply.redirect('/', 303)
}
