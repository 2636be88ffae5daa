import type { FastifyReply, FastifyRequest } from 'fastify'
import { currentUser } from '../plugins/session.js'
import { firstIssue, messageTextSchema } from '../validation.js'

function renderRoom(request: FastifyRequest, reply: FastifyReply, extra: { error?: string; draft?: string } = {}) {
  const { config, chatroom } = request.server
  return reply.view('refresh/room', {
    user: currentUser(request),
    events: chatroom.archive().map((s) => s.event),
    interval: config.REFRESH_INTERVAL,
    maxLength: config.MAX_MESSAGE_LENGTH,
    ...extra,
  })
}

/** GET /refresh — joins the room, then shows it. */
export async function index(request: FastifyRequest, reply: FastifyReply) {
  await request.server.chatroom.join(currentUser(request).name)
  return reply.redirect('/refresh/room', 303)
}

/** GET /refresh/room — the archive as a page; it reloads the thread every few seconds. */
export function room(request: FastifyRequest, reply: FastifyReply) {
  return renderRoom(request, reply)
}

/** GET /refresh/room/thread — just the thread, for the page's script to swap in. */
export function thread(request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').view('refresh/thread', {
    user: currentUser(request),
    events: request.server.chatroom.archive().map((s) => s.event),
  })
}

/** POST /refresh/room — says the form's message, then back to the room (post/redirect/get). */
export async function say(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const text = messageTextSchema(request.server.config.MAX_MESSAGE_LENGTH).safeParse(body.message)
  if (!text.success) {
    const draft = typeof body.message === 'string' ? body.message : ''
    return renderRoom(request, reply.code(400), { error: firstIssue(text.error), draft })
  }
  await request.server.chatroom.say(currentUser(request).name, text.data)
  return reply.redirect('/refresh/room', 303)
}

/** GET /refresh/room/leave — leaves the room and goes back to the welcome page. */
export async function leave(request: FastifyRequest, reply: FastifyReply) {
  await request.server.chatroom.leave(currentUser(request).name)
  return reply.redirect('/', 303)
}
