import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { FloodGuard } from '../chatroom/flood.js'
import type { RoomRefusal } from '../chatroom/chatroom.js'
import { skeleton, transports } from '../identity.js'
import { currentUser } from '../plugins/session.js'
import { httpRefusal, reasons } from '../transport/protocol.js'
import { sendRefusal } from '../transport/http.js'
import { moderationWords } from '../../client/render.js'
import type { ModerationEvent } from '../../client/protocol.js'

const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/html')
const body = (request: FastifyRequest) => (request.body ?? {}) as Record<string, unknown>
const roomParam = (request: FastifyRequest) => (request.params as { room: string }).room

/** A refusal: JSON for a program; for a browser's form, the error page with the reason (and a way back). */
function refuse(reply: FastifyReply, refused: RoomRefusal) {
  if (wantsHtml(reply.request)) throw Object.assign(new Error(refused.message), { statusCode: refused.status })
  return reply.code(refused.status).send({ error: reasons[refused.status], message: refused.message })
}

/** A room's page of the way in the form came from (its hidden `transport`), else the page that needs no JavaScript; the moderation page when the form was there (`back=moderate`). */
function roomPage(request: FastifyRequest, name: string): string {
  if (body(request).back === 'moderate') return `${name === 'lobby' ? '/room' : `/rooms/${encodeURIComponent(name)}`}/moderate?done=1`
  const way = transports.find((t) => t === body(request).transport) ?? 'refresh'
  return name === 'lobby' ? `/${way}/room` : `/${way}/rooms/${encodeURIComponent(name)}`
}

/** GET /rooms — `{"rooms": [{name, title, topic, visibility, lastId, unread, member}]}`: the rooms this person can see. */
export async function list(request: FastifyRequest, reply: FastifyReply) {
  const rooms = await request.server.chatroom.listRooms(currentUser(request))
  return reply.header('cache-control', 'no-store').send({ rooms })
}

/** POST /rooms — `name`, optional `title`, `topic`, `visibility` (public | private): 201 with the room; the creator is its owner. */
export async function create(request: FastifyRequest, reply: FastifyReply) {
  const form = body(request)
  const made = await request.server.chatroom.createRoom(currentUser(request), { name: form.name, title: form.title, topic: form.topic, visibility: form.visibility })
  if (!made.ok) return refuse(reply, made)
  const { name, title, topic, visibility } = made.room
  if (wantsHtml(request)) return reply.redirect(roomPage(request, name), 303)
  return reply.code(201).send({ name, title, topic, visibility })
}

/** POST /rooms/:room/join — a public room: you are a member (it is listed as yours). 200 {ok}. */
export async function join(request: FastifyRequest, reply: FastifyReply) {
  const joined = await request.server.chatroom.joinRoom(currentUser(request), roomParam(request))
  if (!joined.ok) return refuse(reply, joined)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, roomParam(request)), 303)
  return reply.send({ ok: true })
}

/** POST /rooms/:room/leave — you are no longer a member (a private room then no longer exists for you). */
export async function leave(request: FastifyRequest, reply: FastifyReply) {
  const left = await request.server.chatroom.leaveRoom(currentUser(request), roomParam(request))
  if (!left.ok) return refuse(reply, left)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, 'lobby'), 303)
  return reply.send({ ok: true })
}

/** POST /rooms/:room/describe — `title` and/or `topic`: the owner changes them; every member hears `renamed` on their stream. 200 {name, title, topic, visibility}. */
export async function describe(request: FastifyRequest, reply: FastifyReply) {
  const form = body(request)
  const described = await request.server.chatroom.describeRoom(currentUser(request), roomParam(request), { title: form.title, topic: form.topic })
  if (!described.ok) return refuse(reply, described)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, roomParam(request)), 303)
  const { name, title, topic, visibility } = described.room
  return reply.send({ name, title, topic, visibility })
}

/**
 * POST /rooms/:room/moderation (the lobby's: /room/moderation) — `action` (promote, demote,
 * delete, mute, unmute), `user` (whom) or `id` (a message), optional `minutes` (a mute's time;
 * none: for good) and `reason`: a moderator acts; the room's log says who did what to whom, and
 * why. 200 with that event; 403 for someone without the right, 404 for a room, person or message
 * that is not there.
 */
