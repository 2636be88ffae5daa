import type { FastifyReply, FastifyRequest } from 'fastify'
import { roomPage } from '../transport/http.js'

/**
 * GET /auto/room — the page that picks the way by itself: WebSocket first; if it cannot open or
 * stays silent, the event stream (/sse/room/events), then long polling, carrying the cursor
 * (epoch, last id) across so nothing is lost or shown twice; later it tries the stronger way
 * again (every AUTO_RETRY s) and moves back up the same way. Presence is the user's, not the
 * connection's, so a switch is neither a leave nor a join.
 */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  return reply.view('auto/room', { ...(await roomPage(request, 'auto')), retry: request.server.config.AUTO_RETRY })
}
