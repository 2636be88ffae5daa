// npm run bench [-- --quick] [-- --rounds N]
// Starts the production build of our server and the plain ws baseline in separate processes
// (pinned to core 1, the load generator to core 0, where taskset exists), runs every
// scenario against both in alternating order over several rounds, and prints medians with
// each figure's ratio to the baseline measured in the same round. Raw results go to
// bench/results/latest.json. 127.0.0.1 only; every loop is bounded.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createDatabase, dropDatabase, postgresAnswers } from './pg.js'
import { idleMemory, longPollScenario, signInUsers, socketScenario, type Result, type SocketScenario, type Target } from './loadgen.js'

const args = process.argv.slice(2)
/** The value after --name, if given. */
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined)
const quick = args.includes('--quick')
const rounds = Math.max(1, Math.min(20, Number(option('--rounds') ?? (quick ? 1 : 3)) || 1))
const seconds = quick ? 2 : 6
// --only TEXT: just the scenarios whose name contains TEXT (for working on one figure).
const only = option('--only') ?? ''
const wanted = (name: string) => name.includes(only)
const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '..', '..')
const hasTaskset = existsSync('/usr/bin/taskset')

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))))
    })
  })
}

// Servers this run started, and the data folders they write; if the run itself is stopped, they go with it.
const children = new Set<ChildProcess>()
const dataDirs: string[] = []
process.on('exit', () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true })
})

/** PostgreSQL for the store and two-process scenarios: a database for the run, dropped after. */
async function withDatabase<T>(name: string, run: (url: string) => Promise<T>): Promise<T> {
  try {
    return await run(await createDatabase(name))
  } finally {
    await dropDatabase(name).catch(() => {})
  }
}
const hasPostgres = await postgresAnswers()
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

async function start(kind: Target['kind'], extraEnv: Record<string, string> = {}): Promise<{ target: Target; child: ChildProcess }> {
  const port = await freePort()
  const script = kind === 'ours' ? join(root, 'dist', 'app', 'server.js') : join(root, 'dist', 'bench', 'baseline.js')
  const command = hasTaskset ? 'taskset' : process.execPath
  const argv = hasTaskset ? ['-c', '1', process.execPath, script] : [script]
  const env = {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    SESSION_SECRET: 'benchmark-secret-benchmark-secret-0000',
    // The load is the point here: lift the per-user and per-IP limits.
    RATE_LIMIT_MESSAGES: '100000',
    RATE_LIMIT_WINDOW: '0.1',
    SIGNIN_RATE_LIMIT: '100000',
    // ...and the caps a thousand sockets from one address and twenty users would hit.
    MAX_CONNECTIONS_PER_IP: '0',
    MAX_SOCKETS_PER_USER: '10000',
    MAX_POLLS_PER_USER: '10000',
    MAX_EVENT_LOOP_DELAY: '0',
    PRESENCE_CHURN: '10000',
    // The default store (SQLite) in a folder of this run's own.
    DATA_DIR: mkdtempSync(join(tmpdir(), 'chat-bench-')),
    ...extraEnv,
  }
  dataDirs.push(env.DATA_DIR)
  const child = spawn(command, argv, { env, stdio: ['ignore', 'ignore', 'inherit'] })
  children.add(child)
  child.once('exit', () => children.delete(child))
  const base = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    if (child.exitCode !== null || i >= 100) throw new Error(`${kind} server did not start (exit code ${child.exitCode})`)
    try {
      await fetch(base + '/')
      break
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  return { target: { kind, base, pid: child.pid! }, child }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 6000)
  await exited
  clearTimeout(timer)
}

const socketScenarios: SocketScenario[] = [
  { name: 'N=100, 100 msg/s (10 senders)', n: 100, senders: 10, rate: 100, seconds },
  { name: 'N=1000, 20 msg/s (10 senders)', n: 1000, senders: 10, rate: 20, seconds },
  // The other two pairings, in full runs only (quick stays under a minute).
  ...(quick
    ? []
    : [
        { name: 'N=100, 20 msg/s (10 senders)', n: 100, senders: 10, rate: 20, seconds },
        { name: 'N=1000, 100 msg/s (10 senders)', n: 1000, senders: 10, rate: 100, seconds },
      ]),
  { name: 'max fan-out, N=100 (10 senders)', n: 100, senders: 10, window: 8, seconds },
  { name: 'max fan-out, N=1000 (10 senders)', n: 1000, senders: 10, window: 8, seconds },
]
const sseScenario: SocketScenario = { name: 'event streams (SSE): max fan-out, N=1000 (10 socket senders)', n: 1000, senders: 10, window: 8, seconds, readers: 'sse' }
const idleSizes = quick ? [1000] : [1000, 5000]