export async function moderate(request: FastifyRequest, reply: FastifyReply) {
  const room = (request.params as { room?: string }).room ?? 'lobby'
  const done = await request.server.chatroom.moderate(currentUser(request), room, body(request))
  if (!done.ok && 'said' in done) {
    if (!wantsHtml(request)) return sendRefusal(reply, done.said)
    throw Object.assign(new Error(done.said.message), { statusCode: httpRefusal(done.said).status })
  }
  if (!done.ok) return refuse(reply, done)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, room), 303)
  return reply.type('application/json; charset=utf-8').send(done.event.json)
}

/** Invitations per person and hour: one guard per app (a memory guard counts only what it was handed). */
const inviteGuards = new WeakMap<FastifyInstance, FloodGuard>()
function invitations(request: FastifyRequest): FloodGuard {
  const app = request.server
  let guard = inviteGuards.get(app)
  if (!guard) inviteGuards.set(app, (guard = app.limiter('invite', app.config.INVITES_PER_HOUR, 3_600_000)))
  return guard
}

/** POST /rooms/:room/invite — `user` (an account's name): a member of a private room lets them in. */
export async function invite(request: FastifyRequest, reply: FastifyReply) {
  const form = body(request)
  if (typeof form.user !== 'string' || form.user.trim() === '') return refuse(reply, { ok: false, status: 400, message: 'Say whom to invite: user=NAME (an account).' })
  const limited = await invitations(request).take(currentUser(request).id)
  if (limited > 0) {
    reply.header('retry-after', String(Math.ceil(limited / 1000)))
    return reply.code(429).send({ error: 'Too Many Requests', message: `At most ${request.server.config.INVITES_PER_HOUR} invitations an hour.` })
  }
  const account = await request.server.chatroom.accounts.bySkeleton(skeleton(form.user.trim()))
  if (!account) return refuse(reply, { ok: false, status: 404, message: 'No account goes by that name (only accounts can be invited).' })
  const invited = await request.server.chatroom.invite(currentUser(request), roomParam(request), { id: account.id, name: account.name })
  if (!invited.ok) return refuse(reply, invited)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, roomParam(request)), 303)
  return reply.send({ ok: true, user: account.name, added: invited.added })
}

/** POST /direct — `user` (an account's name): opens or finds the direct room of the two of you; `{"room"}`. */
export async function direct(request: FastifyRequest, reply: FastifyReply) {
  const form = body(request)
  const me = currentUser(request)
  if (typeof form.user !== 'string' || form.user.trim() === '') return refuse(reply, { ok: false, status: 400, message: 'Say with whom: user=NAME (an account).' })
  const account = await request.server.chatroom.accounts.bySkeleton(skeleton(form.user.trim()))
  if (!account) return refuse(reply, { ok: false, status: 404, message: 'No account goes by that name (direct messages are between accounts).' })
  const opened = await request.server.chatroom.direct(me, { id: account.id, name: account.name }, { name: me.name })
  if (!opened.ok) return refuse(reply, opened)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, opened.room.name), 303)
  return reply.send({ room: opened.room.name, title: opened.room.title })
}

/** POST /rooms/:room/read — `id`: the person has read the room up to this event (the marker follows them to any device; it never moves back). 204. */
export async function read(request: FastifyRequest, reply: FastifyReply) {
  const id = Number(body(request).id)
  if (!Number.isSafeInteger(id) || id < 0) return reply.code(400).send({ error: 'Bad Request', message: 'id must be an event id.' })
  const room = request.room!
  await request.server.chatroom.markRead(currentUser(request), room.name, Math.min(id, room.lastId))
  return reply.code(204).send()
}

/** The room of a room's route or the lobby's (`/room/…`), and a message id of the path. */
const roomOrLobby = (request: FastifyRequest) => (request.params as { room?: string }).room ?? 'lobby'
const messageId = (request: FastifyRequest) => {
  const id = Number((request.params as { id?: string }).id)
  return Number.isSafeInteger(id) && id > 0 ? id : 0
}

