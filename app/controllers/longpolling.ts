import type { FastifyReply, FastifyRequest } from 'fastify'
import { removalBody } from '../transport/protocol.js'
import { httpActions, JSON_TYPE, roomOf, roomPage, sendEnterRefusal, tabOf, whileConnected } from '../transport/http.js'
import { bindToSession, currentUser } from '../plugins/session.js'
import { addsRoom, enterMe, ME } from '../transport/person-stream.js'
import { enterRooms, inRoom, subscribed } from '../transport/rooms-connection.js'
import { handsOver, PollQueue } from '../transport/poll-queue.js'
import { personLog } from '../chatroom/chatroom.js'
import { frameFor } from '../chatroom/event.js'
import { memberKey } from '../chatroom/presence.js'
import { followsMe, parseCursors, parsePollQuery, type RoomCursor } from '../validation.js'

/** GET /longpolling/room — the page; its script polls for events. */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  return reply.view('longpolling/room', await roomPage(request, 'longpolling'))
}

/**
 * GET /longpolling/room/messages?lastReceived=ID&epoch=E[&tab=T] — the events after ID at once if
 * there are any, else the next ones as soon as they come, else [] after LONGPOLL_TIMEOUT (or at
 * once when the server shuts down). X-Room-Epoch says which log the ids belong to. A client that
 * goes away releases its wait at once. With the page's id (`tab`) the room stays entered for the
 * page's next poll (LONGPOLL_KEEP): a poll that comes back with the cursor the last answer gave
 * is handed what came meanwhile; another cursor enters the room again from it.
 */
export async function waitMessages(request: FastifyRequest, reply: FastifyReply) {
  const { config, pollQueues } = request.server
  const chatroom = await roomOf(request)
  reply.header('x-room-epoch', chatroom.epoch)
  const query = parsePollQuery(request.query)
  if ('error' in query) return reply.code(400).send({ error: 'Bad Request', message: query.error })
  const user = currentUser(request)
  const { lastReceived, tab } = query.data
  const typing = query.data.typing === true
  // A page's poll (its id) keeps the room for its next one; a program that names no page, nothing past its poll.
  const queue = tab === undefined ? sessionQueue(request, undefined, tab, typing) : pollQueues.open(request.sessionHash, tab, typing, (key) => sessionQueue(request, key, tab, typing), chatroom.name)
  try {
    const kept = queue.entries.get(chatroom.name)
    // Handed over only from the cursor the last answer gave, in the same log, while they are not banned from it.
    if (kept && (!handsOver(kept, query.data) || kept.of !== chatroom || chatroom.bannedNow(user))) queue.drop(chatroom.name)
    if (!queue.entries.has(chatroom.name)) {
      // Far behind: one page of at most REPLAY_MAX_BYTES, and the client polls on from its end.
      const entered = await chatroom.enter(user, 'longpolling', { ...query.data, paged: true })
      if (!entered.ok) return sendEnterRefusal(reply, entered)
      queue.add(chatroom.name, chatroom, lastReceived ?? 0, entered.subscription)
    }
    let gone = false
    const waitingOn = queue.entries.get(chatroom.name)?.subscription
    if (waitingOn) waitingOn.awaited = true
    try {
      await whileConnected(reply, async (away) => {
        await queue.wait(config.LONGPOLL_TIMEOUT * 1000, away)
        gone = away.aborted
      })
    } finally {
      if (waitingOn) waitingOn.awaited = false
    }
    if (queue.signedOut) return reply.code(401).send({ error: 'Unauthorized', message: 'You were signed out. Sign in again.' })
    // Gone while waiting: nothing is taken, so what waits is kept for the page's next poll from the same cursor.
    if (gone) return reply.code(204).send()
    const entry = queue.entries.get(chatroom.name)
    const subscription = entry?.subscription
    // Signed out, or let go of by the page's leave, while waiting: entered again at its next poll.
    if (!entry || !subscription) return reply.type(JSON_TYPE).header('cache-control', 'no-store').send('[]')
    // Kicked or banned while waiting: 403 with who and why (a banned person's next poll is refused 403 too).
    if (subscription.removal) {
      const removal = subscription.removal
      queue.drop(chatroom.name)
      return reply.code(403).send(removalBody(removal))
    }
    const events = subscription.take()
    const frame = frameFor(events, subscription.takeSignals())
    if (events.length > 0) entry.position = events.at(-1)!.event.id
    // Ended (lagged, left, the room closed), or a page of old events with more to come: the next poll enters it again from its cursor.
    if (subscription.closed || entry.position < chatroom.lastId) queue.drop(chatroom.name)
    return reply.type(JSON_TYPE).header('cache-control', 'no-store').send(frame)
  } catch (error) {
    queue.close()
    throw error
  } finally {
    pollQueues.done(queue)
  }
}

