import type { FastifyRequest } from 'fastify'
import { personLog } from '../chatroom/chatroom.js'
import type { StoredEvent } from '../chatroom/event.js'
import type { Follower } from '../chatroom/follower.js'
import type { Removal } from '../chatroom/subscription.js'
import { currentUser } from '../plugins/session.js'
import type { RoomCursor } from '../validation.js'
import { httpEnterRefusal } from './protocol.js'
import { enterRooms, subscribed, type RoomEntry } from './rooms-connection.js'

/** The cursor name of the person's own events on their stream (`me:EPOCH:ID`): no room can be called that. */
export const ME = 'me'

/** Person events that give the person a room to follow from the id they carry (`at`). */
export function addsRoom(stored: StoredEvent): { room: string; at: number } | undefined {
  const { type, kind, room, at } = stored.event
  if (type !== 'person' || room === undefined || (kind !== 'joined' && kind !== 'invited' && kind !== 'direct')) return undefined
  return { room, at: at ?? 0 }
}

/** A person event that takes a room off their stream: left, or put out by a moderator (whichever of that and the room's own end comes first). */
function dropsRoom(stored: StoredEvent): string | undefined {
  const { type, kind, room } = stored.event
  return type === 'person' && (kind === 'left' || kind === 'removed') ? room : undefined
}

/**
 * Acts on the person's own events as a connection sends them: a room joined is added, a room left
 * dropped, a room they were put out of dropped with the kick or ban (said as the room's own end says it).
 */
export function followNews(events: readonly StoredEvent[], add: (room: string, at: number) => void, drop: (room: string, removal?: Removal) => void): void {
  for (const stored of events) {
    const added = addsRoom(stored)
    if (added) add(added.room, added.at)
    const dropped = dropsRoom(stored)
    if (dropped === undefined) continue
    const { kind, action, user, reason, until } = stored.event
    drop(dropped, kind === 'removed' ? { action: action === 'ban' ? 'ban' : 'kick', by: user, reason: reason ?? '', until } : undefined)
  }
}

/**
 * Enters the person's own log (as `me`, from its cursor or from now, quietly: not present in
 * any room for it), which holds the person present (online or away) while the connection lasts. Undefined for someone with no id (nothing of theirs is recorded).
 */
export async function enterMe(request: FastifyRequest, cursor: RoomCursor | undefined, transport: string, paged = false, page?: string): Promise<RoomEntry | undefined> {
  const user = currentUser(request)
  if (!user.id) return undefined
  const log = await request.server.chatroom.room(personLog(user.id))
  const from = cursor?.lastReceived ?? log.lastId
  const entered = await log.enter(user, transport, { lastReceived: from, epoch: cursor?.epoch, quiet: true, holdsPerson: true, page, paged, typing: true })
  if (!entered.ok) {
    const { status, body } = httpEnterRefusal(entered)
    return { room: ME, ok: false, status, body: { ...body, room: ME } }
  }
  return { room: ME, ok: true, subscription: entered.subscription, of: log, from }
}

/**
 * Enters what the person's stream carries on a connection opened with `follow=me`: their own
 * events, and every room they belong to (the lobby, their rooms, direct rooms), each from its
 * cursor when one is given, else from now; rooms given a cursor that they do not belong to are
 * entered too, as without `follow` (a public room read without joining it). A room the person
 * joined after their `me` cursor starts where they joined it.
 */
export async function enterFollowing(
  request: FastifyRequest,
  cursors: RoomCursor[],
  transport: string,
  extra: { typing?: boolean; paged?: boolean; page?: string | undefined; tab?: string | undefined; follower?: Follower | undefined } = {},
): Promise<{ me: RoomEntry | undefined; rooms: RoomEntry[] }> {
  const { chatroom } = request.server
  const user = currentUser(request)
  const given = cursors.filter((c) => c.room !== ME)
  const meCursor = cursors.find((c) => c.room === ME)
  // Rooms joined since the client's own-events cursor: from where they were joined, not from now.
  const joinedAt = new Map<string, number>()
  if (user.id && meCursor?.lastReceived !== undefined) {
    for (const stored of (await chatroom.room(personLog(user.id))).archive(meCursor.lastReceived)) {
      const added = addsRoom(stored)
      if (added) joinedAt.set(added.room, added.at)
    }
  }
  const [meEntered, listed] = await Promise.allSettled([enterMe(request, meCursor, transport, extra.paged, extra.page), chatroom.following(user)])
  const me = meEntered.status === 'fulfilled' ? meEntered.value : undefined
  // The store did not answer (the caller says 503): the person's own subscription, if made, is let go.
  const letGo = () => me && subscribed(me) && me.subscription.cancel()
  if (meEntered.status === 'rejected' || listed.status === 'rejected') {
    letGo()
    throw meEntered.status === 'rejected' ? meEntered.reason : (listed as PromiseRejectedResult).reason
  }
  const named = new Set(given.map((c) => c.room))
  const all = [...given, ...listed.value.filter((room) => !named.has(room)).map((room): RoomCursor => ({ room, lastReceived: joinedAt.get(room) }))]
  try {
    return { me, rooms: await enterRooms(request, all, transport, { ...extra, fromNow: true, following: true }) }
  } catch (error) {
    letGo()
    throw error
  }
}
