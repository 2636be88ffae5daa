import type { FastifyRequest } from 'fastify'
import type { Room } from '../chatroom/room.js'
import { wsFrame, type Signal, type StoredEvent } from '../chatroom/event.js'
import type { Subscription } from '../chatroom/subscription.js'
import type { Follower } from '../chatroom/follower.js'
import { httpEnterRefusal, reasons, type ErrorBody } from './protocol.js'
import { currentUser } from '../plugins/session.js'
import type { RoomCursor } from '../validation.js'

/** One room on a connection that carries several: its subscription, or why it was refused. */
export type RoomEntry =
  | { room: string; ok: true; subscription: Subscription; of: Room; from: number; followed?: undefined }
  /** Read by the connection's follower (the person's stream, a room with nothing to hand over): no subscription of its own. */
  | { room: string; ok: true; subscription?: undefined; of: Room; from: number; followed: true }
  | { room: string; ok: false; status: number; body: ErrorBody & { room: string } }

/** A room entered with a subscription of its own (every room, unless a follower was given). */
export type Subscribed = Extract<RoomEntry, { ok: true; followed?: undefined }>

/** Whether the entry has a subscription of its own. */
export function subscribed(entry: RoomEntry): entry is Subscribed {
  return entry.ok && !entry.followed
}

/**
 * Enters each room of the cursors for one connection: a room the person may not read is
 * refused as not found (404), as it would be on its own routes; every other refusal is the
 * room's own (409 start over with where the room stands, 429, 503), so the others go on.
 */
export async function enterRooms(
  request: FastifyRequest,
  cursors: RoomCursor[],
  transport: string,
  extra: { typing?: boolean; paged?: boolean; tab?: string | undefined; page?: string | undefined; fromNow?: boolean; following?: boolean; follower?: Follower | undefined } = {},
): Promise<RoomEntry[]> {
  const { chatroom } = request.server
  const user = currentUser(request)
  const settled = await Promise.allSettled(
    cursors.map(async (cursor): Promise<RoomEntry> => {
      const room = await chatroom.access(cursor.room, user)
      // Not found (404), or banned (403, with who and why): the other rooms go on.
      if ('ok' in room) return { room: cursor.room, ok: false, status: room.status, body: { error: reasons[room.status], message: room.message, room: cursor.room } }
      // Following the person, a room with no cursor starts from now (its window is for history to page through).
      const lastReceived = cursor.lastReceived ?? (extra.fromNow ? room.lastId : undefined)
      // Read in the background by the connection's follower when there is nothing to hand over; else a subscription of its own.
      if (extra.follower && extra.following && (await room.follow(extra.follower, { lastReceived: cursor.lastReceived, epoch: cursor.epoch }))) {
        return { room: cursor.room, ok: true, of: room, from: lastReceived ?? room.lastId, followed: true }
      }
      const entered = await room.enter(user, transport, { lastReceived, epoch: cursor.epoch, typing: extra.typing, paged: extra.paged, tab: extra.tab, page: extra.page, following: extra.following })
      if (!entered.ok) {
        const { status, body } = httpEnterRefusal(entered)
        return { room: cursor.room, ok: false, status, body: { ...body, room: cursor.room } }
      }
      return { room: cursor.room, ok: true, subscription: entered.subscription, of: room, from: lastReceived ?? 0 }
    }),
  )
  // One room the store could not answer for fails the whole entry (the caller says 503): the
  // subscriptions already made for the others are let go, not left behind. Rooms handed to the
  // caller's follower stay on it: the caller cancels its follower when this throws.
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  const entries = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  if (failed) {
    for (const entry of entries) if (subscribed(entry)) entry.subscription.cancel()
    throw failed.reason
  }
  return entries
}

/** An event of a room as it goes on a connection of several rooms: its JSON with `"room"` first. */
export function inRoom(room: string, json: string): string {
  return `{"room":${JSON.stringify(room)},${json.slice(1)}`
}

/** One event of a room alone, as a connection of several rooms sends it, in WebSocket wire bytes: made once, shared by every connection. */
export function roomWsFrame(room: string, stored: StoredEvent): Buffer {
  return (stored.roomWs ??= wsFrame(Buffer.from(`{"room":${JSON.stringify(room)},"events":[${stored.json}]}`)))
}

/** A room's events and signals as one frame: `{"room", "events": [...]}` (signals are in the array, as on a one-room socket). */
export function roomFrame(room: string, events: readonly StoredEvent[], signals: readonly Signal[]): string {
  let out = `{"room":${JSON.stringify(room)},"events":[`
  let first = true
  for (const stored of events) {
    out += (first ? '' : ',') + stored.json
    first = false
  }
  for (const signal of signals) {
    out += (first ? '' : ',') + signal.json
    first = false
  }
  return out + ']}'
}
