import { randomBytes } from 'node:crypto'
import { z } from 'zod'
import { postgresHosts } from '../app/chatroom/store/pg-hosts.js'

// Environment variables arrive as strings; empty strings count as unset.
const unset = (v: unknown) => (v === '' ? undefined : v)
const int = (min: number, max: number, fallback: number) => {
  const allowed = `must be a whole number from ${min} to ${max}`
  return z.preprocess(
    unset,
    z.coerce.number({ error: allowed }).int(allowed).min(min, allowed).max(max, allowed).default(fallback),
  )
}
const seconds = (min: number, max: number, fallback: number) => {
  const allowed = `must be a number of seconds from ${min} to ${max}`
  return z.preprocess(
    unset,
    z.coerce.number({ error: allowed }).min(min, allowed).max(max, allowed).default(fallback),
  )
}

const optionalString = z.preprocess(unset, z.string().optional())
const optionalUrl = z.preprocess(
  unset,
  z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
)

export const configSchema = z.object({
  HOST: z.preprocess(unset, z.string().min(1).default('127.0.0.1')),
  PORT: int(0, 65535, 9000),
  LOG_LEVEL: z.preprocess(
    unset,
    z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ),
  /** Events kept for replay on entry (Revel kept 10). */
  ARCHIVE_SIZE: int(1, 10_000, 100),
  /** Live events a subscriber may have waiting (beyond the archive it was handed) before it is dropped as lagged. */
  SUBSCRIBER_QUEUE: int(1, 100_000, 256),
  /** At least 32 characters; generated (with a warning) when unset. */
  SESSION_SECRET: z.preprocess(
    unset,
    z.string().min(32, 'must be at least 32 characters').optional(),
  ),
  /** Seconds a sign-in stays valid at most. */
  SESSION_MAX_AGE: int(60, 60 * 60 * 24 * 365, 60 * 60 * 24 * 7),
  /** Seconds a session may go unused before it ends. */
  SESSION_IDLE: int(60, 60 * 60 * 24 * 365, 60 * 60 * 24 * 2),
  /** Sessions one address may hold; past it, its least recently used one is signed out (0: no bound). */
  SESSIONS_PER_ADDRESS: int(0, 1_000_000, 50),
  /** The address people use (https://chat.example.com): OAuth callbacks are built from it, never from Host. */
  PUBLIC_URL: optionalUrl,
  /** /metrics answers only with "Authorization: Bearer METRICS_TOKEN" (unset: /metrics is off). */
  METRICS_TOKEN: z.preprocess(unset, z.string().min(16, 'must be at least 16 characters').optional()),
  /** Longest message, in characters, after trimming. */
  MAX_MESSAGE_LENGTH: int(1, 100_000, 2000),
  /** Seconds between thread reloads on the active refresh page. */
  REFRESH_INTERVAL: seconds(1, 300, 5),
  /** Seconds a long poll waits before answering []; proxies cut requests near 60 s. */
  LONGPOLL_TIMEOUT: seconds(0.1, 55, 25),
  /**
   * Seconds a page's long poll of the person's stream keeps its rooms entered after it answers,
   * for the page's next poll (0: every poll enters them again).
   */
  LONGPOLL_KEEP: seconds(0, 300, 10),
  /** Seconds between heartbeats (comments) on a Server-Sent Events stream, under common proxy idle timeouts (30-60 s). */
  SSE_HEARTBEAT: seconds(0.05, 55, 15),
  /** Seconds the automatic page waits before trying a stronger way again (after falling back). */
  AUTO_RETRY: seconds(0.5, 3600, 60),
  /** Seconds after a user's last connection goes before their leave is published (a reload is not leave+join). */
  PRESENCE_GRACE: seconds(0, 300, 5),
  /** Seconds without a key, a click or a pointer move before a visible page says its person is away (a hidden page says so at once). */
  AWAY_AFTER: seconds(5, 86_400, 300),
  /** After a restart: seconds the people still listed stay so, waiting for their pages to reconnect (no leave and join lines). */
  PRESENCE_RESTART_GRACE: seconds(0, 3600, 30),
  /**
   * A refresh or long-poll user stays online this many of their intervals (REFRESH_INTERVAL,
   * LONGPOLL_TIMEOUT) after their last request.
   */
  PRESENCE_LEASE_FACTOR: seconds(1, 20, 2),
  /** Messages one user may send per RATE_LIMIT_WINDOW, across all their connections and transports. */
  RATE_LIMIT_MESSAGES: int(1, 100_000, 20),
  RATE_LIMIT_WINDOW: seconds(0.1, 3600, 10),
  /** Rooms one person may create, and rooms in all (direct rooms included). */
  ROOMS_PER_CREATOR: int(0, 100_000, 20),
  MAX_ROOMS: int(1, 10_000_000, 10_000),
  /** Members of one private room. */
  ROOM_MEMBERS_MAX: int(2, 1_000_000, 1000),
  /** Rooms one connection (a socket, an event stream, a long poll) may carry at once. */
  MAX_ROOMS_PER_CONNECTION: int(1, 10_000, 50),
  /** Seconds a room (never the lobby) nobody reads or is present in, with no event, stays in memory before it is unloaded (its next use loads it again). */
  ROOM_IDLE: seconds(0.05, 86_400, 300),
  /** Invitations one person may send per hour. */
  INVITES_PER_HOUR: int(1, 100_000, 50),
  /** The largest file one may send, in bytes (a bigger one is refused with 413 before it is read). */
  UPLOAD_MAX_BYTES: int(1024, 1024 * 1024 * 1024, 10 * 1024 * 1024),
  /** Bytes of files one person may send per day (past it: 429 with Retry-After). */
  UPLOAD_QUOTA_BYTES: int(1024, 1024 ** 4, 200 * 1024 * 1024),
  /** Reports of messages one person may file per hour. */
  REPORTS_PER_HOUR: int(1, 100_000, 30),
  /** Sign-in attempts per minute from one IP address. */
  SIGNIN_RATE_LIMIT: int(1, 100_000, 60),
  /** WebSocket keepalive: ping this often; close a socket silent for PONG_TIMEOUT (gorilla: 54 s / 60 s). */
  PING_INTERVAL: seconds(0.05, 3600, 54),
  PONG_TIMEOUT: seconds(0.1, 7200, 60),
  /** Bytes a socket may have unsent before it gets no more frames; then its queue fills and it is dropped. */
  SOCKET_BUFFER_LIMIT: int(1024, 1 << 30, 1 << 20),
  /** Seconds a client gets to send a request's headers, and the whole request (a slow body is cut with 408). */
  HEADERS_TIMEOUT: seconds(1, 300, 10),
  REQUEST_TIMEOUT: seconds(1, 600, 20),
  /** Seconds an idle keep-alive connection is kept. */
  KEEPALIVE_TIMEOUT: seconds(1, 600, 5),
  /** Open connections in all, and from one IP address; 0: from the descriptor limit (all) or no cap (per IP). */
  MAX_CONNECTIONS: int(0, 1_000_000, 0),
  MAX_CONNECTIONS_PER_IP: int(0, 1_000_000, 256),
  /** Open sockets (WebSocket and event streams) and waiting long polls one user may have at once; the newest over the cap is refused. */
  MAX_SOCKETS_PER_USER: int(1, 10_000, 16),
  MAX_POLLS_PER_USER: int(1, 10_000, 16),
  /** The event loop lagging more than this many milliseconds: new requests get 503 with Retry-After. */
  MAX_EVENT_LOOP_DELAY: int(0, 60_000, 1000),
  /** Join/leave pairs one user may cause per minute; past it their leave waits until they settle. */
  PRESENCE_CHURN: int(1, 10_000, 6),
  /** People listed by name on the pages and /room/users (the rest are counted). */
  ROSTER_LIMIT: int(1, 10_000, 100),
  /** Other origins whose pages may open the socket and POST (comma-separated, e.g. https://chat.example.com). */
  ALLOWED_ORIGINS: z.preprocess(
    unset,
    z
      .string()
      .default('')
      .transform((list) => list.split(',').map((o) => o.trim()).filter(Boolean))
      .pipe(z.array(z.url({ protocol: /^https?$/, error: 'must be comma-separated http(s) origins' }))),
  ),
  /** Accounts who run the server (comma-separated names): moderators of every room, owners of the lobby. */
  OPERATORS: z.preprocess(
    unset,
    z
      .string()
      .default('')
      .transform((list) => list.split(',').map((o) => o.trim()).filter(Boolean)),
  ),
  /** Behind a reverse proxy: trust X-Forwarded-* for the client IP, protocol and host. */
  TRUST_PROXY: z.preprocess(unset, z.enum(['true', 'false'], { error: 'must be true or false' }).default('false').transform((v) => v === 'true')),
  /**
   * Where the room's log lives. sqlite: a file in DATA_DIR (the default, nothing to install);
   * postgres: DATABASE_URL, for several processes; memory: gone when the process ends.
   */
  STORE: z.preprocess(unset, z.enum(['sqlite', 'postgres', 'memory'], { error: 'must be sqlite, postgres or memory' }).default('sqlite')),
  /** The SQLite file and the generated session secret live here (created on first start). */
  DATA_DIR: z.preprocess(unset, z.string().min(1).default('./data')),
  /**
   * One host, or several as libpq writes them (`postgres://user@db1:5432,db2:5432/chat`): the one
   * that takes writes is used, and after a failover each process finds the promoted one by itself.
   */
  DATABASE_URL: z.preprocess(
    unset,
    z
      .string()
      .superRefine((url, ctx) => {
        try {
          postgresHosts(url)
        } catch (error) {
          ctx.addIssue({ code: 'custom', message: `must be a postgres:// URL (one host or a list: postgres://user@db1:5432,db2:5432/chat): ${(error as Error).message}` })
        }
      })
      .default('postgres://postgres@127.0.0.1:5432/chat'),
  ),
  /** Events kept in the log; older ones are pruned in the background (0: no limit). */
  HISTORY_MAX_EVENTS: int(0, 1_000_000_000, 1_000_000),
  /** Days events are kept (0: no limit). */
  HISTORY_MAX_AGE_DAYS: int(0, 36_500, 0),
  /** A client resuming from further back than this many events starts over instead. */
  RESUME_MAX_EVENTS: int(1, 100_000, 5000),
  /**
   * Bytes of missed events one resume may read from the log at once: a long poll answers that
   * much and the client polls on from there; a socket or stream further behind is told to start
   * over (and the page offers the history), so a far-behind cursor cannot make the server hold
   * megabytes per request.
   */
  REPLAY_MAX_BYTES: int(16_384, 1 << 30, 1 << 20),
  /** memory: one process; redis: several processes share one room (needs STORE=postgres). */
  BROKER: z.preprocess(unset, z.enum(['memory', 'redis'], { error: 'must be memory or redis' }).default('memory')),
  REDIS_URL: z.preprocess(unset, z.url({ protocol: /^rediss?$/, error: 'must be a redis:// or rediss:// URL' }).default('redis://127.0.0.1:6379')),
  /** With Redis: seconds a process's presence leases live; a process that dies takes its users with it after this. */
  PRESENCE_TTL: seconds(1, 3600, 15),
  /** Prefix for this room's Redis keys and channels. */
  REDIS_PREFIX: z.preprocess(unset, z.string().min(1).max(100).default('chat:')),
  /**
   * Seconds any one call to PostgreSQL or Redis on a request's path may take (a commit, a read, a
   * limit, a name claim): past it the request is answered 503 and nothing it began is left
   * half-done. A backend that stopped answering is then not asked again until it answers a probe.
   */
  BACKEND_TIMEOUT: seconds(0.1, 60, 2),
  /** Connections to PostgreSQL each process keeps open at most (STORE=postgres): every process's count together must fit the server's max_connections. */
  PG_POOL_SIZE: int(1, 100, 4),
  /** local: identicons served by this server; gravatar: Gravatar for email sign-ins. */
  AVATARS: z.preprocess(unset, z.enum(['local', 'gravatar'], { error: 'must be local or gravatar' }).default('local')),
  /** "Sign in with Facebook" appears when both are set. */
  FB_CLIENT_ID: optionalString,
  FB_CLIENT_SECRET: optionalString,
  /** Any other OAuth2 provider: all of id, secret and the three URLs, or none. */
  OAUTH_LABEL: z.preprocess(unset, z.string().max(40).default('OAuth')),
  OAUTH_CLIENT_ID: optionalString,
  OAUTH_CLIENT_SECRET: optionalString,
  OAUTH_AUTHORIZE_URL: optionalUrl,
  OAUTH_TOKEN_URL: optionalUrl,
  OAUTH_PROFILE_URL: optionalUrl,
  /** The profile field that becomes the user's name. */
  OAUTH_NAME_FIELD: z.preprocess(unset, z.string().min(1).default('name')),
  /** Space-separated scopes to ask for. */
  OAUTH_SCOPE: z.preprocess(unset, z.string().default('')),
})
  .superRefine((c, ctx) => {
    if (c.BROKER === 'redis' && c.STORE !== 'postgres') {
      ctx.addIssue({ code: 'custom', path: ['BROKER'], message: `needs STORE=postgres (STORE=${c.STORE} is one process's log; several processes must share one database)` })
    }
    if (c.HEADERS_TIMEOUT > c.REQUEST_TIMEOUT) {
      ctx.addIssue({ code: 'custom', path: ['HEADERS_TIMEOUT'], message: 'must not be longer than REQUEST_TIMEOUT' })
    }
    if (c.PONG_TIMEOUT <= c.PING_INTERVAL) {
      ctx.addIssue({ code: 'custom', path: ['PONG_TIMEOUT'], message: 'must be longer than PING_INTERVAL' })
    }
    if (Boolean(c.FB_CLIENT_ID) !== Boolean(c.FB_CLIENT_SECRET)) {
      const missing = c.FB_CLIENT_ID ? 'FB_CLIENT_SECRET' : 'FB_CLIENT_ID'
      ctx.addIssue({ code: 'custom', path: [missing], message: 'must be set together with the other FB_CLIENT_* variable' })
    }
    const generic = ['OAUTH_CLIENT_ID', 'OAUTH_CLIENT_SECRET', 'OAUTH_AUTHORIZE_URL', 'OAUTH_TOKEN_URL', 'OAUTH_PROFILE_URL'] as const
    const set = generic.filter((key) => c[key] !== undefined)
    if (set.length > 0 && set.length < generic.length) {
      const missing = generic.find((key) => c[key] === undefined)!
      ctx.addIssue({ code: 'custom', path: [missing], message: `is needed with ${set.join(', ')} (set all of ${generic.join(', ')} or none)` })
    }
  })

export type Config = Omit<z.infer<typeof configSchema>, 'SESSION_SECRET'> & {
  SESSION_SECRET: string
  /** True when SESSION_SECRET was generated for this process. */
  sessionSecretGenerated: boolean
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Parses the environment once; a bad value throws one line naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv | Record<string, string | undefined> = process.env): Config {
  const keys = Object.keys(configSchema.shape) as (keyof typeof configSchema.shape)[]
  const picked: Record<string, unknown> = {}
  for (const key of keys) picked[key] = env[key]
  const parsed = configSchema.safeParse(picked)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    const variable = String(issue?.path[0] ?? 'environment')
    const got = env[variable]
    // Echo the bad value to help, but never a secret's.
    const shown = got === undefined || /SECRET/.test(variable) ? '' : `=${JSON.stringify(got)}`
    throw new ConfigError(`Invalid ${variable}${shown}: ${issue?.message ?? 'invalid value'}`)
  }
  const { SESSION_SECRET, ...rest } = parsed.data
  return {
    ...rest,
    SESSION_SECRET: SESSION_SECRET ?? randomBytes(32).toString('base64url'),
    sessionSecretGenerated: SESSION_SECRET === undefined,
  }
}
