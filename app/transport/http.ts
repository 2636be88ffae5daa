import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Entered, Said } from '../chatroom/chatroom.js'
import type { Room } from '../chatroom/room.js'
import type { PresenceState } from '../chatroom/event.js'
import { LOBBY } from '../chatroom/store/store.js'
import type { Abortable } from '../chatroom/subscription.js'
import { httpEnterRefusal, httpRefusal, type Refusal } from './protocol.js'
import { transportNames, type Transport } from '../identity.js'
import { currentUser } from '../plugins/session.js'
import { tabSchema, type ReplyAsked } from '../validation.js'

export const JSON_TYPE = 'application/json; charset=utf-8'

/**
 * The room a request is about: the `:room` of its path, or the lobby for the Revel routes. A
 * room the person may not read (private, not a member) is answered 404, as one that does not
 * exist: it does not exist for them.
 */
export async function roomOf(request: FastifyRequest): Promise<Room> {
  if (request.room) return request.room
  const { chatroom } = request.server
  const name = (request.params as { room?: string } | undefined)?.room
  // The lobby's routes that need no sign-in have no one to ask about.
  if (name === undefined && !request.user) return chatroom.lobby
  const room = await chatroom.access(name ?? LOBBY, currentUser(request))
  // 404: it does not exist for them; 403: they are banned from it (the message says who, until when, why).
  if ('ok' in room) throw Object.assign(new Error(room.message), { statusCode: room.status })
  return (request.room = room)
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The room of a `/…/rooms/:room/…` route, once looked up (before a WebSocket upgrade, so a stranger gets 404, not a socket). */
    room: Room | undefined
  }
}

/** Where a room's routes of one transport start: `/refresh/room` for the lobby, `/refresh/rooms/NAME` for another room. */
export function roomBase(prefix: string, room: Pick<Room, 'name'>): string {
  return room.name === 'lobby' ? `${prefix}/room` : `${prefix}/rooms/${encodeURIComponent(room.name)}`
}

/** A refused say() as JSON: 400, 429 with Retry-After, or 503. */
export function sendRefusal(reply: FastifyReply, said: Refusal) {
  const { status, body, headers } = httpRefusal(said)
  return reply.code(status).headers(headers).send(body)
}

/** The text of a say over HTTP: JSON {"text": …} or the form field `message`. */
export function messageText(request: FastifyRequest): unknown {
  const body = (request.body ?? {}) as Record<string, unknown>
  return typeof body === 'object' && 'text' in body ? body.text : body.message
}

/** The client message id of a say over HTTP (JSON or form field `clientId`): a resend with it answers the first event. */
export function clientIdOf(request: FastifyRequest): unknown {
  const body = (request.body ?? {}) as Record<string, unknown>
  return typeof body === 'object' ? body.clientId : undefined
}

/** A say's reply fields over HTTP (JSON or form fields `replyTo` and `alsoToRoom`). */
export function replyOf(request: FastifyRequest): ReplyAsked {
  const body = (request.body ?? {}) as Record<string, unknown>
  return typeof body === 'object' ? { replyTo: body.replyTo, alsoToRoom: body.alsoToRoom } : {}
}

/** A form's way back that is a path of this site: one slash, then no spaces or control characters (a browser drops a tab, so "/\t/x" would be "//x", another site). */
export const safeBack = /^\/(?![/\\])[^\x00-\x20\x7f\\]*$/