/** A poll queue of this session (kept under `key`, or a poll's own): a sign-out here or on another process lets go of it, and a waiting poll answers 401. */
function sessionQueue(request: FastifyRequest, key: string | undefined, tab: string | undefined, typing: boolean): PollQueue {
  const user = currentUser(request)
  const made = new PollQueue(key, memberKey(user), user.name, tab, typing)
  made.unbind = bindToSession(request, {
    close: () => {
      made.signedOut = true
      made.close()
    },
  })
  return made
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
  const { config } = request.server
  const follow = followsMe(request.query)
  const parsed = parseCursors((request.query as { cursor?: unknown }).cursor, config.MAX_ROOMS_PER_CONNECTION, follow)
  if ('error' in parsed) return reply.code(400).send({ error: 'Bad Request', message: parsed.error })
  if (follow) return pollFollowing(request, reply, parsed.cursors)
  const entries = await enterRooms(request, parsed.cursors, 'longpolling', { paged: true })
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
    if (refused.length === 0 && open.length > 0 && !open.some((e) => e.subscription.pending)) {
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
    // A room the person was put out of while waiting (kick, ban): refused 403 with who and why; the others go on.
    const refusals: unknown[] = refused.map((e) => e.body)
    for (const entry of open) {
      if (entry.subscription.removal) {
        refusals.push({ ...removalBody(entry.subscription.removal, entry.room), status: 403 })
        continue
      }
      let last: number | undefined
      for (const stored of entry.subscription.take()) {
        events.push(inRoom(entry.room, stored.json))
        last = stored.event.id
      }
      // A page of old events stops short of the room's newest: the next poll goes on from its end.
      rooms[entry.room] = { epoch: entry.of.epoch, lastId: last ?? entry.of.lastId }
    }
    return reply.type(JSON_TYPE).header('cache-control', 'no-store').send(`{"events":[${events.join(',')}],"rooms":${JSON.stringify(rooms)},"refused":${JSON.stringify(refusals)}}`)
  } finally {
    unbind()
    for (const entry of open) entry.subscription.cancel()
  }
}

/**
 * GET /longpolling/messages?follow=me — one poll of the person's stream: their own events (as
 * `me`), every room they belong to, and rooms named by a cursor; the answer says each room's
 * cursor for the next poll, and `signals` beside the events (typing with typing=1, others'
 * presence). A page's rooms stay entered between its polls (its queue, LONGPOLL_KEEP): a poll
 * that comes back with the cursors its last answer gave is handed what came meanwhile; a room
 * whose cursor differs (that answer was lost) is entered again from the cursor given.
 */
async function pollFollowing(request: FastifyRequest, reply: FastifyReply, cursors: RoomCursor[]) {
  const { config, chatroom, pollQueues } = request.server
  const user = currentUser(request)
  const tab = tabOf(request)
  // typing=1: the rooms' typing signals too (in "signals", with their room).
  const typing = (request.query as { typing?: unknown }).typing === '1'
  const queue = pollQueues.open(request.sessionHash, tab, typing, (key) => sessionQueue(request, key, tab, typing))
  try {
    const meCursor = cursors.find((c) => c.room === ME)
    const given = new Map<string, RoomCursor>()
    for (const cursor of cursors) if (cursor.room !== ME) given.set(cursor.room, cursor)
    // A first poll (no cursor of their own yet) starts everything from where it stands, and answers at once.
    const first = meCursor === undefined
    if (first) queue.reset()
    const listed = new Set(await chatroom.following(user))
    // A room kept is handed over only from the cursor the last answer gave (else it is entered again below), and only while it is theirs to read.
    for (const [room, kept] of queue.entries) {
      const cursor = room === ME ? meCursor : given.get(room)
      const stands = handsOver(kept, cursor)
      const theirs = room === ME || ((listed.has(room) || !('ok' in (await chatroom.access(room, user)))) && !kept.of.bannedNow(user))
      if (!stands || !theirs) queue.drop(room)
    }
    // What is not kept: entered now, each from its cursor, else (a room of theirs they did not name) from where they joined it after their cursor, else from now.
    const enter: RoomCursor[] = [...given.values()].filter((c) => !queue.entries.has(c.room))
    const unnamed = [...listed].filter((room) => !given.has(room) && !queue.entries.has(room))
    if (unnamed.length > 0) {
      const joinedAt = new Map<string, number>()
      if (user.id && meCursor?.lastReceived !== undefined) {
        for (const stored of (await chatroom.room(personLog(user.id))).archive(meCursor.lastReceived)) {
          const added = addsRoom(stored)
          if (added) joinedAt.set(added.room, added.at)
        }
      }
      for (const room of unnamed) enter.push({ room, lastReceived: joinedAt.get(room) })
    }
    const [meEntered, roomsEntered] = await Promise.allSettled([
      queue.entries.has(ME) ? undefined : enterMe(request, meCursor, 'longpolling', true, tab),
      enter.length > 0 ? enterRooms(request, enter, 'longpolling', { paged: true, page: tab, tab, typing, fromNow: true, following: true, follower: queue.follower }) : [],
    ])
    // Everything entered goes on the queue first: if the store did not answer for the rest (the
    // caller says 503), the queue is let go of below with all of it.
    const refusals: unknown[] = []
    // A room refused for now (503: the store did not answer; 429) goes on from the cursor given at the next poll: it is said in `rooms` too, so no client starts it over from now.
    const retry: Record<string, { epoch: string; lastId: number }> = {}
    const me = meEntered.status === 'fulfilled' ? meEntered.value : undefined
    for (const entry of [...(me ? [me] : []), ...(roomsEntered.status === 'fulfilled' ? roomsEntered.value : [])]) {
      if (entry.ok) queue.add(entry.room, entry.of, entry.from, entry.subscription)
      else {
        refusals.push(entry.body)
        const cursor = entry.room === ME ? meCursor : given.get(entry.room)
        if ((entry.status === 503 || entry.status === 429) && cursor?.epoch !== undefined && cursor.lastReceived !== undefined) retry[entry.room] = { epoch: cursor.epoch, lastId: cursor.lastReceived }
      }
    }
    if (meEntered.status === 'rejected') throw meEntered.reason
    if (roomsEntered.status === 'rejected') throw roomsEntered.reason
    let gone = false
    if (!first && refusals.length === 0 && queue.entries.size > 0 && !queue.pending) {
      await whileConnected(reply, async (away) => {
        await queue.wait(config.LONGPOLL_TIMEOUT * 1000, away)
        gone = away.aborted
      })
    }
    if (queue.signedOut) return reply.code(401).send({ error: 'Unauthorized', message: 'You were signed out. Sign in again.' })
    // Gone while waiting (a page that asks again with another room, a page closed): nothing is
    // taken, so what waits is kept for the page's next poll from the same cursors.
    if (gone) return reply.code(204).send()
    return reply.type(JSON_TYPE).header('cache-control', 'no-store').send(await answer(request, queue, refusals, retry))
  } catch (error) {
    queue.close()
    throw error
  } finally {
    pollQueues.done(queue)
  }
}