async function round(r: number): Promise<Result[]> {
  const results: Result[] = []
  const order: Target['kind'][] = r % 2 === 0 ? ['ours', 'baseline'] : ['baseline', 'ours']
  // Fresh processes each round; idle memory first, before anything else grows the heap.
  const servers = await Promise.all(order.map((kind) => start(kind)))
  try {
    const cookies = new Map<string, string[]>()
    for (const { target } of servers) {
      cookies.set(target.kind, target.kind === 'ours' ? await signInUsers(target.base, 20, `bench${r}_`) : [])
    }
    for (const n of idleSizes.filter((n) => wanted(`idle memory, ${n} sockets`))) {
      for (const { target } of servers) results.push(await idleMemory(target, cookies.get(target.kind)!, n, `idle${r}`))
    }
    for (const [i, s] of socketScenarios.entries()) {
      if (!wanted(s.name)) continue
      for (const { target } of servers) {
        results.push(await socketScenario(target, cookies.get(target.kind)!, s, `r${r}s${i}${target.kind[0]}`))
      }
    }
    const ours = servers.find((s) => s.target.kind === 'ours')!.target
    // Server-Sent Events (ours only): the same fan-out, N readers on event streams.
    if (wanted(sseScenario.name)) results.push(await socketScenario(ours, cookies.get('ours')!, sseScenario, `r${r}sse`))
    if (wanted('long polling')) results.push(await longPollScenario(ours, cookies.get('ours')!, 200, 100, seconds, `r${r}lp`))
  } finally {
    await Promise.all(servers.map(({ child }) => stop(child)))
  }
  return results.map((x) => ({ ...x, round: r }) as Result)
}

const hasRedis = spawnSync('redis-server', ['--version']).status === 0

/**
 * Two of our processes on one Redis (its own redis-server on a free port, nothing kept on
 * disk), clients spread over both: what scale-out costs and gives on this machine.
 */
async function redisRound(r: number): Promise<Result[]> {
  const port = await freePort()
  const redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  children.add(redis)
  await new Promise((resolve) => setTimeout(resolve, 300))
  return withDatabase(`chat_bench_redis_${r}`, async (databaseUrl) => {
    const env = { BROKER: 'redis', STORE: 'postgres', DATABASE_URL: databaseUrl, REDIS_URL: `redis://127.0.0.1:${port}`, REDIS_PREFIX: `bench${r}:` }
    const servers = [await start('ours', env), await start('ours', env)]
    try {
      const [first, second] = servers.map((s) => s.target) as [Target, Target]
      const target: Target = { ...first, peers: [second] }
      const cookies = await signInUsers(first.base, 20, `redis${r}_`)
      const results: Result[] = []
      for (const [i, s] of redisScenarios.entries()) {
        if (wanted(s.name)) results.push(await socketScenario(target, cookies, s, `r${r}redis${i}`))
      }
      return results.map((x) => ({ ...x, round: r }) as Result)
    } finally {
      await Promise.all(servers.map(({ child }) => stop(child)))
      await stop(redis)
    }
  })
}

/** The store as a dimension: the same fan-out and send-to-delivery latency on each log. */
const storeScenario = (store: string): SocketScenario => ({ name: `store=${store}: max fan-out, N=1000 (10 senders)`, n: 1000, senders: 10, window: 8, seconds })
const stores = ['memory', 'sqlite', 'postgres'] as const

