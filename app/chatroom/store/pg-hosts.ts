/**
 * DATABASE_URL with several hosts, as libpq writes it: `postgres://user@db1:5432,db2:5432/chat`.
 * Each host is tried in turn and the one that takes writes (not in recovery) is used; after a
 * failover (the primary gone, a standby promoted) every process finds the new one by itself.
 */

const SHAPE = /^(postgres(?:ql)?:\/\/)((?:[^@/?#]*@)?)([^/?#]*)(.*)$/

/**
 * One URL per host, in the order given (a single-host URL comes back alone). Throws on a URL that
 * is not postgres:// or names an empty host.
 */
export function postgresHosts(url: string): string[] {
  const match = SHAPE.exec(url)
  if (!match) throw new Error('must be a postgres:// URL')
  const [, scheme, credentials, hosts, rest] = match as unknown as [string, string, string, string, string]
  const list = hosts.split(',')
  if (list.some((host) => host.trim() === '')) throw new Error('a host in the list is empty')
  return list.map((host) => {
    const one = `${scheme}${credentials}${host.trim()}${rest}`
    // Each must stand as a URL of its own (a port that is a number, no spaces).
    const parsed = new URL(one)
    if (!parsed.hostname) throw new Error(`no host in ${JSON.stringify(host)}`)
    return one
  })
}

/** The URL with its password (if any) as ***, for logs and start lines; works on a list of hosts. */
export const hidePassword = (url: string) => url.replace(/^([a-z]+:\/\/[^:@/]*):[^@/]*@/i, '$1:***@')

/** An error that means the connection or the server went away (or took no writes): time to look for the primary. */
export function lostPrimary(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string }
  // admin_shutdown, crash_shutdown, cannot_connect_now, read_only_sql_transaction; the socket's own.
  if (code && ['57P01', '57P02', '57P03', '25006', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code)) return true
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(message ?? '')
}
