import type { Test } from 'tap'
import { startServer } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'
import { freePort, TestRedis } from './redis.js'

// What the fault runs of skip.test.ts (readers of one room) and skip-rooms.test.ts (readers of
// several rooms) share: two app processes on one PostgreSQL log and a redis-server of the test's
// own, sign-in, readers that reconnect to each process in turn, and the metrics they read. Two
// files, so that tap runs the two long fault runs side by side.

export const withPostgres = await havePostgres()
export const RUNS = Number(process.env.FAULT_RUNS ?? 2)
export const METRICS_TOKEN = 'fault-test-metrics-token'
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function signIn(base: string, user: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${base}/signin`, { method: 'POST', body: new URLSearchParams({ user, transport: 'longpolling' }), redirect: 'manual' })
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('chat_session='))
    if (cookie) return cookie.split(';')[0]!
    if (attempt >= 20) throw new Error(`sign-in as ${user} failed: ${res.status}`)
    await sleep(100)
  }
}

/**
 * What every reader here does: connections that each last a short random while (or until their
 * process dies), one after the other, each on the next process in turn, until stopped.
 */
export abstract class Reconnecting {
  connections = 0
  protected stopped = false
  private turn: number
  private loop: Promise<void> | undefined

  constructor(
    readonly name: string,
    protected readonly cookie: string,
    private readonly bases: () => string[],
    first: number,
  ) {
    this.turn = first
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const all = this.bases()
        const base = all[this.turn++ % all.length]!
        this.connections++
        try {
          await this.connect(base, Math.round(150 + Math.random() * 600))
        } catch {
          await sleep(50)
        }
      }
    })()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.loop
  }

  protected abstract connect(base: string, ms: number): Promise<void>
}

export async function metric(base: string, name: string): Promise<number | undefined> {
  const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } }).catch(() => undefined)
  if (!res?.ok) return undefined
  const line = (await res.text()).split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.split(' ')[1])
}

/** A redis-server of the test's own and a fresh database, for app processes started on fixed ports (a killed one comes back on the same). */
export async function faultSetup(t: Test, extra: Record<string, string> = {}) {
  const redis = new TestRedis(await freePort())
  await redis.start()
  t.teardown(() => redis.dispose())
  const [portA, portB] = [await freePort(), await freePort()]
  const env = {
    STORE: 'postgres',
    BROKER: 'redis',
    DATABASE_URL: await freshDatabase(t),
    REDIS_URL: redis.url,
    RATE_LIMIT_MESSAGES: '100000',
    PRESENCE_TTL: '2',
    METRICS_TOKEN,
    ...extra,
  }
  return { redis, env, startA: () => startServer(t, { ...env, PORT: String(portA) }), startB: () => startServer(t, { ...env, PORT: String(portB) }) }
}
