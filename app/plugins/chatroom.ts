import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../conf/config.js'
import type { Broker } from '../chatroom/broker/broker.js'
import { MemoryBroker } from '../chatroom/broker/memory.js'
import { Chatroom } from '../chatroom/chatroom.js'
import type { FloodGuard } from '../chatroom/flood.js'

declare module 'fastify' {
  interface FastifyInstance {
    chatroom: Chatroom
    /** A limit shared by every process on this broker (sign-ins per IP). */
    limiter(scope: string, limit: number, windowMs: number): FloodGuard
  }
}

/** The broker the configuration asks for; with Redis, connected (or a clear error). Redis is loaded only then. */
async function brokerFor(config: Config, log: FastifyBaseLogger): Promise<Broker> {
  if (config.BROKER === 'memory') return new MemoryBroker(config.ARCHIVE_SIZE)
  const { RedisBroker } = await import('../chatroom/broker/redis.js')
  const broker = new RedisBroker({
    url: config.REDIS_URL,
    archiveSize: config.ARCHIVE_SIZE,
    prefix: config.REDIS_PREFIX,
    onError: (err) => log.warn({ err }, 'redis error'),
    onStatus: (status) => log.info(status),
  })
  try {
    await broker.connect()
  } catch (error) {
    await broker.close()
    const shown = config.REDIS_URL.replace(/\/\/[^@/]*@/, '//***@')
    throw new Error(`Cannot reach Redis at ${shown} (BROKER=redis): ${(error as Error).message}`)
  }
  return broker
}

/** One Chatroom per app instance (never a module singleton), closed with the app. */
export default fp(
  async function chatroom(app, opts: { config: Config; broker?: Broker }) {
    const { config } = opts
    const broker = opts.broker ?? (await brokerFor(config, app.log))
    const lease = (interval: number) => interval * config.PRESENCE_LEASE_FACTOR * 1000
    const room = new Chatroom(broker, {
      archiveSize: config.ARCHIVE_SIZE,
      subscriberQueue: config.SUBSCRIBER_QUEUE,
      maxMessageLength: config.MAX_MESSAGE_LENGTH,
      flood: { limit: config.RATE_LIMIT_MESSAGES, windowMs: config.RATE_LIMIT_WINDOW * 1000 },
      presence: {
        graceMs: config.PRESENCE_GRACE * 1000,
        ttlMs: config.PRESENCE_TTL * 1000,
        // A refresh or long-poll user stays online a few of their intervals after their last request.
        leaseMs: { refresh: lease(config.REFRESH_INTERVAL), longpolling: lease(config.LONGPOLL_TIMEOUT) },
      },
      onError: (err, what) => app.log.error({ err }, what),
    })
    await room.start()
    app.decorate('chatroom', room)
    app.decorate('limiter', (scope: string, limit: number, windowMs: number) => broker.floodGuard(scope, limit, windowMs))
    // Before the server stops accepting: pending long polls answer, sockets close (1001), and
    // everyone this process held leaves; otherwise close() would wait on them.
    app.addHook('preClose', () => room.endSubscriptions())
    app.addHook('onClose', () => room.close())
  },
  { name: 'chatroom' },
)