async function storeRound(r: number): Promise<Result[]> {
  const results: Result[] = []
  for (const store of stores) {
    const scenario = storeScenario(store)
    if (!wanted(scenario.name)) continue
    if (store === 'postgres' && !hasPostgres) {
      if (r === 0) console.error('PostgreSQL is not reachable: the postgres store is skipped')
      continue
    }
    const run = async (extra: Record<string, string>) => {
      const server = await start('ours', { STORE: store, ...extra })
      try {
        const cookies = await signInUsers(server.target.base, 20, `store${r}${store}_`)
        results.push(await socketScenario(server.target, cookies, scenario, `r${r}${store}`))
      } finally {
        await stop(server.child)
      }
    }
    if (store === 'postgres') await withDatabase(`chat_bench_store_${r}`, (url) => run({ DATABASE_URL: url }))
    else await run({})
  }
  return results.map((x) => ({ ...x, round: r }) as Result)
}

const redisScenarios: SocketScenario[] = [
  { name: 'two processes on Redis, N=1000, 20 msg/s (10 senders)', n: 1000, senders: 10, rate: 20, seconds },
  { name: 'two processes on Redis, max fan-out, N=1000 (10 senders)', n: 1000, senders: 10, window: 8, seconds },
]

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

type Metric = keyof Pick<Result, 'connectMs' | 'sentPerSec' | 'deliveriesPerSec' | 'loss' | 'gaps' | 'p50' | 'p90' | 'p99' | 'max' | 'cpuPerMillion' | 'rssMiB' | 'idleBytesPerConn'>
const metrics: [Metric, string, (v: number) => string][] = [
  ['sentPerSec', 'sent msg/s', (v) => Math.round(v).toLocaleString('en-US')],
  ['deliveriesPerSec', 'deliveries/s', (v) => Math.round(v).toLocaleString('en-US')],
  ['loss', 'lost', (v) => String(Math.round(v))],
  ['gaps', 'gaps', (v) => String(Math.round(v))],
  ['p50', 'p50 ms', (v) => v.toFixed(1)],
  ['p90', 'p90 ms', (v) => v.toFixed(1)],
  ['p99', 'p99 ms', (v) => v.toFixed(1)],
  ['max', 'max ms', (v) => v.toFixed(1)],
  ['cpuPerMillion', 'CPU s / 1M deliveries', (v) => v.toFixed(2)],
  ['idleBytesPerConn', 'idle bytes / socket', (v) => Math.round(v).toLocaleString('en-US')],
  ['connectMs', 'connect ms', (v) => Math.round(v).toLocaleString('en-US')],
  ['rssMiB', 'server RSS MiB', (v) => v.toFixed(0)],
]

interface Row {
  scenario: string
  metric: string
  ours: number
  baseline: number | undefined
  ratio: number | undefined
}

function summarize(all: (Result & { round?: number })[]): Row[] {
  const rows: Row[] = []
  const scenarios = [...new Set(all.map((r) => r.scenario))]
  for (const scenario of scenarios) {
    for (const [key, label] of metrics) {
      const ours = all.filter((r) => r.scenario === scenario && r.target === 'ours' && r[key] !== undefined)
      if (ours.length === 0) continue
      const base = all.filter((r) => r.scenario === scenario && r.target === 'baseline' && r[key] !== undefined)
      // The ratio of each round's pair, then the median of those.
      const ratios = ours
        .map((o) => [o[key]!, base.find((b) => b.round === o.round)?.[key]] as const)
        .filter(([, b]) => b !== undefined && b !== 0)
        .map(([o, b]) => o / b!)
      rows.push({
        scenario,
        metric: label,
        ours: median(ours.map((o) => o[key]!)),
        baseline: base.length ? median(base.map((b) => b[key]!)) : undefined,
        ratio: ratios.length ? median(ratios) : undefined,
      })
    }
  }
  return rows
}

function table(rows: Row[]): string {
  const fmt = (metric: string, v: number | undefined) => {
    if (v === undefined || Number.isNaN(v)) return '—'
    return metrics.find(([, label]) => label === metric)![2](v)
  }
  const lines = ['| scenario | metric | ours | baseline | ours / baseline |', '| --- | --- | ---: | ---: | ---: |']
  for (const r of rows) lines.push(`| ${r.scenario} | ${r.metric} | ${fmt(r.metric, r.ours)} | ${fmt(r.metric, r.baseline)} | ${r.ratio === undefined ? '—' : r.ratio.toFixed(2) + '×'} |`)
  return lines.join('\n')
}