/** The answer of a poll of the person's stream: what every room has, and each room's cursor for the next poll. */
async function answer(request: FastifyRequest, queue: PollQueue, refusals: unknown[], retry: Record<string, { epoch: string; lastId: number }>): Promise<string> {
  const events: string[] = []
  // Signals of the person's stream (others' presence) and its rooms' (typing): beside the events, never a cursor.
  const signals: string[] = []
  const rooms: Record<string, { epoch: string; lastId: number }> = { ...retry }
  const joined: { room: string; at: number }[] = []
  // Rooms' events, each room's in its order, then merged by time across rooms (as they were said).
  const said: { at: number; json: string }[] = []
  const followed = queue.takeFollowed()
  // The person's own events first (they carry their room already), then each room's.
  const names = [...queue.entries.keys()].sort((a, b) => (a === ME ? -1 : b === ME ? 1 : 0))
  for (const room of names) {
    const kept = queue.entries.get(room)!
    const { subscription } = kept
    const taken = subscription ? undefined : followed.get(room)
    const removal = subscription ? subscription.removal : taken?.removal
    // Put out of the room while waiting (kick, ban): refused 403 with who and why; the others go on.
    if (removal) {
      refusals.push({ ...removalBody(removal, room), status: 403 })
      queue.drop(room)
      continue
    }
    const items = subscription ? subscription.takeSignals() : (taken?.signals ?? [])
    for (const signal of items) signals.push(room === ME ? signal.json : inRoom(room, signal.json))
    let at = 0
    for (const stored of subscription ? subscription.take() : (taken?.events ?? [])) {
      kept.position = stored.event.id
      // Never earlier than the room's event before it: the merge keeps each room's order.
      at = Math.max(at, stored.event.timestamp)
      if (room !== ME) said.push({ at, json: inRoom(room, stored.json) })
      else {
        events.push(stored.json)
        const added = addsRoom(stored)
        if (added) joined.push(added)
      }
    }
    rooms[room] = { epoch: kept.of.epoch, lastId: kept.position }
    // Ended (lagged, left, closed), or a page of old events with more to come: the next poll enters it again from this cursor.
    if (subscription ? subscription.closed || kept.position < kept.of.lastId : taken?.ended !== undefined) queue.drop(room)
  }
  // A stable sort: events of one time keep their rooms' order.
  said.sort((a, b) => a.at - b.at)
  for (const { json } of said) events.push(json)
  // A room joined meanwhile: poll it from where it was joined (its entry is the cursor to send).
  for (const { room, at } of joined) {
    if (rooms[room]) continue
    const of = await request.server.chatroom.readable(room, currentUser(request))
    if (of) rooms[room] = { epoch: of.epoch, lastId: at }
  }
  return `{"events":[${events.join(',')}],"rooms":${JSON.stringify(rooms)},"refused":${JSON.stringify(refusals)},"signals":[${signals.join(',')}]}`
}
