import { LogController, type FastifyReply, type FastifyRequest } from 'fastify'

/** Paths logged only at debug: static files, pictures and the probes a load balancer sends every few seconds. */
const quiet = (path: string) =>
  path.startsWith('/public/') || path.startsWith('/avatars/') || path === '/healthz' || path === '/readyz' || path === '/metrics' || path === '/favicon.ico'

/**
 * One line per request, once it is answered, instead of fastify's two: `GET /room/history 200
 * 3 ms` (the path without its query, which may hold what someone searched for). A long poll or
 * an event stream is its line when it ends, with how long it lasted.
 */
export class OneLinePerRequest extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (!error && (reply.log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled?.('info') === false) return
    const path = request.url.split('?', 1)[0]!
    const line = `${request.method} ${path} ${reply.statusCode} ${Math.round(reply.elapsedTime)} ms`
    if (error) reply.log.error({ err: error }, line)
    else if (quiet(path)) reply.log.debug(line)
    else reply.log.info(line)
  }
}
