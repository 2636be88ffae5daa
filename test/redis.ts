import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const haveRedis = spawnSync('redis-server', ['--version']).status === 0

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** A redis-server of our own on a free port, keeping nothing on disk: a restart comes back empty. */
export class TestRedis {
  child: ChildProcess | undefined
  readonly dir = mkdtempSync(join(tmpdir(), 'chat-redis-'))
  constructor(readonly port: number) {}
  get url() {
    return `redis://127.0.0.1:${this.port}`
  }
  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir]
    this.child = spawn('redis-server', args, { stdio: 'ignore' })
    for (let i = 0; i < 100; i++) {
      if (spawnSync('redis-cli', ['-p', String(this.port), 'ping']).stdout?.toString().trim() === 'PONG') return
      await new Promise((r) => setTimeout(r, 50))
    }
    throw new Error('redis-server did not start')
  }
  /** Stops it the hard way (SIGKILL), as a crash does. */
  async stop(): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  }
  async dispose(): Promise<void> {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** The Redis at REDIS_URL when set, else one of our own; `own` when the test must stop and start it. */
export async function redisFor(t: { teardown(fn: () => unknown): void }, own = false): Promise<{ url: string } & Partial<TestRedis>> {
  if (process.env.REDIS_URL && !own) return { url: process.env.REDIS_URL }
  const redis = new TestRedis(await freePort())
  await redis.start()
  t.teardown(() => redis.dispose())
  return redis
}

