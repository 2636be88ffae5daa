import type { FastifyReply, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { httpActions, roomPage } from '../transport/http.js'
import { bindToSession, currentUser } from '../plugins/session.js'
import type { Chatroom } from '../chatroom/chatroom.js'
import type { Room } from '../chatroom/room.js'
import type { Member } from '../chatroom/presence.js'
import { ackFrame, act, closeForEnterRefusal, CloseCode, errorFrame, helloFrame, moderationAnswer, readClientFrame, type ClientFrame } from '../transport/protocol.js'
import { RoomsSocket } from '../transport/rooms-socket.js'
import { SocketWriter } from '../transport/socket-writer.js'
import { firstIssue, followsMe, pageQuerySchema, parseCursors } from '../validation.js'

/** GET /websocket/room — the page; its script opens the socket. */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  return reply.view('websocket/room', await roomPage(request, 'websocket'))
}

/** GET /websocket/room/socket without an upgrade. */
export function notUpgraded(_request: FastifyRequest, reply: FastifyReply) {
  return reply.code(426).header('upgrade', 'websocket').send({ error: 'Upgrade Required', message: 'Open this URL as a WebSocket.' })
}

/**
 * POST /websocket/room/messages — the page's form without JavaScript (or curl): says it over HTTP.
 * POST /websocket/room/leave[tab=T] — leaves at once (that page's socket closes with 4001); back to the welcome page.
 */
export const { say, leave } = httpActions('websocket', '/websocket/room')

/**
 * GET /websocket/room/socket[?lastReceived=ID&epoch=E] — enters the room, says which log (epoch)
 * the ids belong to, sends the replay window (or
 * what follows the cursor), then relays both ways: server frames are JSON arrays of events,
 * client frames {"text": …} or {"typing": true}. The socket closing cancels the subscription.
 */
export function roomSocket(socket: WebSocket, request: FastifyRequest) {
  const { config } = request.server
  // Looked up before the upgrade (a room's route), or the lobby.
  const chatroom = request.room ?? request.server.chatroom.lobby
  const user = currentUser(request)
  const query = pageQuerySchema.safeParse(request.query)
  if (!query.success) return socket.close(CloseCode.badRequest, firstIssue(query.error).slice(0, 120))
  const writer = new SocketWriter(socket, request.raw, { limit: config.SOCKET_BUFFER_LIMIT, log: request.server.log })
  // The socket closes (4401) when its session is signed out, here or on another process.
  socket.once('close', bindToSession(request, socket))
  // Synchronously, so no early frame is missed.
  // The registry, not the request: an open socket keeps nothing of its upgrade request alive.
  const registry = request.server.chatroom
  socket.on('message', (data, isBinary) => relay(readClientFrame(data, isBinary), registry, chatroom, user, writer))
  void chatroom.enter(user, 'websocket', { ...query.data, typing: true }).then((entered) => {
    if (!entered.ok) return writer.close(...closeForEnterRefusal(entered))
    writer.attach(entered.subscription, helloFrame(chatroom.epoch, chatroom.lastId))
  })
}


/** One client frame: said, typed, or refused (five bad frames in a row close the socket). */
function relay(frame: ClientFrame, registry: Chatroom, chatroom: Room, user: Member, writer: SocketWriter) {
  if (frame.kind === 'binary') return writer.close(...frame.close)
  if (frame.kind === 'bad') return writer.refuse(frame.body)
  // Typing is free to send, so it does not excuse the bad frames around it.
  if (frame.kind === 'typing') return chatroom.typing(user)
  const { ref } = frame
  if (frame.kind === 'moderation') {
    // Acknowledged with the moderation event's id, or refused with its status and why (as the socket of several rooms does).
    return void registry.moderate(user, chatroom.name, frame.form).then((done) => {
      const answer = moderationAnswer(done, ref)
      if (answer.ok) writer.accepted(answer.frame)
      else writer.sendError(answer.frame)
    })
  }
  void act(chatroom, user, frame).then((said) => {
    if (said.outcome === 'ok') writer.accepted(ref === undefined ? undefined : ackFrame(ref, said.stored.event.id, said.duplicate))
    else if (said.outcome === 'invalid') writer.refuse(errorFrame(said, ref))
    else writer.sendError(errorFrame(said, ref))
  })
}

/**
 * GET /websocket/socket — one socket for several rooms: `{"type": "subscribe", "room", "epoch",
 * "lastReceived"}` and `{"type": "unsubscribe", "room"}`, `{"type": "say", "room", "text", "ref"}`,
 * `{"type": "typing", "room"}`; every server frame says its room (see app/transport/rooms-socket.ts).
 */
export function roomsSocket(socket: WebSocket, request: FastifyRequest) {
  const { config } = request.server
  // The socket closes (4401) when its session is signed out, here or on another process.
  socket.once('close', bindToSession(request, socket))
  const rooms = new RoomsSocket(socket, request, config.SOCKET_BUFFER_LIMIT, config.MAX_ROOMS_PER_CONNECTION)
  // `?follow=me[&cursor=…]`: every room of the person, now and later, and their own events, with no subscribe frame.
  if (followsMe(request.query)) {
    const parsed = parseCursors((request.query as { cursor?: unknown }).cursor, config.MAX_ROOMS_PER_CONNECTION, true)
    if ('error' in parsed) return socket.close(CloseCode.badRequest, parsed.error.slice(0, 120))
    void rooms.follow(parsed.cursors)
  }
}
