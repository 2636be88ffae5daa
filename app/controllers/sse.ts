import type { FastifyReply, FastifyRequest } from 'fastify'
import { backendUnavailable } from '../chatroom/deadline.js'
import { httpActions, roomOf, roomPage, tabOf } from '../transport/http.js'
import { bindToSession, currentUser } from '../plugins/session.js'
import { helloFrame, httpEnterRefusal } from '../transport/protocol.js'
import type { StoredEvent } from '../chatroom/event.js'
import { Follower } from '../chatroom/follower.js'
import { memberKey } from '../chatroom/presence.js'
import { enterFollowing, followNews } from '../transport/person-stream.js'
import { SseWriter, type StreamRoom } from '../transport/sse-writer.js'
import { enterRooms, type RoomEntry } from '../transport/rooms-connection.js'
import { firstIssue, followsMe, lastEventIdSchema, pageQuerySchema, parseCursors } from '../validation.js'

/** GET /sse/room — the page; its script opens the event stream. */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  return reply.view('sse/room', await roomPage(request, 'sse'))
}

const SSE_HEAD =
  'HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\ncache-control: no-store\r\n' +
  'x-content-type-options: nosniff\r\nx-accel-buffering: no\r\nconnection: close\r\n\r\n'

/** One Server-Sent Events message, for what is not an event of the log. */
const message = (name: string, data: string) => `event: ${name}\ndata: ${data}\n\n`

/**
 * Starts the stream: written straight to the connection (as a WebSocket is), no chunk framing
 * around each write; it ends when the connection does, or at once (saying so, so the page does
 * not reconnect) when its session is signed out here or on another process. Undefined when the
 * client is already gone.
 */
function openStream(request: FastifyRequest, reply: FastifyReply): SseWriter | undefined {
  const { config } = request.server
  const socket = reply.raw.socket
  reply.hijack()
  if (!socket || socket.destroyed) return undefined
  socket.write(SSE_HEAD)
  const writer = new SseWriter(socket, { limit: config.SOCKET_BUFFER_LIMIT, heartbeatMs: config.SSE_HEARTBEAT * 1000 })
  socket.once('close', bindToSession(request, { close: () => writer.end(message('signedout', '{"reason":"signed out"}')) }))
  return writer
}

/**
 * GET /sse/room/events[?lastReceived=ID&epoch=E&tab=T] — enters the room and streams it as
 * Server-Sent Events: `hello` (which log the ids belong to), then each event as `id: N` /
 * `data: {…}` from the cursor on, `typing` signals, and a comment line every SSE_HEARTBEAT.
 * The browser's own reconnect sends `Last-Event-ID`, which wins over `lastReceived` (the
 * stream's URL still has the cursor it was opened with). A cursor the room cannot resume, a
 * name someone else holds, too many streams, or a log that cannot be read are said in the
 * stream as `refused` (its data is long polling's JSON error, with `status`), and it ends.
 */
export async function events(request: FastifyRequest, reply: FastifyReply) {
  const chatroom = await roomOf(request)
  const query = pageQuerySchema.safeParse(request.query)
  if (!query.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  const lastEventId = lastEventIdSchema.safeParse(request.headers['last-event-id'])
  if (!lastEventId.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(lastEventId.error) })
  const cursor = { ...query.data, ...(lastEventId.data !== undefined && { lastReceived: lastEventId.data }) }
  const writer = openStream(request, reply)
  if (!writer) return
  const entered = await chatroom.enter(currentUser(request), 'sse', { ...cursor, typing: true })
  if (!entered.ok) {
    const { status, body } = httpEnterRefusal(entered)
    return writer.end(message('refused', JSON.stringify({ status, ...body })))
  }
  writer.attach(entered.subscription, message('hello', helloFrame(chatroom.epoch, chatroom.lastId)))
}

/** POST /sse/room/messages (as long polling), POST /sse/room/typing (204), POST /sse/room/leave[tab=T]. */
export const { say, typing, leave } = httpActions('sse', '/sse/room')

