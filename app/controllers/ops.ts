import { timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

/** GET /healthz — the process is alive. */
export function healthz(_request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').send({ status: 'ok' })
}

/** GET /readyz — the process can serve the room: its broker answers (503 while Redis is down). */
export async function readyz(request: FastifyRequest, reply: FastifyReply) {
  const ready = await request.server.chatroom.ready()
  return reply
    .code(ready ? 200 : 503)
    .header('cache-control', 'no-store')
    .send(ready ? { status: 'ready' } : { status: 'unavailable', message: 'The broker cannot be reached.' })
}

/** GET /metrics — Prometheus text format, for a scraper that has METRICS_TOKEN. */
export async function metrics(request: FastifyRequest, reply: FastifyReply) {
  const token = request.server.config.METRICS_TOKEN
  const registry = request.server.metricsRegistry
  if (!token || !registry) return reply.code(404).send({ error: 'Not Found', message: 'Metrics are off: set METRICS_TOKEN and send it as a Bearer token.' })
  const given = Buffer.from(request.headers.authorization ?? '')
  const wanted = Buffer.from(`Bearer ${token}`)
  if (given.length !== wanted.length || !timingSafeEqual(given, wanted)) {
    return reply.code(401).header('www-authenticate', 'Bearer').send({ error: 'Unauthorized', message: 'Send Authorization: Bearer METRICS_TOKEN.' })
  }
  return reply.type(registry.contentType).header('cache-control', 'no-store').send(await registry.metrics())
}
