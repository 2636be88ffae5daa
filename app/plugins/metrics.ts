import fp from 'fastify-plugin'
import type { Registry } from 'prom-client'
import { waitingPolls } from '../transport/http.js'
import { openStreams } from '../transport/sse-writer.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Undefined while METRICS_TOKEN is unset (/metrics is off, and prom-client is never loaded). */
    metricsRegistry: Registry | undefined
  }
}

/**
 * GET /metrics in Prometheus format: connections per transport, events and deliveries, lagged
 * drops, pending long polls, online users, and Node's own (event loop lag, memory, GC).
 * Values are read when scraped; nothing is added to the hot path but plain counters.
 */
export default fp(
  async function metrics(app) {
    if (!app.config.METRICS_TOKEN) return void app.decorate('metricsRegistry', undefined)
    const { collectDefaultMetrics, Counter, Gauge, Registry } = await import('prom-client')
    const registry = new Registry()
    collectDefaultMetrics({ register: registry })
    const stats = () => app.chatroom.stats

    new Gauge({
      name: 'chat_connections',
      help: 'Open connections by transport (long polling: polls waiting now)',
      labelNames: ['transport'],
      registers: [registry],
      collect() {
        this.set({ transport: 'websocket' }, app.websocketServer.clients.size)
        this.set({ transport: 'longpolling' }, waitingPolls())
        this.set({ transport: 'sse' }, openStreams())
      },
    })
    new Gauge({
      name: 'chat_longpolls_pending',
      help: 'Long polls waiting for an event',
      registers: [registry],
      collect() {
        this.set(waitingPolls())
      },
    })
    new Gauge({
      name: 'chat_online_users',
      help: 'Users this process holds online',
      registers: [registry],
      collect() {
        this.set(app.chatroom.presence.size)
      },
    })
    // Counters that mirror the room's own totals.
    const mirror = (name: string, help: string, read: () => number) =>
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset()
          this.inc(read())
        },
      })
    mirror('chat_events_total', 'Events this process received from the broker', () => stats().events)
    mirror('chat_deliveries_total', 'Events handed to readers on this process', () => stats().deliveries)
    mirror('chat_lagged_drops_total', 'Readers dropped for falling behind', () => stats().lagged)
    mirror('chat_reader_gaps_total', 'Readers that would have skipped an event (ended to resume instead); must stay 0', () => stats().gaps)
    mirror('chat_reader_repeats_total', 'Readers that would have been handed an event at or below their cursor again (ended to resume instead); must stay 0', () => stats().repeats)

    // Several processes (BROKER=redis): what the bus brings this process, and for how many rooms.
    if (app.chatroom.busReceived) {
      mirror('chat_bus_received_bytes_total', "Bytes this process read from the broker's subscriber connection (the events and signals of the rooms it watches)", () => app.chatroom.busReceived?.bytes ?? 0)
      new Gauge({
        name: 'chat_bus_rooms_watched',
        help: 'Rooms whose events this process takes from the broker (the rooms it has loaded)',
        registers: [registry],
        collect() {
          this.set(app.chatroom.busReceived?.rooms ?? 0)
        },
      })
    }

    app.decorate('metricsRegistry', registry)
  },
  { name: 'metrics' },
)