/** Whether a request is a plain HTML form post from a page without JavaScript. */
export function fromHtmlForm(request: FastifyRequest): boolean {
  return (request.headers.accept ?? '').includes('text/html') && (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded')
}

/**
 * POST /rooms/:room/messages/:id/edit (`text`) and /delete (the lobby's: /room/messages/:id/…):
 * one's own message changed; 201 with the edit or deletion event, or back to `back` (a page of
 * this site) for a form.
 */
export async function changeMessage(request: FastifyRequest, reply: FastifyReply, kind: 'edit' | 'delete') {
  const room = await roomOf(request)
  const id = Number((request.params as { id?: string }).id)
  const body = (request.body ?? {}) as Record<string, unknown>
  const user = currentUser(request)
  const said = kind === 'edit' ? await room.edit(user, id, typeof body === 'object' && 'text' in body ? body.text : body.message) : await room.remove(user, id)
  const back = typeof body.back === 'string' && safeBack.test(body.back) ? body.back : roomBase('/refresh', room)
  return answerSay(request, reply, said, back)
}

/**
 * What a say over HTTP answers: to programs, 201 with the event or the refusal as JSON; to a
 * page's no-JavaScript form, back to the page (post/redirect/get), or an error page.
 */
export function answerSay(request: FastifyRequest, reply: FastifyReply, said: Said, page: string) {
  if (!fromHtmlForm(request)) {
    if (said.outcome !== 'ok') return sendRefusal(reply, said)
    // A resend of a clientId already committed: 200 with the first event (nothing was posted).
    return reply.code(said.duplicate ? 200 : 201).type(JSON_TYPE).send(said.stored.json)
  }
  if (said.outcome === 'ok') return reply.redirect(page, 303)
  const { status, body, headers } = httpRefusal(said)
  reply.headers(headers)
  throw Object.assign(new Error(body.message), { statusCode: status })
}

/** A refused enter() as JSON: 409 with the room's lastId. */
export function sendEnterRefusal(reply: FastifyReply, refused: Extract<Entered, { ok: false }>) {
  const { status, body } = httpEnterRefusal(refused)
  return reply.code(status).send(body)
}

/**
 * Runs `wait` with a signal that is aborted if the client goes away meanwhile. Its connection
 * is then ended too: it would otherwise linger and hold up the server's close().
 */
export async function whileConnected<T>(reply: FastifyReply, wait: (gone: Abortable) => Promise<T>): Promise<T> {
  waiting++
  const signal = new Gone()
  const gone = () => {
    signal.abort()
    reply.request.raw.socket?.destroy()
  }
  reply.raw.once('close', gone)
  try {
    return await wait(signal)
  } finally {
    waiting--
    reply.raw.off('close', gone)
  }
}

/** Long polls of this process waiting now (requests, whatever the number of rooms each waits on). */
let waiting = 0
export function waitingPolls(): number {
  return waiting
}

/** An abort signal with one listener: what a waiting long poll needs (an AbortSignal costs far more to make, per poll). */
class Gone implements Abortable {
  aborted = false
  private listener: (() => void) | undefined

  addEventListener(_type: 'abort', listener: () => void): void {
    this.listener = listener
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    if (this.listener === listener) this.listener = undefined
  }

  abort(): void {
    if (this.aborted) return
    this.aborted = true
    const listener = this.listener
    this.listener = undefined
    listener?.()
  }
}

/** A new page id: each room page gets one, and sends it with its requests and its leave. */
export function newTab(): string {
  return randomBytes(12).toString('base64url')
}

/** The page a form or beacon comes from (field or query `tab`); undefined when absent or malformed. */
export function tabOf(request: FastifyRequest): string | undefined {
  const body = (request.body ?? {}) as Record<string, unknown>
  const query = (request.query ?? {}) as Record<string, unknown>
  const tab = tabSchema.safeParse(typeof body === 'object' && body.tab !== undefined ? body.tab : query.tab)
  return tab.success ? tab.data : undefined
}

/** The path of a room's page on one of the ways in. */
const ROOM_PAGE = /^\/(auto|websocket|sse|longpolling|refresh)\/(room|rooms\/[^/?#]{1,100})$/

/**
 * The room page a request came from (`from=PATH`, else this site's Referer), for the search and
 * account pages to lead back to; undefined when it came from elsewhere.
 */
export function cameFrom(request: FastifyRequest): { href: string; label: string } | undefined {
  const given = (request.query as { from?: unknown } | undefined)?.from
  let path = typeof given === 'string' ? given : undefined
  if (path === undefined && request.headers.referer) {
    try {
      const referer = new URL(request.headers.referer)
      if (referer.host === request.headers.host) path = referer.pathname
    } catch {
      // Not a URL: no way back.
    }
  }
  if (!path || !ROOM_PAGE.test(path)) return undefined
  let name = 'lobby'
  try {
    if (path.includes('/rooms/')) name = decodeURIComponent(path.slice(path.lastIndexOf('/') + 1))
  } catch {
    return undefined
  }
  return { href: path, label: name === 'lobby' ? 'the lobby' : name.startsWith('dm-') ? 'the conversation' : `#${name}` }
}

/** `?from=PATH` (or `&from=`) for a page's forms and redirects to keep its way back to the room it came from; '' when it has none. */
export function fromQuery(request: FastifyRequest, joiner: '?' | '&' = '?'): string {
  const back = cameFrom(request)
  return back ? `${joiner}from=${encodeURIComponent(back.href)}` : ''
}

/** Someone listed beside a room: with their presence as a person. */
export interface ListedPerson {
  name: string
  avatar?: string
  presence: PresenceState
}

/**
 * Who a room lists: in the lobby, who is here (the Revel sample's online list); in every other
 * room, its members, online first. Each with their presence as a person. `members` says which.
 */
export async function peopleOf(request: FastifyRequest, room: Room): Promise<{ lastId: number; count: number; users: ListedPerson[]; members: boolean }> {
  const { chatroom, config } = request.server
  if (room.name !== LOBBY) return { lastId: room.lastId, ...(await chatroom.membersOf(room, config.ROSTER_LIMIT)), members: true }
  const roster = await room.rosterNow()
  // Someone here whose presence signal has not come yet is online.
  const users = roster.users.map((user) => ({ ...user, presence: chatroom.people.stateOf(user.name) === 'away' ? ('away' as const) : ('online' as const) }))
  return { ...roster, users, members: false }
}

/**
 * What a live room page (long polling, WebSocket) shows when it loads: who is here, the log's
 * epoch, and a new page id, whose lease holds the user present until the page's connection opens.
 */
export async function roomPage(request: FastifyRequest, transport: Transport) {
  const { config } = request.server
  const room = await roomOf(request)
  const user = currentUser(request)
  const tab = newTab()
  await room.renew(user, transport, tab)
  const sidebar = await roomSidebar(request, room, transport, room.lastId)
  // The page's script builds every URL of this room from data-room (the lobby's are the Revel routes).
  const sayTo = transport === 'auto' ? 'longpolling' : transport
  return {
    user,
    tab,
    awayAfter: config.AWAY_AFTER,
    roster: await peopleOf(request, room),
    epoch: room.epoch,
    maxLength: config.MAX_MESSAGE_LENGTH,
    ...sidebar,
    way: sidebar.where + transportNames[transport].short,
    sayAction: `${roomBase(`/${sayTo}`, room)}/messages`,
    // data-member: the person's stream follows this room (the page rides it rather than opening a connection of its own).
    roomAttr:
      (room.name === 'lobby' ? '' : ` data-room="${encodeURIComponent(room.name)}"${sidebar.rooms.some((r) => r.current && r.member) ? ' data-member="1"' : ''}`) +
      (sidebar.moderator ? ' data-moderator="1"' : '') +
      (room.slow > 0 ? ` data-slow="${room.slow}"` : ''),
  }
}

/**
 * What every room page shows beside the thread: the rooms this person can see (with unread
 * counts, each linking to the same way in), the room's record, whether they may invite, and the
 * room's name for the top bar. Opening the page marks the room read up to `lastId`.
 */
export async function roomSidebar(request: FastifyRequest, room: Room, transport: Transport, lastId: number) {
  const { chatroom } = request.server
  const user = currentUser(request)
  await chatroom.markRead(user, room.name, lastId)
  const rooms = await Promise.all(
    (await chatroom.listRooms(user)).map(async (r) => {
      // A direct room names the other person, with their presence.
      const other = r.visibility === 'direct' && user.id ? await chatroom.directPartner(r.name, user.id) : undefined
      return {
        ...r,
        href: r.name === 'lobby' ? `/${transport}/room` : `/${transport}/rooms/${encodeURIComponent(r.name)}`,
        current: r.name === room.name,
        ...(other && { with: other, presence: chatroom.people.stateOf(other) }),
      }
    }),
  )
  const record = await chatroom.roomStore.get(room.name)
  // What the page and its tab are called: the lobby's Revel name, a DM's two people, else #room.
  const pageTitle = room.name === 'lobby' ? 'Chat room' : record?.visibility === 'direct' ? record.title : `#${room.name}`
  const where = room.name === 'lobby' ? '' : `${pageTitle} · `
  // A moderator's page offers the tools (each checked again by the server when used).
  const moderator = await chatroom.moderates(room.name, user)
  return { rooms, roomRecord: record, roomTitle: room.name, pageTitle, canInvite: record?.visibility === 'private' && user.account === true, where, moderator }
}

/**
 * The actions every transport answers the same way over plain HTTP, for its page at `page`:
 * say (form field `message` or JSON {"text": …}; 201 with the event, or back to the page for a
 * form), typing (204), and leave (that page, when it says which; then the welcome page).
 */
export function httpActions(transport: Transport, page: string) {
  return {
    async say(request: FastifyRequest, reply: FastifyReply) {
      const room = await roomOf(request)
      const said = await room.say(currentUser(request), messageText(request), transport, clientIdOf(request), replyOf(request))
      return answerSay(request, reply, said, room.name === 'lobby' ? page : `${page.replace(/\/room$/, '')}/rooms/${encodeURIComponent(room.name)}`)
    },
    async typing(request: FastifyRequest, reply: FastifyReply) {
      ;(await roomOf(request)).typing(currentUser(request), transport)
      return reply.code(204).send()
    },
    async leave(request: FastifyRequest, reply: FastifyReply) {
      await request.server.chatroom.leave(currentUser(request), transport, tabOf(request))
      // The page's long poll of the person's stream keeps nothing more for it.
      if (transport === 'longpolling') request.server.pollQueues.closePage(request.sessionHash, tabOf(request))
      return reply.redirect('/', 303)
    },
  }
}
