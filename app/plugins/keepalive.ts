import fp from 'fastify-plugin'
import type { WebSocket } from 'ws'
import type { Config } from '../../conf/config.js'

/**
 * Pings every socket each PING_INTERVAL and terminates those silent for PONG_TIMEOUT
 * (gorilla's keepalive). One timer for all sockets; none per connection.
 */
export default fp(
  async function keepalive(app, opts: { config: Config }) {
    const pongTimeoutMs = opts.config.PONG_TIMEOUT * 1000
    const lastHeard = new WeakMap<WebSocket, number>()
    app.websocketServer.on('connection', (socket: WebSocket) => {
      lastHeard.set(socket, Date.now())
      socket.on('pong', () => lastHeard.set(socket, Date.now()))
      socket.on('message', () => lastHeard.set(socket, Date.now()))
    })
    const timer = setInterval(() => {
      const now = Date.now()
      for (const socket of app.websocketServer.clients) {
        if (now - (lastHeard.get(socket) ?? now) > pongTimeoutMs) socket.terminate()
        else if (socket.readyState === socket.OPEN) socket.ping()
      }
    }, opts.config.PING_INTERVAL * 1000)
    timer.unref()
    app.addHook('onClose', async () => clearInterval(timer))
  },
  { name: 'keepalive', dependencies: ['@fastify/websocket'] },
)
