import type { WebsocketHandler } from '@fastify/websocket'
import type { HTTPMethods, RouteHandlerMethod } from 'fastify'
import type { Config } from './config.js'
import * as LongPolling from '../app/controllers/longpolling.js'
import * as Files from '../app/controllers/files.js'
import * as Messages from '../app/controllers/messages.js'
import * as Accounts from '../app/controllers/accounts.js'
import * as Auto from '../app/controllers/auto.js'
import * as OAuth from '../app/controllers/oauth.js'
import * as Passkeys from '../app/controllers/passkeys.js'
import * as Ops from '../app/controllers/ops.js'
import * as People from '../app/controllers/people.js'
import * as Refresh from '../app/controllers/refresh.js'
import * as Rooms from '../app/controllers/rooms.js'
import * as Sse from '../app/controllers/sse.js'
import * as WebSocket from '../app/controllers/websocket.js'
import * as Welcome from '../app/controllers/welcome.js'
import type { Auth } from '../app/plugins/session.js'

/**
 * The route table, as Revel's conf/routes: every method and path, and the action that
 * answers it. buildApp registers exactly these.
 */
export interface Route {
  method: HTTPMethods
  url: string
  action: RouteHandlerMethod
  /** For WebSocket routes: the action for upgraded connections (action answers plain HTTP). */
  socket?: WebsocketHandler
  /** Who may call it; identity always comes from the signed session, never from the request. */
  auth?: Auth
  /**
   * A GET with a side effect (it enters the room, and so may publish a join): refused when a
   * browser says it comes from another site (Sec-Fetch-Site, Origin), like every POST and
   * upgrade. Every room page and every GET that enters the room has it (test/crosssite.test.ts).
   */
  sameOrigin?: boolean
  /** A per-IP limit (sign-in), shared by every process that shares the broker. */
  rateLimit?: (config: Config) => RateLimit
}

export interface RateLimit {
  /** Routes with the same scope share one count. */
  scope: string
  max: number
  windowMs: number
}

const signInLimit = (config: Config): RateLimit => ({ scope: 'signin', max: config.SIGNIN_RATE_LIMIT, windowMs: 60_000 })

