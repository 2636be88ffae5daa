/**
 * DATABASE_URL with several hosts, as libpq writes it: `postgres://user@db1:5432,db2:5432/chat`.
 * Each host is tried in turn and the one that takes writes (not in recovery) is used; after a
 * failover (the primary gone, a standby promoted) every process finds the new one by itself.
 */

// The user part runs to the last @ before the path (a password may hold a raw @).
const SHAPE = /^(postgres(?:ql)?:\/\/)((?:[^/?#]*@)?)([^@/?#]*)(.*)$/

/**
 * One URL per host, in the order given (a single-host URL comes back alone). Throws on a URL that
 * is not postgres:// or names an empty host.
 */
export function postgresHosts(url: string): string[] {
  const match = SHAPE.exec(url)
  if (!match) throw new Error('must be a postgres:// URL')
  const [, scheme, credentials, hosts, rest] = match as unknown as [string, string, string, string, string]
  // No host at all: a Unix socket (`postgres:///chat?host=/var/run/postgresql`), as it is.
  if (hosts === '') return [url]
  const list = hosts.split(',')
  if (list.some((host) => host.trim() === '')) throw new Error('a host in the list is empty')
  return list.map((host) => {
    const one = `${scheme}${credentials}${host.trim()}${rest}`
    // Each must stand as a URL of its own (a port that is a number, no spaces).
    new URL(one)
    return one
  })
}

/** The URL with its password (if any) as ***, for logs and start lines; works on a list of hosts. */
export const hidePassword = (url: string) => url.replace(/^([a-z]+:\/\/[^:@/]*):[^/?#]*@/i, '$1:***@')

/**
 * An error that means the connection or the server went away, or that it takes no writes (a
 * standby): time to look for the primary. Not an error of the query itself (a constraint, a bug).
 */
export function lostPrimary(error: unknown): boolean {
  const { code, message, name } = (error ?? {}) as { code?: string; message?: string; name?: string }
  // The deadline of a commit or a probe passed: the host may be unreachable with connections still open.
  if (name === 'DeadlineError') return true
  if (typeof code === 'string') {
    // A network error (refused, reset, unreachable, no such name...).
    if (/^E(?!RR_)[A-Z_]+$/.test(code)) return true
    // PostgreSQL: connection errors (08), shutdowns and "cannot connect now" (57P01-03), a standby refusing a write.
    if (code.startsWith('08') || /^57P0[123]$/.test(code) || code === '25006') return true
  }
  return /Connection terminated|Query read timeout/i.test(message ?? '')
}
