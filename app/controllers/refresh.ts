import type { FastifyReply, FastifyRequest } from 'fastify'
import type { StoredEvent } from '../chatroom/event.js'
import { httpRefusal } from '../protocol.js'
import { currentUser } from '../plugins/session.js'
import { historyQuerySchema } from '../validation.js'

/** Older messages shown per page of history. */
const HISTORY_PAGE = 50

/**
 * Enters the room for one page load (Revel's Room action): the replay window, or with
 * `?before=ID` a page of older history, and who is here. A stale `epoch` starts over.
 */
async function inRoom(request: FastifyRequest) {
  const { chatroom } = request.server
  const user = currentUser(request)
  const entered = await chatroom.enter(user, 'refresh')
  if (!entered.ok) throw Object.assign(new Error('The chat is unavailable right now; try again shortly.'), { statusCode: 503 })
  let events: StoredEvent[]
  const query = historyQuerySchema.safeParse(request.query)
  const before = query.success && query.data.before !== undefined && query.data.epoch === chatroom.epoch ? query.data.before : undefined
  try {
    events = before === undefined ? entered.subscription.take() : await chatroom.history(before, HISTORY_PAGE)
  } finally {
    entered.subscription.cancel()
  }
  const first = events[0]?.event.id
  return {
    user,
    events: events.map((s) => s.event),
    ...(({ users, count }) => ({ users, count }))(chatroom.roster()),
    epoch: chatroom.epoch,
    // A link to the page before this one, while there is one.
    older: first !== undefined && first > 1 ? first : undefined,
    history: before !== undefined,
  }
}

async function renderRoom(request: FastifyRequest, reply: FastifyReply, extra: { error?: string; draft?: string } = {}) {
  const { config } = request.server
  return reply.view('refresh/room', { ...(await inRoom(request)), interval: config.REFRESH_INTERVAL, maxLength: config.MAX_MESSAGE_LENGTH, ...extra })
}

/** GET /refresh — enters the room (join, unless already here), then shows it. */
export async function index(request: FastifyRequest, reply: FastifyReply) {
  await request.server.chatroom.renew(currentUser(request), 'refresh')
  return reply.redirect('/refresh/room', 303)
}

/**
 * GET /refresh/room[?before=ID&epoch=E] — the replay window and who is here, as a page that
 * reloads its thread every few seconds; with `before`, a page of older messages (a `before`
 * from another epoch of the log shows the newest again).
 */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  const query = historyQuerySchema.safeParse(request.query)
  if (query.success && query.data.before !== undefined && query.data.epoch !== request.server.chatroom.epoch) {
    return reply.redirect('/refresh/room', 303)
  }
  return renderRoom(request, reply)
}

/** GET /refresh/room/thread — just the thread and the online list, for the page's script to swap in. */
export async function thread(request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').view('refresh/thread', await inRoom(request))
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

/** POST /refresh/room/leave — leaves the room and goes back to the welcome page. */
export async function leave(request: FastifyRequest, reply: FastifyReply) {
  await request.server.chatroom.leave(currentUser(request), 'refresh')
  return reply.redirect('/', 303)
}
