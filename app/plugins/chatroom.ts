import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../conf/config.js'
import type { Bus } from '../chatroom/bus/bus.js'
import { LocalBus } from '../chatroom/bus/local.js'
import { Chatroom } from '../chatroom/chatroom.js'
import type { FloodGuard } from '../chatroom/flood.js'
import { MemoryStore } from '../chatroom/store/memory.js'
import type { Store } from '../chatroom/store/store.js'
import { hidePassword } from '../chatroom/store/pg-hosts.js'

declare module 'fastify' {
  interface FastifyInstance {
    chatroom: Chatroom
    /** A limit shared by every process on this bus (sign-ins per IP). */
    limiter(scope: string, limit: number, windowMs: number): FloodGuard
  }
}


/** The log the configuration asks for. The drivers of the ones not asked for are never loaded. */
async function storeFor(config: Config, log: FastifyBaseLogger): Promise<Store> {
  if (config.STORE === 'memory') return new MemoryStore()
  if (config.STORE === 'sqlite') {
    const { SqliteStore } = await import('../chatroom/store/sqlite.js')
    let store
    try {
      store = new SqliteStore(config.DATA_DIR, { onError: (error) => log.error(error.message) })
    } catch (error) {
      // Most often another process already serves this DATA_DIR (the file is locked).
      throw new Error(`Cannot open the room's log (STORE=sqlite) in ${config.DATA_DIR}: ${(error as Error).message}`)
    }
    log.info(`room log: ${store.file}`)
    return store
  }
  const { PostgresStore } = await import('../chatroom/store/postgres.js')
  return new PostgresStore({ url: config.DATABASE_URL, timeoutMs: config.BACKEND_TIMEOUT * 1000, poolSize: config.PG_POOL_SIZE, onError: (err) => log.warn({ err }, 'postgres error') })
}

/** The bus the configuration asks for; with Redis, connected (or a clear error). */
async function busFor(config: Config, log: FastifyBaseLogger): Promise<Bus> {
  if (config.BROKER === 'memory') return new LocalBus()
  const { RedisBus } = await import('../chatroom/bus/redis.js')
  const bus = new RedisBus({
    url: config.REDIS_URL,
    prefix: config.REDIS_PREFIX,
    onError: (err) => log.warn({ err }, 'redis error'),
    onStatus: (status) => log.info(status),
    timeoutMs: config.BACKEND_TIMEOUT * 1000,
  })
  try {
    await bus.connect()
  } catch (error) {
    await bus.close()
    throw new Error(`Cannot reach Redis at ${hidePassword(config.REDIS_URL)} (BROKER=redis): ${(error as Error).message}`)
  }
  return bus
}

/** One Chatroom per app instance (never a module singleton), closed with the app. */
export default fp(
  async function chatroom(app, opts: { config: Config; store?: Store | undefined; bus?: Bus | undefined }) {
    const { config } = opts
    const store = opts.store ?? (await storeFor(config, app.log))
    const bus = opts.bus ?? (await busFor(config, app.log))
    const lease = (interval: number) => interval * config.PRESENCE_LEASE_FACTOR * 1000
    const room = new Chatroom(store, bus, {
      archiveSize: config.ARCHIVE_SIZE,
      subscriberQueue: config.SUBSCRIBER_QUEUE,
      maxMessageLength: config.MAX_MESSAGE_LENGTH,
      flood: { limit: config.RATE_LIMIT_MESSAGES, windowMs: config.RATE_LIMIT_WINDOW * 1000 },
      presence: {
        graceMs: config.PRESENCE_GRACE * 1000,
        ttlMs: config.PRESENCE_TTL * 1000,
        // A refresh or long-poll user stays online a few of their intervals after their last request.
        leaseMs: { refresh: lease(config.REFRESH_INTERVAL), longpolling: lease(config.LONGPOLL_TIMEOUT) },
        churnLimit: config.PRESENCE_CHURN,
        restartGraceMs: config.PRESENCE_RESTART_GRACE * 1000,
      },
      resumeMax: config.RESUME_MAX_EVENTS,
      replayMaxBytes: config.REPLAY_MAX_BYTES,
      roomLimits: { perCreator: config.ROOMS_PER_CREATOR, total: config.MAX_ROOMS, members: config.ROOM_MEMBERS_MAX },
      rosterLimit: config.ROSTER_LIMIT,
      perUser: { websocket: config.MAX_SOCKETS_PER_USER, sse: config.MAX_SOCKETS_PER_USER, longpolling: config.MAX_POLLS_PER_USER },
      retention: { maxEvents: config.HISTORY_MAX_EVENTS, maxAgeMs: config.HISTORY_MAX_AGE_DAYS * 86_400_000, everyMs: 60_000 },
      idleMs: config.ROOM_IDLE * 1000,
      operators: config.OPERATORS,
      reportsPerHour: config.REPORTS_PER_HOUR,
      onError: (err, what) => app.log.error({ err }, what),
    })
    try {
      await room.start()
    } catch (error) {
      await room.close().catch(() => {})
      const where = config.STORE === 'postgres' ? ` at ${hidePassword(config.DATABASE_URL)}` : config.STORE === 'sqlite' ? ` in ${config.DATA_DIR}` : ''
      throw new Error(`Cannot open the room's log (STORE=${config.STORE})${where}: ${(error as Error).message}`)
    }
    app.decorate('chatroom', room)
    app.decorate('limiter', (scope: string, limit: number, windowMs: number) => bus.floodGuard(scope, limit, windowMs))
    // Before the server stops accepting: pending long polls answer, sockets close (1001), and
    // everyone this process held leaves; otherwise close() would wait on them.
    app.addHook('preClose', () => room.endSubscriptions())
    app.addHook('onClose', () => room.close())
  },
  { name: 'chatroom' },
)
