import type { WebsocketHandler } from '@fastify/websocket'
import type { RateLimitOptions } from '@fastify/rate-limit'
import type { HTTPMethods, RouteHandlerMethod } from 'fastify'
import type { Config } from './config.js'
import * as App from '../app/controllers/app.js'
import * as LongPolling from '../app/controllers/longpolling.js'
import * as Refresh from '../app/controllers/refresh.js'
import * as WebSocket from '../app/controllers/websocket.js'
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
  /** Per-IP limit (@fastify/rate-limit), for sign-in. */
  rateLimit?: (config: Config) => RateLimitOptions
}

const signInLimit = (config: Config): RateLimitOptions => ({ max: config.SIGNIN_RATE_LIMIT, timeWindow: 60_000 })

export const routes: Route[] = [
  // Welcome and sign-in
  { method: 'GET', url: '/', action: App.index },
  { method: 'POST', url: '/signin', action: App.signIn, rateLimit: signInLimit },
  { method: 'POST', url: '/signout', action: App.signOut },
  { method: 'GET', url: '/signin/oauth/:provider', action: App.oauthStart, rateLimit: signInLimit },
  { method: 'GET', url: '/signin/oauth/:provider/callback', action: App.oauthCallback },

  // Operations
  { method: 'GET', url: '/healthz', action: App.healthz },
  { method: 'GET', url: '/readyz', action: App.readyz },
  { method: 'GET', url: '/metrics', action: App.metrics },

  // Who is here (every transport)
  { method: 'GET', url: '/room/users', action: App.users, auth: 'api' },
  { method: 'GET', url: '/avatars/:file', action: App.avatar },

  // Active refresh
  { method: 'GET', url: '/refresh', action: Refresh.index, auth: 'page' },
  { method: 'GET', url: '/refresh/room', action: Refresh.room, auth: 'page' },
  { method: 'GET', url: '/refresh/room/thread', action: Refresh.thread, auth: 'api' },
  { method: 'POST', url: '/refresh/room', action: Refresh.say, auth: 'page' },
  { method: 'GET', url: '/refresh/room/leave', action: Refresh.leave, auth: 'page' },

  // Long polling (Comet)
  { method: 'GET', url: '/longpolling/room', action: LongPolling.room, auth: 'page' },
  { method: 'GET', url: '/longpolling/room/messages', action: LongPolling.waitMessages, auth: 'api' },
  { method: 'POST', url: '/longpolling/room/messages', action: LongPolling.say, auth: 'api' },
  { method: 'POST', url: '/longpolling/room/typing', action: LongPolling.typing, auth: 'api' },
  { method: 'GET', url: '/longpolling/room/leave', action: LongPolling.leave, auth: 'page' },

  // WebSocket
  { method: 'GET', url: '/websocket/room', action: WebSocket.room, auth: 'page' },
  { method: 'GET', url: '/websocket/room/socket', action: WebSocket.notUpgraded, socket: WebSocket.roomSocket, auth: 'api' },
  { method: 'GET', url: '/websocket/room/leave', action: WebSocket.leave, auth: 'page' },
]