/**
 * POST /rooms/:room/messages/:id/report (the lobby's: /room/messages/:id/report) — `reason`:
 * anyone who may read the room reports a message to its moderators. 201 `{"reported": true}`
 * (200 when they had reported it already); 404 for a message that is not there; 429 past
 * REPORTS_PER_HOUR. The reporter is told on their stream (`handled`) once a moderator acts on it.
 */
export async function report(request: FastifyRequest, reply: FastifyReply) {
  const done = await request.server.chatroom.report(currentUser(request), roomOrLobby(request), messageId(request), body(request).reason)
  if (!done.ok) return refuse(reply, done)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, roomOrLobby(request)), 303)
  return reply.code(done.created ? 201 : 200).send({ reported: true })
}

/** GET /rooms/:room/reports (the lobby's: /room/reports) — the open reports, for the room's moderators (403 for others): `{"reports": [{id, user, text, reports: [{user, reason, at}]}]}`. */
export async function reports(request: FastifyRequest, reply: FastifyReply) {
  const done = await request.server.chatroom.reports(currentUser(request), roomOrLobby(request))
  if (!done.ok) return refuse(reply, done)
  return reply.header('cache-control', 'no-store').send({ reports: done.reports })
}

/** POST /rooms/:room/reports/:id/dismiss (the lobby's: /room/reports/:id/dismiss) — a moderator closes a message's reports with nothing done: `{"handled": N}`; the reporters are told. */
export async function dismiss(request: FastifyRequest, reply: FastifyReply) {
  const done = await request.server.chatroom.dismissReports(currentUser(request), roomOrLobby(request), messageId(request))
  if (!done.ok) return refuse(reply, done)
  if (wantsHtml(request)) return reply.redirect(roomPage(request, roomOrLobby(request)), 303)
  return reply.send({ handled: done.handled })
}

/**
 * GET /rooms/:room/moderate (the lobby's: /room/moderate) — the room's moderation page, for its
 * moderators (403 for others): open reports, an action on a person, the room's rules, and the log
 * of what was done (its newest 200 moderation events among the last 2,000 events). Needs no
 * JavaScript: every form posts to the moderation routes and comes back here.
 */
export async function moderationPage(request: FastifyRequest, reply: FastifyReply) {
  const { chatroom } = request.server
  const user = currentUser(request)
  const name = roomOrLobby(request)
  const room = await chatroom.access(name, user)
  if ('ok' in room) throw Object.assign(new Error(room.message), { statusCode: room.status })
  const listed = await chatroom.reports(user, name)
  if (!listed.ok) throw Object.assign(new Error(listed.message), { statusCode: listed.status })
  const record = name === 'lobby' ? undefined : await chatroom.roomStore.get(name)
  const events = await room.history(room.lastId + 1, 2000)
  const log = events
    .filter((stored) => stored.event.type === 'moderation')
    .reverse()
    .slice(0, 200)
    .map(({ event }) => ({ timestamp: event.timestamp, words: moderationWords(event as ModerationEvent).map((w) => w.text).join('') }))
  const flash = (request.query as { done?: string }).done
  return reply.header('cache-control', 'no-store').view('moderation/index', {
    user,
    name,
    title: name === 'lobby' ? 'the lobby' : record?.visibility === 'direct' ? record.title : `#${name}`,
    base: name === 'lobby' ? '/room' : `/rooms/${encodeURIComponent(name)}`,
    back: name === 'lobby' ? '/auto/room' : `/auto/rooms/${encodeURIComponent(name)}`,
    reports: listed.reports,
    record,
    slow: room.slow,
    closed: room.closedToNew,
    log,
    flash: flash === '1' ? 'Done.' : undefined,
  })
}

/** GET /reports — the open reports of every room you moderate, in one list: `{"rooms": [{"room", "reports": [...]}]}` (rooms with none left out). */
export async function allReports(request: FastifyRequest, reply: FastifyReply) {
  const rooms = await request.server.chatroom.reportsOfMine(currentUser(request))
  return reply.header('cache-control', 'no-store').send({ rooms })
}
