/**
 * A backend (Redis, PostgreSQL) that did not answer in time. It says 503: the request is
 * answered "try again shortly" instead of hanging, and the error handler hides nothing useful.
 */
export class DeadlineError extends Error {
  readonly statusCode = 503
  constructor(what: string, ms: number) {
    super(`${what} did not answer within ${ms} ms`)
    this.name = 'DeadlineError'
  }
}

/** The promise, or a DeadlineError after `ms`; `onLate` runs if the deadline won (to undo what is under way). */
export function deadline<T>(promise: Promise<T>, ms: number, what: string, onLate?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onLate?.()
      reject(new DeadlineError(what, ms))
    }, ms)
    timer.unref()
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

/**
 * Whether an error means a backend is away (not answering, not reachable), as opposed to a
 * bug: such errors are answered 503 with Retry-After, not 500.
 */
export function backendUnavailable(error: unknown): boolean {
  if (error instanceof DeadlineError) return true
  const { code, message, statusCode } = (error ?? {}) as { code?: unknown; message?: unknown; statusCode?: unknown }
  // A backend's own "unavailable" (PostgreSQL with no host that takes writes, during a failover).
  if (statusCode === 503) return true
  // Network errors; PostgreSQL's connection errors (08), shutdowns and "cannot connect now" (57P01-03), a cancelled
  // statement (57014), a standby refusing a write (25006: the primary moved).
  if (typeof code === 'string' && (/^E(CONN|HOST|NET|PIPE|TIMEDOUT|AI_AGAIN)/.test(code) || code.startsWith('08') || /^57P0[123]$/.test(code) || code === '57014' || code === '25006')) return true
  return typeof message === 'string' && /timed? ?out|Connection terminated|Stream isn't writeable|enableOfflineQueue|Connection is closed|database file (is gone|was replaced)/i.test(message)
}
