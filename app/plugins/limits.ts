import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import underPressure from '@fastify/under-pressure'
import fp from 'fastify-plugin'
import type { Config } from '../../conf/config.js'

/** The process's open-file limit, from /proc (Linux); undefined where it cannot be read. */
export function descriptorLimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
    const soft = Number(line?.split(/\s{2,}/)[1])
    return Number.isFinite(soft) ? soft : undefined
  } catch {
    return undefined
  }
}

/** Descriptors kept for the process itself (log files, the store, Redis, PostgreSQL, DNS). */
const HEADROOM = 64

/** The connection cap: MAX_CONNECTIONS, or what the descriptor limit leaves after the headroom. */
export function connectionCap(config: Config, limit = descriptorLimit()): number | undefined {
  if (config.MAX_CONNECTIONS > 0) return config.MAX_CONNECTIONS
  return limit === undefined ? undefined : Math.max(16, limit - HEADROOM)
}

/**
 * Limits that hold under attack: headers and whole requests must arrive in time (slowloris and
 * slow bodies are cut), idle keep-alives close, connections are capped in all (below the
 * descriptor limit) and per IP, and when the event loop lags new requests get 503 + Retry-After.
 * The request and keep-alive timeouts are set where the app is made (Fastify's options).
 */
export default fp(
  async function limits(app, opts: { config: Config }) {
    const { config } = opts
    const server = app.server
    server.headersTimeout = config.HEADERS_TIMEOUT * 1000
    const cap = connectionCap(config)
    if (cap !== undefined) server.maxConnections = cap
    app.log.info(`connections: at most ${cap ?? 'unlimited'} (descriptor limit ${descriptorLimit() ?? 'unknown'}), ${config.MAX_CONNECTIONS_PER_IP || 'no cap'} per IP`)

    if (config.MAX_CONNECTIONS_PER_IP > 0) {
      const perIp = new Map<string, number>()
      server.on('connection', (socket: Socket) => {
        const ip = socket.remoteAddress ?? 'unknown'
        const open = (perIp.get(ip) ?? 0) + 1
        if (open > config.MAX_CONNECTIONS_PER_IP) {
          // Over the cap: a short answer and the door, before any parsing.
          socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
          socket.destroySoon()
          return
        }
        perIp.set(ip, open)
        socket.once('close', () => {
          const left = (perIp.get(ip) ?? 1) - 1
          if (left > 0) perIp.set(ip, left)
          else perIp.delete(ip)
        })
      })
    }

    if (config.MAX_EVENT_LOOP_DELAY > 0) {
      await app.register(underPressure, {
        maxEventLoopDelay: config.MAX_EVENT_LOOP_DELAY,
        retryAfter: 5,
        message: 'The server is overloaded right now; try again in a few seconds.',
      })
    }
  },
  { name: 'limits' },
)
