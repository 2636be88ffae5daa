import type { FastifyReply, FastifyRequest } from 'fastify'
import { removalBody } from '../transport/protocol.js'
import { httpActions, JSON_TYPE, roomOf, roomPage, sendEnterRefusal, tabOf, whileConnected } from '../transport/http.js'
import { bindToSession, currentUser } from '../plugins/session.js'
import { addsRoom, enterFollowing, ME } from '../transport/person-stream.js'
import { enterRooms, inRoom, subscribed, type RoomEntry } from '../transport/rooms-connection.js'
import { firstIssue, followsMe, parseCursors, pollQuerySchema } from '../validation.js'

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
    // Kicked or banned while waiting: 403 with who and why (a banned person's next poll is refused 403 too).
    if (subscription.removal) return reply.code(403).send(removalBody(subscription.removal))
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

/**
 * GET /longpolling/messages?cursor=ROOM:EPOCH:ID&cursor=… — one poll for several rooms (Zulip's
 * event queue): `{"events": [{"room", …event}], "rooms": {ROOM: {"epoch", "lastId"}}, "refused":
 * [{"room", "error", "message", …}]}`, at once when any room has something (or refuses the
 * cursor), else as soon as one does, else with no events after LONGPOLL_TIMEOUT. Poll again with
 * each room's last id. A room far behind answers a page of it (REPLAY_MAX_BYTES) as alone.
 */
export async function waitRooms(request: FastifyRequest, reply: FastifyReply) {
  const { config, chatroom } = request.server
  const follow = followsMe(request.query)
  const parsed = parseCursors((request.query as { cursor?: unknown }).cursor, config.MAX_ROOMS_PER_CONNECTION, follow)
  if ('error' in parsed) return reply.code(400).send({ error: 'Bad Request', message: parsed.error })
  let entries: RoomEntry[]
  if (follow) {
    // typing=1: the rooms' typing signals too (in "signals", with their room).
    const typing = (request.query as { typing?: unknown }).typing === '1'
    const followed = await enterFollowing(request, parsed.cursors, 'longpolling', { paged: true, page: tabOf(request), tab: tabOf(request), typing })
    entries = followed.me ? [followed.me, ...followed.rooms] : followed.rooms
  } else entries = await enterRooms(request, parsed.cursors, 'longpolling', { paged: true })
  // No follower here: every room entered has a subscription of its own for the poll.
  const open = entries.filter(subscribed)
  const refused = entries.filter((e) => !e.ok)
  // Signed out here or on another process while waiting: answered 401 at once.
  let signedOut = false
  const unbind = bindToSession(request, {
    close: () => {
      signedOut = true
      for (const entry of open) entry.subscription.cancel()
    },
  })
  try {
    // A first poll of the person's stream (no cursor of their own yet) answers at once: where each room stands.
    const first = follow && !parsed.cursors.some((c) => c.room === ME)
    if (!first && refused.length === 0 && open.length > 0 && !open.some((e) => e.subscription.pending)) {
      const gone = new AbortController()
      await whileConnected(reply, (away) => {
        away.addEventListener('abort', () => gone.abort())
        return Promise.race(open.map((e) => e.subscription.wait(config.LONGPOLL_TIMEOUT * 1000, gone.signal)))
      })
      gone.abort()
    }
    if (signedOut) return reply.code(401).send({ error: 'Unauthorized', message: 'You were signed out. Sign in again.' })
    const events: string[] = []
    const rooms: Record<string, { epoch: string; lastId: number }> = {}
    const joined: { room: string; at: number }[] = []
    // Signals of the person's stream (others' presence): beside the events, never a cursor.
    const signals: string[] = []
    // A room the person was put out of while waiting (kick, ban): refused 403 with who and why; the others go on.
    const refusals: unknown[] = refused.map((e) => e.body)
    for (const entry of open) {
      if (entry.subscription.removal) {
        refusals.push({ ...removalBody(entry.subscription.removal, entry.room), status: 403 })
        continue
      }
      for (const signal of entry.subscription.takeSignals()) signals.push(entry.room === ME ? signal.json : inRoom(entry.room, signal.json))
      const taken = entry.subscription.take()
      // The person's own events carry their room already; a room they joined is given its cursor below.
      for (const stored of taken) {
        if (entry.room !== ME) events.push(inRoom(entry.room, stored.json))
        else {
          events.push(stored.json)
          const added = addsRoom(stored)
          if (added) joined.push(added)
        }
      }
      rooms[entry.room] = { epoch: entry.of.epoch, lastId: entry.of.lastId }
    }
    // A room joined meanwhile: poll it from where it was joined (its entry is the cursor to send).
    for (const { room, at } of joined) {
      if (rooms[room]) continue
      const of = await chatroom.readable(room, currentUser(request))
      if (of) rooms[room] = { epoch: of.epoch, lastId: at }
    }
    const body = `{"events":[${events.join(',')}],"rooms":${JSON.stringify(rooms)},"refused":${JSON.stringify(refusals)}${follow ? `,"signals":[${signals.join(',')}]` : ''}}`
    return reply.type(JSON_TYPE).header('cache-control', 'no-store').send(body)
  } finally {
    unbind()
    for (const entry of open) entry.subscription.cancel()
  }
}
