import type { FastifyReply, FastifyRequest } from 'fastify'
import { changeMessage, roomBase } from '../transport/http.js'
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