/** The store did not answer while a stream entered its rooms: `event: refused` with 503, and the stream ends (the browser reconnects). */
function unavailable(request: FastifyRequest, writer: { end(text: string): void }, error: unknown): void {
  request.log[backendUnavailable(error) ? 'warn' : 'error']({ err: error }, 'an event stream could not enter its rooms')
  writer.end(message('refused', JSON.stringify({ status: 503, error: 'Service Unavailable', message: 'The chat is unavailable right now; the stream will reconnect.' })))
}

/**
 * GET /sse/events?cursor=ROOM:EPOCH:ID&cursor=… — one stream for several rooms: `hello` with each
 * room's epoch and last id, then every event as `data: {"room", …event}` whose `id:` is every
 * room's cursor (`ROOM:EPOCH:ID,…`), so the browser's Last-Event-ID resumes all of them; typing
 * as `event: typing` with its room. A room that cannot be entered is said as `event: refused`
 * (long polling's JSON error with `room` and `status`: 404 for a room you may not read) and the
 * others go on.
 */
export async function roomsEvents(request: FastifyRequest, reply: FastifyReply) {
  const { config } = request.server
  const follow = followsMe(request.query)
  const resumed = request.headers['last-event-id']
  const parsed = parseCursors(typeof resumed === 'string' && resumed.includes(':') ? resumed : (request.query as { cursor?: unknown }).cursor, config.MAX_ROOMS_PER_CONNECTION, follow)
  if ('error' in parsed) return reply.code(400).send({ error: 'Bad Request', message: parsed.error })
  const writer = openStream(request, reply)
  if (!writer) return
  let entries: RoomEntry[]
  // Following the person: the rooms with nothing to hand over are read by one follower, with no subscription each.
  const user = currentUser(request)
  const follower = follow ? new Follower(memberKey(user), user.name, 'sse', tabOf(request)) : undefined
  try {
    if (follow) {
      const followed = await enterFollowing(request, parsed.cursors, 'sse', { typing: true, page: tabOf(request), tab: tabOf(request), follower })
      entries = followed.me ? [followed.me, ...followed.rooms] : followed.rooms
    } else entries = await enterRooms(request, parsed.cursors, 'sse', { typing: true })
  } catch (error) {
    // The store did not answer: nothing was entered. The stream says so and ends; the browser comes back by itself.
    follower?.cancel()
    return unavailable(request, writer, error)
  }
  let refusals = ''
  const open: StreamRoom[] = []
  const rooms: Record<string, { epoch: string; lastId: number; from: number }> = {}
  for (const entry of entries) {
    if (!entry.ok) refusals += message('refused', JSON.stringify({ status: entry.status, ...entry.body }))
    else {
      open.push({ room: entry.room, epoch: entry.of.epoch, last: entry.from, subscription: entry.subscription })
      // `from`: the id the stream starts after for this room (its cursor until an event comes).
      rooms[entry.room] = { epoch: entry.of.epoch, lastId: entry.of.lastId, from: entry.from }
    }
  }
  if (open.length === 0) {
    follower?.cancel()
    return writer.end(refusals)
  }
  // Following the person: a room they join is entered from where they joined it and added to the stream; one they leave is dropped.
  const news = follow
    ? (events: readonly StoredEvent[]) =>
        followNews(
          events,
          (room, at) => {
            if (writer.hasRoom(room)) return
            void enterRooms(request, [{ room, lastReceived: at }], 'sse', { typing: true, following: true, page: tabOf(request), tab: tabOf(request), follower }).then(
              ([entry]) => {
                if (entry?.ok) writer.addRoom({ room: entry.room, epoch: entry.of.epoch, last: entry.from, subscription: entry.subscription })
              },
              // A room joined that cannot be entered now: the stream ends, and its resume (every room, from its cursor) takes it in.
              (error: unknown) => unavailable(request, writer, error),
            )
          },
          (room, removal) => writer.dropRoom(room, removal ? 'removed' : 'left', removal),
        )
    : undefined
  writer.attachRooms(open, message('hello', JSON.stringify({ type: 'hello', rooms })) + refusals, news, follower)
}
