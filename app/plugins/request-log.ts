import { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyRequest } from 'fastify'

type Bindings = Parameters<FastifyBaseLogger['child']>[0]
type ChildLoggerOptions = NonNullable<Parameters<FastifyBaseLogger['child']>[1]>

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

type LevelName = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'
type Logger = FastifyBaseLogger & { isLevelEnabled?(level: string): boolean }

/**
 * A request's logger, made only when the request writes a line. fastify makes a child logger
 * (bound to the request id) for every request; most requests (a long poll's answer, a send)
 * write nothing below info, and making the child was 2.4% of a busy long-poll server's time.
 * Until a line at an enabled level is written, this answers from the parent; the line then goes
 * through the real child, so it reads exactly as fastify's would.
 */
class LazyRequestLogger implements FastifyBaseLogger {
  #real: Logger | undefined
  constructor(
    private readonly parent: Logger,
    private readonly bindings: Bindings,
  ) {}

  #logger(): Logger {
    return (this.#real ??= this.parent.child(this.bindings) as Logger)
  }

  #write(level: LevelName, args: unknown[]): void {
    const logger = this.#real ?? this.parent
    if (logger.isLevelEnabled ? !logger.isLevelEnabled(level) : logger.level === 'silent') return
    ;(this.#logger()[level] as (...a: unknown[]) => void)(...args)
  }

  get level(): string {
    return (this.#real ?? this.parent).level
  }
  set level(level: string) {
    this.#logger().level = level
  }
  isLevelEnabled(level: string): boolean {
    const logger = this.#real ?? this.parent
    return logger.isLevelEnabled ? logger.isLevelEnabled(level) : true
  }
  fatal(...args: unknown[]): void {
    this.#write('fatal', args)
  }
  error(...args: unknown[]): void {
    this.#write('error', args)
  }
  warn(...args: unknown[]): void {
    this.#write('warn', args)
  }
  info(...args: unknown[]): void {
    this.#write('info', args)
  }
  debug(...args: unknown[]): void {
    this.#write('debug', args)
  }
  trace(...args: unknown[]): void {
    this.#write('trace', args)
  }
  silent(): void {}
  child(bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#logger().child(bindings, options)
  }
}

/**
 * fastify's childLoggerFactory: a LazyRequestLogger, unless the route sets its own level or
 * serializers (then the child is made at once, as fastify does).
 */
export function lazyRequestLogger(logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (options.level !== undefined || options.serializers !== undefined) return logger.child(bindings, options)
  return new LazyRequestLogger(logger, bindings)
}
