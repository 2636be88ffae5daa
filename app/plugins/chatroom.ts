import type { FastifyBaseLogger } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../../conf/config.js'
import type { Broker } from '../chatroom/broker/broker.js'
import { MemoryBroker } from '../chatroom/broker/memory.js'
import { RedisBroker } from '../chatroom/broker/redis.js'
import { Chatroom } from '../chatroom/chatroom.js'
import { MemoryFloodGuard, type FloodGuard } from '../chatroom/flood.js'
import { LocalPresenceStore, Presence } from '../chatroom/presence.js'

declare module 'fastify' {
  interface FastifyInstance {
    chatroom: Chatroom
    presence: Presence
    floodGuard: FloodGuard
  }
}

/** The broker the configuration asks for; with Redis, connected (or a clear error). */
async function brokerFor(config: Config, log: FastifyBaseLogger): Promise<Broker> {
  if (config.BROKER === 'memory') return new MemoryBroker(config.ARCHIVE_SIZE)
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
    const broker = opts.broker ?? (await brokerFor(opts.config, app.log))
    const room = new Chatroom(broker, {
      archiveSize: opts.config.ARCHIVE_SIZE,
      subscriberQueue: opts.config.SUBSCRIBER_QUEUE,
    })
    await room.start()
    const store = broker instanceof RedisBroker ? broker.presenceStore(opts.config.PRESENCE_TTL * 1000) : new LocalPresenceStore(room)
    const presence = new Presence(store, {
      graceMs: opts.config.PRESENCE_GRACE * 1000,
      onError: (err) => app.log.error({ err }, 'could not publish a join or leave'),
    })
    presence.start()
    app.decorate('chatroom', room)
    app.decorate('presence', presence)
    // With Redis the limit is shared by every process, so a user cannot multiply it by reconnecting elsewhere.
    const { RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW } = opts.config
    app.decorate(
      'floodGuard',
      broker instanceof RedisBroker
        ? broker.floodGuard(RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW * 1000)
        : new MemoryFloodGuard(RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW * 1000),
    )
    // Before the server stops accepting: pending long polls answer, sockets close (1001),
    // otherwise close() would wait on them.
    app.addHook('preClose', async () => {
      room.endSubscriptions()
      // Everyone this process held leaves (other processes may still hold some of them).
      await presence.close()
    })
    app.addHook('onClose', async () => {
      await room.close()
    })
  },
  { name: 'chatroom' },
)