export const routes: Route[] = [
  // Welcome and sign-in
  { method: 'GET', url: '/', action: Welcome.index },
  { method: 'POST', url: '/signin', action: Welcome.signIn, rateLimit: signInLimit },
  { method: 'POST', url: '/signout', action: Welcome.signOut },
  { method: 'GET', url: '/signin/oauth/:provider', action: OAuth.start, rateLimit: signInLimit },
  { method: 'GET', url: '/signin/oauth/:provider/callback', action: OAuth.callback },

  // Accounts: a name that stays yours, and the sessions it has
  { method: 'POST', url: '/accounts', action: Accounts.create, rateLimit: signInLimit },
  { method: 'GET', url: '/account', action: Accounts.page, auth: 'page' },
  { method: 'GET', url: '/account/sessions', action: Accounts.sessions, auth: 'api' },
  { method: 'POST', url: '/account/sessions/end', action: Accounts.endSessions, auth: 'api' },
  { method: 'POST', url: '/account/password', action: Accounts.password, auth: 'api' },

  // Passkeys (WebAuthn): an account adds them, anyone signs in with one (no name asked first)
  { method: 'POST', url: '/account/passkeys/options', action: Passkeys.registrationOptions, auth: 'api' },
  { method: 'POST', url: '/account/passkeys', action: Passkeys.add, auth: 'api' },
  { method: 'POST', url: '/account/passkeys/:id/delete', action: Passkeys.remove, auth: 'api' },
  { method: 'POST', url: '/signin/passkey/options', action: Passkeys.signInOptions },
  { method: 'POST', url: '/signin/passkey', action: Passkeys.signIn, rateLimit: signInLimit },

  // Operations
  { method: 'GET', url: '/healthz', action: Ops.healthz },
  { method: 'GET', url: '/readyz', action: Ops.readyz },
  { method: 'GET', url: '/metrics', action: Ops.metrics },

  // Who is here (every transport), and generated assets
  { method: 'GET', url: '/room/users', action: People.users, auth: 'api' },
  { method: 'GET', url: '/room/history', action: People.history, auth: 'api' },
  { method: 'GET', url: '/avatars/:file', action: People.avatar },
  { method: 'POST', url: '/room/leave', action: People.leave, auth: 'api' },
  { method: 'POST', url: '/presence', action: People.presence, auth: 'api' },
  { method: 'GET', url: '/public/js/client/:file', action: People.clientScript },
  { method: 'GET', url: '/public/js/vendor/:file', action: People.vendorScript },
  { method: 'GET', url: '/public/js/page/:file', action: People.pageScript },

  // Active refresh
  { method: 'GET', url: '/refresh', action: Refresh.index, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/refresh/room', action: Refresh.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/refresh/room/thread', action: Refresh.thread, auth: 'api', sameOrigin: true },
  { method: 'GET', url: '/refresh/room/threads/:id', action: Refresh.threadPage, auth: 'page' },
  { method: 'POST', url: '/refresh/room', action: Refresh.say, auth: 'page' },
  { method: 'POST', url: '/refresh/room/typing', action: Refresh.typing, auth: 'api' },
  { method: 'POST', url: '/refresh/room/leave', action: Refresh.leave, auth: 'page' },

  // Long polling (Comet)
  { method: 'GET', url: '/longpolling/room', action: LongPolling.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/longpolling/room/messages', action: LongPolling.waitMessages, auth: 'api', sameOrigin: true },
  { method: 'POST', url: '/longpolling/room/messages', action: LongPolling.say, auth: 'api' },
  { method: 'POST', url: '/longpolling/room/typing', action: LongPolling.typing, auth: 'api' },
  { method: 'POST', url: '/longpolling/room/leave', action: LongPolling.leave, auth: 'page' },

  // Server-Sent Events: the room as an event stream, sending by POST
  { method: 'GET', url: '/sse/room', action: Sse.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/sse/room/events', action: Sse.events, auth: 'api', sameOrigin: true },
  { method: 'POST', url: '/sse/room/messages', action: Sse.say, auth: 'api' },
  { method: 'POST', url: '/sse/room/typing', action: Sse.typing, auth: 'api' },
  { method: 'POST', url: '/sse/room/leave', action: Sse.leave, auth: 'page' },

  // Automatic: WebSocket, falling back to the event stream, then long polling (the page's script chooses)
  { method: 'GET', url: '/auto/room', action: Auto.room, auth: 'page', sameOrigin: true },

  // WebSocket
  { method: 'GET', url: '/websocket/room', action: WebSocket.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/websocket/room/socket', action: WebSocket.notUpgraded, socket: WebSocket.roomSocket, auth: 'api' },
  { method: 'POST', url: '/websocket/room/messages', action: WebSocket.say, auth: 'api' },
  { method: 'POST', url: '/websocket/room/leave', action: WebSocket.leave, auth: 'page' },

  // Rooms: the lobby is the room of every route above; each other room has the same routes under
  // /…/rooms/:room/…. A room a person may not read answers 404 on every one of them.
  { method: 'GET', url: '/rooms', action: Rooms.list, auth: 'api' },
  { method: 'POST', url: '/rooms', action: Rooms.create, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/join', action: Rooms.join, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/leave', action: Rooms.leave, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/invite', action: Rooms.invite, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/describe', action: Rooms.describe, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/moderation', action: Rooms.moderate, auth: 'api' },
  { method: 'POST', url: '/room/moderation', action: Rooms.moderate, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/messages/:id/report', action: Rooms.report, auth: 'api' },
  { method: 'POST', url: '/room/messages/:id/report', action: Rooms.report, auth: 'api' },
  { method: 'GET', url: '/reports', action: Rooms.allReports, auth: 'api' },
  { method: 'GET', url: '/rooms/:room/reports', action: Rooms.reports, auth: 'api' },
  { method: 'GET', url: '/room/reports', action: Rooms.reports, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/reports/:id/dismiss', action: Rooms.dismiss, auth: 'api' },
  { method: 'POST', url: '/room/reports/:id/dismiss', action: Rooms.dismiss, auth: 'api' },
  { method: 'GET', url: '/rooms/:room/moderate', action: Rooms.moderationPage, auth: 'page' },
  { method: 'GET', url: '/room/moderate', action: Rooms.moderationPage, auth: 'page' },
  { method: 'POST', url: '/rooms/:room/read', action: Rooms.read, auth: 'api' },
  { method: 'POST', url: '/direct', action: Rooms.direct, auth: 'api' },

  // Messages: one's own edited or deleted (every room; the lobby's under /room/…), and search across the rooms one can read
  { method: 'POST', url: '/room/messages/:id/edit', action: Messages.edit, auth: 'api' },
  { method: 'POST', url: '/room/messages/:id/delete', action: Messages.remove, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/messages/:id/edit', action: Messages.edit, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/messages/:id/delete', action: Messages.remove, auth: 'api' },
  { method: 'POST', url: '/room/messages/:id/reactions', action: Messages.react, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/messages/:id/reactions', action: Messages.react, auth: 'api' },
  { method: 'GET', url: '/room/messages/:id', action: Messages.message, auth: 'api' },
  { method: 'GET', url: '/rooms/:room/messages/:id', action: Messages.message, auth: 'api' },
  { method: 'GET', url: '/room/messages/:id/thread', action: Messages.thread, auth: 'api' },
  { method: 'GET', url: '/rooms/:room/messages/:id/thread', action: Messages.thread, auth: 'api' },
  { method: 'POST', url: '/room/files', action: Files.upload, auth: 'api' },
  { method: 'POST', url: '/rooms/:room/files', action: Files.upload, auth: 'api' },
  { method: 'GET', url: '/room/files/:id', action: Files.download, auth: 'api' },
  { method: 'GET', url: '/rooms/:room/files/:id', action: Files.download, auth: 'api' },
  { method: 'GET', url: '/room/files/:id/thumbnail', action: Files.thumbnail, auth: 'api' },
  { method: 'GET', url: '/rooms/:room/files/:id/thumbnail', action: Files.thumbnail, auth: 'api' },
  { method: 'GET', url: '/search', action: Messages.search, auth: 'page' },

  { method: 'GET', url: '/rooms/:room/history', action: People.history, auth: 'api' },
  { method: 'GET', url: '/rooms/:room/users', action: People.users, auth: 'api' },
  { method: 'GET', url: '/refresh/rooms/:room', action: Refresh.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/refresh/rooms/:room/thread', action: Refresh.thread, auth: 'api', sameOrigin: true },
  { method: 'GET', url: '/refresh/rooms/:room/threads/:id', action: Refresh.threadPage, auth: 'page' },
  { method: 'POST', url: '/refresh/rooms/:room', action: Refresh.say, auth: 'page' },
  { method: 'POST', url: '/refresh/rooms/:room/typing', action: Refresh.typing, auth: 'api' },
  { method: 'GET', url: '/longpolling/rooms/:room/messages', action: LongPolling.waitMessages, auth: 'api', sameOrigin: true },
  { method: 'POST', url: '/longpolling/rooms/:room/messages', action: LongPolling.say, auth: 'api' },
  { method: 'POST', url: '/longpolling/rooms/:room/typing', action: LongPolling.typing, auth: 'api' },
  { method: 'GET', url: '/sse/rooms/:room/events', action: Sse.events, auth: 'api', sameOrigin: true },
  { method: 'GET', url: '/websocket/rooms/:room/socket', action: WebSocket.notUpgraded, socket: WebSocket.roomSocket, auth: 'api' },
  { method: 'POST', url: '/websocket/rooms/:room/messages', action: WebSocket.say, auth: 'api' },
  { method: 'POST', url: '/sse/rooms/:room/messages', action: Sse.say, auth: 'api' },
  { method: 'POST', url: '/sse/rooms/:room/typing', action: Sse.typing, auth: 'api' },
  // Each room's live pages, as the lobby's (their scripts build the room's URLs from data-room)
  { method: 'GET', url: '/auto/rooms/:room', action: Auto.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/websocket/rooms/:room', action: WebSocket.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/sse/rooms/:room', action: Sse.room, auth: 'page', sameOrigin: true },
  { method: 'GET', url: '/longpolling/rooms/:room', action: LongPolling.room, auth: 'page', sameOrigin: true },
  // One connection, many rooms: a cursor per room
  { method: 'GET', url: '/websocket/socket', action: WebSocket.notUpgraded, socket: WebSocket.roomsSocket, auth: 'api' },
  { method: 'GET', url: '/longpolling/messages', action: LongPolling.waitRooms, auth: 'api', sameOrigin: true },
  { method: 'GET', url: '/sse/events', action: Sse.roomsEvents, auth: 'api', sameOrigin: true },
]
