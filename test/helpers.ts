import type { FastifyInstance } from 'fastify'
import { buildApp, type BuildOptions } from '../app/app.js'
import { loadConfig, type Config } from '../conf/config.js'
import type { Transport } from '../app/identity.js'

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123'

interface Teardown {
  teardown(fn: () => unknown): void
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ SESSION_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', ...env })
}

/** A fresh app (and so a fresh room) closed when the test ends. */
export async function buildTestApp(
  t: Teardown,
  env: Record<string, string> = {},
  options: BuildOptions = {},
): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(env), { logger: false, ...options })
  t.teardown(() => app.close())
  return app
}

/** Signs in through the real welcome form; returns the Cookie header to send. */
export async function signIn(app: FastifyInstance, user: string, transport: Transport = 'websocket'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/signin', payload: { user, transport } })
  if (res.statusCode !== 303) throw new Error(`sign-in as ${user} failed: ${res.statusCode} ${res.body}`)
  const cookie = res.cookies.find((c) => c.name === 'chat_session')
  if (!cookie) throw new Error('no session cookie')
  return `chat_session=${cookie.value}`
}
