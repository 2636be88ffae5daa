import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Config } from '../conf/config.js'
import { keptSessionSecret } from '../conf/secret.js'
import { buildApp } from './app.js'

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
const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST
app.log.info(`Chat room ready: open http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${port}/`)
