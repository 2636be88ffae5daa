import type { WebsocketHandler } from '@fastify/websocket'
import type { HTTPMethods, RouteHandlerMethod } from 'fastify'
import * as App from '../app/controllers/app.js'

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
}

export const routes: Route[] = [
  // Welcome and sign-in
  { method: 'GET', url: '/', action: App.index },
  { method: 'POST', url: '/signin', action: App.signIn },
  { method: 'POST', url: '/signout', action: App.signOut },
]
