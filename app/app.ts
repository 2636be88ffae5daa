import { createServer } from 'node:http'
import { PassThrough } from 'node:stream'
import formbody from '@fastify/formbody'
import multipart from '@fastify/multipart'
import websocket from '@fastify/websocket'
import Fastify, { type FastifyInstance, type FastifyRequest, type FastifyServerOptions, type onRequestHookHandler } from 'fastify'
import type { Config } from '../conf/config.js'
import { routes, type RateLimit } from '../conf/routes.js'
import type { Bus } from './chatroom/bus/bus.js'
import type { Store } from './chatroom/store/store.js'
import { CloseCode } from './transport/protocol.js'
import { roomOf } from './transport/http.js'
import accounts from './plugins/accounts.js'
import chatroom from './plugins/chatroom.js'
import errors from './plugins/errors.js'
import { lazyRequestLogger, OneLinePerRequest } from './plugins/request-log.js'
import keepalive from './plugins/keepalive.js'
import limits from './plugins/limits.js'
import metrics from './plugins/metrics.js'
import oauth from './plugins/oauth.js'
import security from './plugins/security.js'
import session from './plugins/session.js'
import views from './plugins/views.js'
import { PollQueues } from './transport/poll-queue.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** The long-poll queues of people's streams, kept between a page's polls. */
    pollQueues: PollQueues
  }
}

/** How long responses in flight get to finish once shutdown has begun. */
const SHUTDOWN_DRAIN_MS = 500

export interface BuildOptions {
  /** Override the log and the bus the config would choose (tests). */
  store?: Store
  bus?: Bus
  logger?: FastifyServerOptions['logger']
  /**
   * Tests of the automatic page: act like a network that blocks a way in. `websocket`: upgrades
   * are refused (403, as a proxy that strips them); `sse`: event streams open but nothing ever
   * arrives (a proxy that buffers). The object may be changed while the app runs.
   */
  block?: { websocket?: boolean; sse?: boolean }
}

/** Builds the whole app, ready to inject or listen; never listens itself. */
export async function buildApp(config: Config, options: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? { level: config.LOG_LEVEL },
    // One line per request instead of two (app/plugins/request-log.ts).
    logController: new OneLinePerRequest(),
    // A request's child logger is made only when it writes a line (app/plugins/request-log.ts).
    childLoggerFactory: lazyRequestLogger,
    // The longest message, every character percent-encoded as 4 UTF-8 bytes, plus the form around it.
    bodyLimit: Math.max(16 * 1024, config.MAX_MESSAGE_LENGTH * 12 + 4096),
    trustProxy: config.TRUST_PROXY,
    // A request must arrive whole in time (a slow body is cut with 408); an idle connection
    // lives no longer than a long poll needs; idle keep-alives close soon.
    requestTimeout: config.REQUEST_TIMEOUT * 1000,
    // Node checks those timeouts every 30 s by default: often enough to cut slow clients in time.
    serverFactory: (handler) =>
      createServer(
        { connectionsCheckingInterval: 1000, headersTimeout: config.HEADERS_TIMEOUT * 1000, requestTimeout: config.REQUEST_TIMEOUT * 1000, keepAliveTimeout: config.KEEPALIVE_TIMEOUT * 1000 },
        handler,
      ),
    connectionTimeout: (config.LONGPOLL_TIMEOUT + config.REQUEST_TIMEOUT) * 1000,
    keepAliveTimeout: config.KEEPALIVE_TIMEOUT * 1000,
  })
  app.decorate('config', config)
  await app.register(errors)
  // First, so its hooks mark upgrade requests before any other hook can refuse one
  // (it then ends the refused socket).
  // A frame of the longest message, every character escaped, plus the JSON around it.
  await app.register(websocket, {
    options: { maxPayload: config.MAX_MESSAGE_LENGTH * 6 + 1024 },
    // On shutdown clients hear "going away" (1001), so their scripts reconnect elsewhere.
    preClose(done) {
      for (const client of this.websocketServer.clients) client.close(CloseCode.goingAway, 'server shutting down')
      this.websocketServer.close(() => done())
    },
  })
  await app.register(limits, { config })
  await app.register(security, { config })
  await app.register(formbody)
  // Files (POST …/files): one file of at most UPLOAD_MAX_BYTES, read as it comes, and a few short fields.
  await app.register(multipart, {
    limits: { fileSize: config.UPLOAD_MAX_BYTES, files: 1, fields: 8, parts: 10, fieldSize: Math.max(16 * 1024, config.MAX_MESSAGE_LENGTH * 12 + 4096), headerPairs: 50 },
  })
  await app.register(chatroom, { config, store: options.store, bus: options.bus })
  await app.register(session, { config })
  app.decorateRequest('room', undefined)
  // Long polls of the person's stream: each page's rooms stay entered between its polls.
  const pollQueues = new PollQueues(config.LONGPOLL_KEEP * 1000)
  app.decorate('pollQueues', pollQueues)
  app.addHook('onClose', async () => pollQueues.close())
  await app.register(accounts)
  await app.register(oauth, { config })
  await app.register(views)
  await app.register(keepalive, { config })
  await app.register(metrics)
  // Shutdown: once pending polls have answered and sockets have been told (preClose), give
  // responses a moment to go out, then cut what is left: idle keep-alives and connections a
  // client opened but never used, which server.close() would otherwise wait on.
  app.addHook('preClose', async () => {
    setTimeout(() => app.server.closeAllConnections(), SHUTDOWN_DRAIN_MS).unref()
  })
  if (options.block) blockWays(app, options.block)
  for (const route of routes) {
    app.route({
      method: route.method,
      url: route.url,
      handler: route.action,
      config: { ...(route.auth && { auth: route.auth }), ...(route.sameOrigin && { sameOrigin: true }) },
      ...(route.rateLimit && { onRequest: perIpLimit(app, route.rateLimit(config)) }),
      // A room's routes look the room up first: 404 for a room the person may not read, before any upgrade.
      ...(route.url.includes(':room') && { preHandler: async (request: FastifyRequest) => void (await roomOf(request)) }),
      ...(route.socket && { wsHandler: route.socket }),
    })
  }
  return app
}

/**
 * A route's per-IP limit, counted by the broker (so shared by every process on Redis). If the
 * broker cannot be asked, the request is let through rather than refused.
 */
function perIpLimit(app: FastifyInstance, limit: RateLimit): onRequestHookHandler {
  const guard = app.limiter(limit.scope, limit.max, limit.windowMs)
  return async (request, reply) => {
    const waitMs = await guard.take(request.ip ?? 'unknown').catch(() => 0)
    if (waitMs <= 0) return
    const retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
    reply.header('retry-after', String(retryAfter))
    throw Object.assign(new Error(`Too many attempts from your address. Try again in ${retryAfter} s.`), { statusCode: 429 })
  }
}

/** See BuildOptions.block: a network in the way, for tests. */
function blockWays(app: FastifyInstance, block: NonNullable<BuildOptions['block']>): void {
  app.addHook('onRequest', async (request, reply) => {
    const path = request.url.split('?')[0]
    // Every socket (a room's, or the person's stream's) and every event stream.
    if (block.websocket && path?.startsWith('/websocket/') && request.headers.upgrade) {
      return reply.code(403).send({ error: 'Forbidden', message: 'upgrades are blocked on this network' })
    }
    // Held open and silent, as a buffering proxy would, until the client gives up.
    if (block.sse && (path === '/sse/events' || /^\/sse\/(room|rooms\/[^/]+)\/events$/.test(path ?? ''))) return reply.type('text/event-stream').send(new PassThrough())
  })
}
