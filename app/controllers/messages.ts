import type { FastifyReply, FastifyRequest } from 'fastify'
import { jsonArray } from '../chatroom/event.js'
import { answerSay, changeMessage, JSON_TYPE, roomBase, roomOf, safeBack } from '../transport/http.js'
import { currentUser } from '../plugins/session.js'
import { firstIssue, searchQuerySchema } from '../validation.js'
import { cameFrom } from '../transport/http.js'

/** POST /rooms/:room/messages/:id/edit (`text`; the lobby's: /room/messages/:id/edit) — one's own message, edited. */
export function edit(request: FastifyRequest, reply: FastifyReply) {
  return changeMessage(request, reply, 'edit')
}

/** POST /rooms/:room/messages/:id/delete (the lobby's: /room/messages/:id/delete) — one's own message, deleted (its text leaves the store). */
export function remove(request: FastifyRequest, reply: FastifyReply) {
  return changeMessage(request, reply, 'delete')
}

/** The form's way back to a page of this site, else the room's page that needs no JavaScript. */
function backTo(request: FastifyRequest, fallback: string): string {
  const back = ((request.body ?? {}) as Record<string, unknown>).back
  return typeof back === 'string' && safeBack.test(back) ? back : fallback
}

/**
 * POST /rooms/:room/messages/:id/reactions (`emoji`, `action`: add, the default, or remove; the
 * lobby's: /room/messages/:id/reactions) — a reaction: 201 with the reaction event; 200 with the
 * message as it stands when it changes nothing (added twice is one); a form goes back to its page.
 */
export async function react(request: FastifyRequest, reply: FastifyReply) {
  const room = await roomOf(request)
  const id = Number((request.params as { id?: string }).id)
  const body = (request.body ?? {}) as Record<string, unknown>
  const said = await room.react(currentUser(request), id, body.emoji, body.action)
  return answerSay(request, reply, said, backTo(request, `${roomBase('/refresh', room)}#m${id}`))
}

/** GET /rooms/:room/messages/:id (the lobby's: /room/messages/:id) — the message as it stands (edited, deleted, its reactions and replies counted); 404 when there is none. */
export async function message(request: FastifyRequest, reply: FastifyReply) {
  const room = await roomOf(request)
  const found = await room.messageAt(Number((request.params as { id?: string }).id)).catch(() => null)
  if (found === null) return reply.code(503).send({ error: 'Service Unavailable', message: 'The message cannot be read right now; try again shortly.' })
  if (!found) return reply.code(404).send({ error: 'Not Found', message: 'There is no such message in this room.' })
  return reply.header('cache-control', 'no-store').type(JSON_TYPE).send(found.stored.json)
}

/** How many replies of a thread one answer holds at most (`after` pages on). */
const THREAD_PAGE = 200

/**
 * GET /rooms/:room/messages/:id/thread[?after=ID] (the lobby's: /room/messages/:id/thread) — a
 * thread: `{"epoch", "root": message, "replies": [...], "more": bool}`, the replies oldest first
 * (200 at most; `after` the last one had for the next). A reply's id names its thread too.
 */
export async function thread(request: FastifyRequest, reply: FastifyReply) {
  const room = await roomOf(request)
  const found = await room.messageAt(Number((request.params as { id?: string }).id)).catch(() => null)
  if (found === null) return reply.code(503).send({ error: 'Service Unavailable', message: 'The thread cannot be read right now; try again shortly.' })
  if (!found) return reply.code(404).send({ error: 'Not Found', message: 'There is no such message in this room.' })
  const rootId = found.stored.event.thread ?? found.stored.event.id
  const after = Number((request.query as { after?: string }).after ?? 0)
  if (!Number.isSafeInteger(after) || after < 0) return reply.code(400).send({ error: 'Bad Request', message: 'after is a message id.' })
  let replies, root
  try {
    root = rootId === found.stored.event.id ? found : await room.messageAt(rootId)
    replies = await room.thread(rootId, after, THREAD_PAGE + 1)
  } catch {
    return reply.code(503).send({ error: 'Service Unavailable', message: 'The thread cannot be read right now; try again shortly.' })
  }
  const more = replies.length > THREAD_PAGE
  if (more) replies = replies.slice(0, THREAD_PAGE)
  const body = `{"epoch":${JSON.stringify(room.epoch)},"root":${root ? root.stored.json : 'null'},"replies":${jsonArray(replies)},"more":${more}}`
  return reply.header('cache-control', 'no-store').type(JSON_TYPE).send(body)
}

/**
 * GET /search?q=WORDS[&room=NAME&user=NAME&before=DATE&after=DATE&limit=N] — messages with every
 * word (the last one as a prefix), newest first, in the rooms the person can read (a room they
 * cannot read is 404, as everywhere): `{"results": [{room, id, user, text, timestamp, edited?,
 * link, live}]}`, `link` the message in its room's page that needs no JavaScript, `live` in the
 * live app. A browser gets the search page.
 */
export async function search(request: FastifyRequest, reply: FastifyReply) {
  const html = (request.headers.accept ?? '').includes('text/html')
  const query = searchQuerySchema.safeParse(request.query)
  if (!query.success) {
    if (html) throw Object.assign(new Error(firstIssue(query.error)), { statusCode: 400 })
    return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  }
  const { q, room, user, before, after, limit } = query.data
  const { chatroom } = request.server
  let hits
  try {
    hits = q.trim() === '' ? [] : await chatroom.search(currentUser(request), { words: q, room, user, before, after, limit: limit ?? 50 })
  } catch {
    const message = 'Search is unavailable right now; try again shortly.'
    if (html) throw Object.assign(new Error(message), { statusCode: 503 })
    return reply.code(503).send({ error: 'Service Unavailable', message })
  }
  if (hits === undefined) {
    if (html) throw Object.assign(new Error('No such room.'), { statusCode: 404 })
    return reply.code(404).send({ error: 'Not Found', message: 'No such room.' })
  }
  // The live app on the way one came by (the refresh page's people stay on it).
  const back = cameFrom(request)
  const way = back?.href.split('/')[1] ?? 'auto'
  const results = hits.map(({ room: name, epoch, stored: { event } }) => ({
    room: name,
    id: event.id,
    user: event.user,
    text: event.text ?? '',
    timestamp: event.timestamp,
    ...(event.edited !== undefined && { edited: event.edited }),
    // The page of the room that ends a few messages after it, scrolled to it.
    link: `${roomBase('/refresh', { name })}?before=${event.id + 10}&epoch=${encodeURIComponent(epoch)}#m${event.id}`,
    // The same message in the live app (the page's script links there; the link above needs no JavaScript).
    ...(way !== 'refresh' && { live: `${roomBase(`/${way}`, { name })}#m${event.id}` }),
  }))
  reply.header('cache-control', 'no-store')
  if (html) return reply.view('search', { user: currentUser(request), results, query: query.data, back })
  return reply.send({ results })
}
