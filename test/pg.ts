import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createDatabase, dropDatabase, postgresAnswers } from '../bench/pg.js'

export { pgAdminUrl as ADMIN_URL } from '../bench/pg.js'

/** Whether the tests' PostgreSQL (DATABASE_URL, else this machine's) answers. */
export const havePostgres = postgresAnswers

/**
 * A database of the test's own (so parallel test files never share a log), dropped when the
 * test ends. Returns its URL.
 */
export async function freshDatabase(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const name = `chat_test_${randomBytes(6).toString('hex')}`
  const url = await createDatabase(name)
  t.teardown(() => dropDatabase(name))
  return url
}

/** The PostgreSQL server binaries of this machine (Debian keeps them per version), or undefined. */
function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const version = readdirSync(root).sort((a, b) => Number(b) - Number(a))[0]
  return version && existsSync(join(root, version, 'bin', 'initdb')) ? join(root, version, 'bin') : undefined
}

export const havePostgresBinaries = postgresBin() !== undefined

/**
 * A PostgreSQL server of our own (initdb in a temporary folder, on a free port, trust auth), so
 * a test may stop it (SIGSTOP) without touching the shared one. As root it runs as the
 * `postgres` user, which PostgreSQL requires.
 */
export class PrivatePostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'chat-pg-'))
  private readonly bin = postgresBin()!
  constructor(readonly port: number) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  private run(command: string, args: string[]): void {
    const root = process.getuid?.() === 0
    const result = root ? spawnSync('runuser', ['-u', 'postgres', '--', join(this.bin, command), ...args]) : spawnSync(join(this.bin, command), args)
    if (result.status !== 0) throw new Error(`${command} failed: ${result.stderr?.toString()}${result.stdout?.toString()}`)
  }

  start(): void {
    if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'postgres', this.dir])
    this.run('initdb', ['-D', join(this.dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync'])
    this.launch()
  }

  private launch(): void {
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-o', options, '-l', join(this.dir, 'log'), '-w', 'start'])
  }

  /**
   * Starts as a streaming standby of `primary` (a base backup of it, taken with pg_basebackup,
   * that follows its WAL; initdb's pg_hba lets 127.0.0.1 replicate).
   */
  startStandbyOf(primary: PrivatePostgres): void {
    if (process.getuid?.() === 0) spawnSync('chown', ['-R', 'postgres', this.dir])
    this.run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', join(this.dir, 'data'), '-R', '-X', 'stream', '--no-sync'])
    this.launch()
  }

  /** A standby takes over as primary (pg_ctl promote, waiting until it takes writes). */
  promote(): void {
    this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-w', 'promote'])
  }

  /** Every process of it killed at once (SIGKILL): the machine it ran on is gone. */
  kill(): void {
    // The postmaster stopped first, so it forks no backend while its children are listed (killed
    // first, it would leave them to init, unlisted).
    process.kill(this.main(), 'SIGSTOP')
    for (const pid of [...this.pids().slice(1), this.main()]) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
      }
    }
  }

  /** The postmaster's pid. */
  private main(): number {
    return Number(readFileSync(join(this.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
  }

  /** The server's processes: the postmaster and its children. */
  pids(): number[] {
    const main = this.main()
    const children = spawnSync('pgrep', ['-P', String(main)]).stdout.toString().split('\n').filter(Boolean).map(Number)
    return [main, ...children]
  }

  /** Every process of it stops (SIGSTOP) or goes on (SIGCONT): connections stay open, nothing answers. */
  signal(signal: 'SIGSTOP' | 'SIGCONT'): void {
    // The postmaster first: stopped, it starts no backend while its children are listed.
    process.kill(this.main(), signal)
    for (const pid of this.pids().slice(1)) {
      try {
        process.kill(pid, signal)
      } catch (error) {
        // A backend that ended since it was listed (its client gave up) has nothing to stop.
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
      }
    }
  }

  dispose(): void {
    try {
      this.signal('SIGCONT')
      this.run('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', 'stop'])
    } catch {
      // Not started, or already gone.
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
