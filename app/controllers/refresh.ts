import type { FastifyReply, FastifyRequest } from 'fastify'
import { currentUser, renewPresence } from '../plugins/session.js'
import { speak } from './speak.js'

const here = (request: FastifyRequest) => renewPresence(request, 'refresh')

function roomState(request: FastifyRequest) {
  const { chatroom } = request.server
  return { events: chatroom.archive().map((s) => s.event), users: chatroom.roster().users }
}

function renderRoom(request: FastifyRequest, reply: FastifyReply, extra: { error?: string; draft?: string } = {}) {
  const { config } = request.server
  return reply.view('refresh/room', {
    user: here(request),
    ...roomState(request),
    interval: config.REFRESH_INTERVAL,
    maxLength: config.MAX_MESSAGE_LENGTH,
    ...extra,
  })
}

/** GET /refresh — enters the room (join, unless already here), then shows it. */
export function index(request: FastifyRequest, reply: FastifyReply) {
  here(request)
  return reply.redirect('/refresh/room', 303)
}

/** GET /refresh/room — the archive and who is here, as a page; it reloads the thread every few seconds. */
export function room(request: FastifyRequest, reply: FastifyReply) {
  return renderRoom(request, reply)
}

/** GET /refresh/room/thread — just the thread and the online list, for the page's script to swap in. */
export function thread(request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').view('refresh/thread', { user: here(request), ...roomState(request) })
}

/** POST /refresh/room — says the form's message, then back to the room (post/redirect/get). */
export async function say(request: FastifyRequest, reply: FastifyReply) {
  const user = here(request)
  const body = (request.body ?? {}) as Record<string, unknown>
  const spoken = await speak(request.server, user, body.message)
  if (!spoken.ok) {
    if (spoken.status === 429) reply.header('retry-after', String(spoken.retryAfter))
    const draft = typeof body.message === 'string' ? body.message : ''
    return renderRoom(request, reply.code(spoken.status), { error: spoken.message, draft })
  }
  return reply.redirect('/refresh/room', 303)
}

/** GET /refresh/room/leave — leaves the room and goes back to the welcome page. */
export function leave(request: FastifyRequest, reply: FastifyReply) {
  request.server.presence.drop(currentUser(request), 'refresh')
  return reply.redirect('/', 303)
}