function targets(rows: Row[]): [string, boolean | undefined][] {
  const get = (scenario: string, metric: string) => rows.find((r) => r.scenario.startsWith(scenario) && r.metric === metric)
  const check = (row: Row | undefined, ok: (r: Row) => boolean) => (row ? ok(row) : undefined)
  return [
    ['max fan-out N=1000: deliveries/s ≥ 5× baseline', check(get('max fan-out, N=1000', 'deliveries/s'), (r) => (r.ratio ?? 0) >= 5)],
    ['max fan-out N=1000: CPU per 1M deliveries ≤ 0.2× baseline', check(get('max fan-out, N=1000', 'CPU s / 1M deliveries'), (r) => (r.ratio ?? Infinity) <= 0.2)],
    ['N=1000 at 20 msg/s: p99 ≤ baseline', check(get('N=1000, 20 msg/s', 'p99 ms'), (r) => r.ours <= (r.baseline ?? -1))],
    ['N=1000 at 20 msg/s: loss 0', check(get('N=1000, 20 msg/s', 'lost'), (r) => r.ours === 0)],
    ['N=100 at 100 msg/s: p99 ≤ baseline', check(get('N=100, 100 msg/s', 'p99 ms'), (r) => r.ours <= (r.baseline ?? -1))],
    ['N=100 at 100 msg/s: loss 0', check(get('N=100, 100 msg/s', 'lost'), (r) => r.ours === 0)],
    ['idle memory per socket at 5,000: ≤ 1.2× baseline', check(get('idle memory, 5000', 'idle bytes / socket'), (r) => (r.ratio ?? Infinity) <= 1.2)],
    [
      'event streams: CPU per 1M deliveries within 1.5× the WebSocket figure at N=1000 max fan-out',
      (() => {
        const streams = get('event streams (SSE): max fan-out', 'CPU s / 1M deliveries')
        const sockets = get('max fan-out, N=1000', 'CPU s / 1M deliveries')
        return streams && sockets ? streams.ours <= 1.5 * sockets.ours : undefined
      })(),
    ],
    ['event streams: loss 0', check(get('event streams (SSE)', 'lost'), (r) => r.ours === 0)],
    ['long polling: 0 gaps', check(get('long polling', 'gaps'), (r) => r.ours === 0)],
    ['long polling: every event delivered', check(get('long polling', 'lost'), (r) => r.ours === 0)],
    ['long polling: p99 ≤ 1 s', check(get('long polling', 'p99 ms'), (r) => r.ours <= 1000)],
    [
      'store: sqlite within 10% of memory on max fan-out deliveries/s',
      (() => {
        const memory = get('store=memory', 'deliveries/s')
        const sqlite = get('store=sqlite', 'deliveries/s')
        return memory && sqlite ? sqlite.ours >= 0.9 * memory.ours : undefined
      })(),
    ],
  ]
}

if (hasTaskset) {
  try {
    execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
  } catch {
    // Pinning is a nicety; the run goes on without it.
  }
}
const startedAt = Date.now()
const all: Result[] = []
for (let r = 0; r < rounds; r++) {
  console.error(`round ${r + 1} of ${rounds}…`)
  all.push(...(await round(r)))
  if (!quick) all.push(...(await storeRound(r)))
  if (hasRedis && hasPostgres) all.push(...(await redisRound(r)))
  else if (r === 0) console.error('redis-server or PostgreSQL is missing: the two-process scenarios are skipped')
}
const rows = summarize(all)
console.log(`\n${quick ? 'Quick run' : 'Benchmark'}: ${rounds} round(s), ${seconds} s per scenario, ${hasTaskset ? 'server on core 1, load generator on core 0' : 'no taskset'}; medians; ratio = median of same-round ratios.\n`)
console.log(table(rows))
console.log('\nTargets:')
for (const [what, ok] of targets(rows)) console.log(`  ${ok === undefined ? 'n/a ' : ok ? 'PASS' : 'MISS'}  ${what}`)
console.log(`\n(${((Date.now() - startedAt) / 1000).toFixed(0)} s)`)
mkdirSync(join(root, 'bench', 'results'), { recursive: true })
writeFileSync(join(root, 'bench', 'results', 'latest.json'), JSON.stringify({ quick, rounds, seconds, results: all, summary: rows }, null, 2))
