import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Config } from '../conf/config.js'
import { keptSessionSecret } from '../conf/secret.js'
import { buildApp } from './app.js'
import { hidePassword } from './chatroom/store/pg-hosts.js'

let config: Config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(error.message)
  process.exit(1)
}

// Without SESSION_SECRET, one made once and kept in DATA_DIR: a restart keeps people signed in.
const kept = config.sessionSecretGenerated ? keptSessionSecret(config.DATA_DIR) : undefined
if (kept) config = { ...config, SESSION_SECRET: kept.secret }

// Readable lines on a terminal; JSON lines for log collectors everywhere else.
const logger = process.stdout.isTTY
  ? { level: config.LOG_LEVEL, transport: { target: 'pino-pretty', options: { translateTime: 'HH:MM:ss', ignore: 'pid,hostname' } } }
  : { level: config.LOG_LEVEL }
let app: Awaited<ReturnType<typeof buildApp>>
try {
  app = await buildApp(config, { logger })
} catch (error) {
  // Could not open the log or reach Redis: one line that says which, not a stack.
  console.error((error as Error).message)
  process.exit(1)
}
if (kept) app.log.info(`SESSION_SECRET is not set: using the one ${kept.created ? 'made now and ' : ''}kept in ${kept.file}`)

// On SIGINT/SIGTERM: stop accepting, let open requests finish, and exit in time regardless.
closeWithGrace({ delay: 4000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'shutting down')
  await app.close()
})

try {
  await app.listen({ host: config.HOST, port: config.PORT })
} catch (error) {
  app.log.error({ err: error }, 'could not listen')
  process.exit(1)
}
const address = app.server.address()
const port = typeof address === 'object' && address ? address.port : config.PORT
app.log.info(`Chat room ready: open ${openAt(config, port)} · ${setup(config)}`)

/**
 * The address to open: PUBLIC_URL when set; on a loopback or every-interface HOST, localhost
 * (browsers refuse passkeys on an IP address such as 127.0.0.1); else the HOST itself.
 */
function openAt(c: Config, port: number): string {
  const listening = c.HOST.includes(':') ? `[${c.HOST}]:${port}` : `${c.HOST}:${port}`
  if (c.PUBLIC_URL) return `${c.PUBLIC_URL.endsWith('/') ? c.PUBLIC_URL : `${c.PUBLIC_URL}/`} (served on ${listening})`
  const loopback = /^(127\.\d+\.\d+\.\d+|::1|localhost|0\.0\.0\.0|::)$/.test(c.HOST)
  const host = loopback ? 'localhost' : c.HOST.includes(':') ? `[${c.HOST}]` : c.HOST
  return `http://${host}:${port}/`
}

/** What the server runs on and the limits in force, for the start line (never a password). */
function setup(c: Config): string {
  const store =
    c.STORE === 'sqlite' ? `store sqlite (${c.DATA_DIR}/chat.sqlite)` : c.STORE === 'postgres' ? `store postgres (${hidePassword(c.DATABASE_URL)})` : 'store memory (gone on exit)'
  const bus = c.BROKER === 'redis' ? `bus redis (${hidePassword(c.REDIS_URL)})` : 'bus in-process (one process)'
  const limits = [
    `${c.RATE_LIMIT_MESSAGES} messages per ${c.RATE_LIMIT_WINDOW} s`,
    `${c.MAX_MESSAGE_LENGTH} characters`,
    `${c.MAX_SOCKETS_PER_USER} sockets per person`,
    `${c.SIGNIN_RATE_LIMIT} sign-ins a minute per address`,
    `history ${c.HISTORY_MAX_EVENTS > 0 ? `${c.HISTORY_MAX_EVENTS} events` : 'unbounded'}${c.HISTORY_MAX_AGE_DAYS > 0 ? `, ${c.HISTORY_MAX_AGE_DAYS} days` : ''} per room`,
  ]
  return `${store} · ${bus} · limits: ${limits.join(', ')}`
}

