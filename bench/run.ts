// npm run bench [-- --quick] [-- --rounds N]
// Starts the production build of our server and the plain ws baseline in separate processes
// (pinned to core 1, the load generator to core 0, where taskset exists), runs every
// scenario against both in alternating order over several rounds, and prints medians with
// each figure's ratio to the baseline measured in the same round. Raw results go to
// bench/results/latest.json. 127.0.0.1 only; every loop is bounded.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createDatabase, dropDatabase, postgresAnswers } from './pg.js'
import { rssBytes } from './proc.js'
import { idleMemory, longPollScenario, signInUsers, socketScenario, type Result, type SocketScenario, type Target } from './loadgen.js'
import type { FollowMemory } from './follow-memory.js'
import type { IdleRoomsMeasure } from './idle-rooms.js'
import { peopleScenario as runPeople, type PeopleScenario } from './people.js'
import { createRooms, manyRoomsScenario, type RoomsScenario } from './rooms.js'
import { scaleScenario } from './scale.js'

const args = process.argv.slice(2)
/** The value after --name, if given. */
const option = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined)
const quick = args.includes('--quick')
// --scale [N]: the scale run alone (N connections, 100,000 unless given, over as many processes as the descriptor limit asks).
const scaleN = args.includes('--scale') ? Number(option('--scale')) || 100_000 : undefined
// --kinds websocket,sse: the scale run with those ways in only (all three unless given).
const scaleKinds = option('--kinds')?.split(',').filter((k): k is 'websocket' | 'sse' | 'longpoll' => ['websocket', 'sse', 'longpoll'].includes(k))
const rounds = args.includes('--profile') ? 1 : Math.max(1, Math.min(20, Number(option('--rounds') ?? (quick ? 1 : 3)) || 1))
// --seconds N: each scenario measured for N seconds (1–120; 6 unless given, 2 with --quick): a longer profile shows the steady state clearer.
const seconds = Math.max(1, Math.min(120, Number(option('--seconds') ?? (quick ? 2 : 6)) || 6))
// --only TEXT: just the scenarios whose name contains TEXT (for working on one figure).
const only = option('--only') ?? option('--profile') ?? ''
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

/** The servers a run compares: ours, the plain ws broadcast server, the bare fastify long-poll server. */
const scripts = {
  ours: join(root, 'dist', 'app', 'server.js'),
  baseline: join(root, 'dist', 'bench', 'baseline.js'),
  longpoll: join(root, 'dist', 'bench', 'baseline-longpoll.js'),
}

async function start(
  kind: Target['kind'],
  extraEnv: Record<string, string> = {},
  script: string = scripts[kind],
  fds?: number,
): Promise<{ target: Target; child: ChildProcess }> {
  const port = await freePort()
  // With --profile, our server writes a CPU profile when it exits.
  const node = [process.execPath, ...(profiling && kind === 'ours' ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []), script]
  const pinned = hasTaskset ? ['taskset', '-c', '1', ...node] : node
  // Many connections need many descriptors: raised for this process alone (root may raise the hard limit too).
  const [command, ...argv] = fds ? ['bash', '-c', `ulimit -n ${fds} && exec "$@"`, 'bash', ...pinned] : pinned
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
    // Most of the load generator's readers only scan bytes and never answer pings.
    PING_INTERVAL: '600',
    PONG_TIMEOUT: '1200',
    // The default store (SQLite) in a folder of this run's own.
    DATA_DIR: mkdtempSync(join(tmpdir(), 'chat-bench-')),
    ...extraEnv,
  }
  dataDirs.push(env.DATA_DIR)
  // BENCH_SERVER_LOG=DIR: each server's log (warnings and errors) in DIR/server-PORT.log, to see what a run hit.
  const logDir = process.env.BENCH_SERVER_LOG
  if (logDir) mkdirSync(logDir, { recursive: true })
  const out = logDir ? openSync(join(logDir, `server-${port}.log`), 'a') : 'ignore'
  const child = spawn(command!, argv, { env, stdio: ['ignore', out, 'inherit'] })
  if (typeof out === 'number') closeSync(out)
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
  // A profiled server writes its profile once it has closed every connection (16,667 in a scale run take longer than 6 s).
  const timer = setTimeout(() => child.kill('SIGKILL'), profiling ? 120_000 : 6000)
  await exited
  clearTimeout(timer)
}

const socketScenarios: SocketScenario[] = [
  { name: 'N=100, 100 msg/s (10 senders)', n: 100, senders: 10, rate: 100, seconds },
  // Issue 32: the same, each message formatted and followed by a reaction (so 200 events/s): what replies, reactions and formatting cost the message path.
  { name: 'N=100, 100 msg/s + a reaction each, formatted (10 senders)', n: 100, senders: 10, rate: 100, seconds, social: true },
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
// --profile TEXT: one round of just the scenarios matching TEXT, our server writing a CPU profile.
const profiling = option('--profile')
const profileDir = join(root, 'bench', 'profiles')
const sseScenario: SocketScenario = { name: 'event streams (SSE): max fan-out, N=1000 (10 socket senders)', n: 1000, senders: 10, window: 8, seconds, readers: 'sse' }
const idleSizes = quick ? [1000] : [1000, 5000, 10_000]
/** Connections the big idle scenario holds (full runs only), and descriptors it needs per process. */
const BIG = 50_000
const BIG_FDS = 60_000
/** This process's descriptor limit (its children inherit it). */
const fdLimit = Number(/Max open files\s+(\d+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? 0)

async function round(r: number): Promise<Result[]> {
  const results: Result[] = []
  const order: Target['kind'][] = r % 2 === 0 ? ['ours', 'baseline'] : ['baseline', 'ours']
  // Idle memory: a fresh process per size, measured before anything else grows its heap.
  for (const n of idleSizes.filter((n) => wanted(`idle memory, ${n} sockets`))) {
    for (const kind of order) {
      const { target, child } = await start(kind)
      try {
        await new Promise((resolve) => setTimeout(resolve, 500))
        const startupMiB = rssBytes(target.pid) / 1048576
        const cookies = kind === 'ours' ? await signInUsers(target.base, 20, `idle${r}_${n}_`) : []
        results.push({ ...(await idleMemory(target, cookies, n, `idle${r}`)), startupMiB })
      } finally {
        await stop(child)
      }
    }
  }
  const servers = await Promise.all(order.map((kind) => start(kind)))
  try {
    const cookies = new Map<string, string[]>()
    for (const { target } of servers) {
      cookies.set(target.kind, target.kind === 'ours' ? await signInUsers(target.base, 20, `bench${r}_`) : [])
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
    if (wanted('long polling')) {
      results.push(await longPollScenario(ours, cookies.get('ours')!, 200, 100, seconds, `r${r}lp`))
      const bare = await start('baseline', {}, scripts.longpoll)
      try {
        results.push(await longPollScenario(bare.target, [], 200, 100, seconds, `r${r}lpb`))
      } finally {
        await stop(bare.child)
      }
    }
  } finally {
    await Promise.all(servers.map(({ child }) => stop(child)))
  }
  return results.map((x) => ({ ...x, round: r }) as Result)
}

const hasRedis = spawnSync('redis-server', ['--version']).status === 0

/** A redis-server of the run's own on a free port (nothing kept on disk), stopped with stop(child); ended with the run if it is stopped. */
async function startRedis(extra: string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra], { stdio: 'ignore' })
  children.add(child)
  await new Promise((resolve) => setTimeout(resolve, 300))
  return { url: `redis://127.0.0.1:${port}`, child }
}

/**
 * Two of our processes on one Redis (its own redis-server on a free port, nothing kept on
 * disk), clients spread over both: what scale-out costs and gives on this machine.
 */
async function redisRound(r: number): Promise<Result[]> {
  const redis = await startRedis()
  return withDatabase(`chat_bench_redis_${r}`, async (databaseUrl) => {
    const env = { BROKER: 'redis', STORE: 'postgres', DATABASE_URL: databaseUrl, REDIS_URL: redis.url, REDIS_PREFIX: `bench${r}:` }
    const results: Result[] = []
    // First one process on the same store and bus, the same scenarios: what the second process is compared with.
    const alone = await start('ours', env)
    try {
      const cookies = await signInUsers(alone.target.base, 20, `redis1p${r}_`)
      for (const [i, s] of redisScenarios.entries()) {
        const one = { ...s, name: s.name.replace('two processes', 'one process') }
        if (wanted(s.name) || wanted(one.name)) results.push(await socketScenario(alone.target, cookies, one, `r${r}redis1p${i}`))
      }
    } finally {
      await stop(alone.child)
    }
    const servers = [await start('ours', env), await start('ours', env)]
    try {
      const [first, second] = servers.map((s) => s.target) as [Target, Target]
      const target: Target = { ...first, peers: [second] }
      const cookies = await signInUsers(first.base, 20, `redis${r}_`)
      for (const [i, s] of redisScenarios.entries()) {
        if (wanted(s.name)) results.push(await socketScenario(target, cookies, s, `r${r}redis${i}`))
      }
      return results.map((x) => ({ ...x, round: r }) as Result)
    } finally {
      await Promise.all(servers.map(({ child }) => stop(child)))
      await stop(redis.child)
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

/**
 * Many rooms (issue 23): R rooms × 10 readers, each room's readers on its own socket, one message
 * per room per second; beside the one-room figures. Rooms are made through POST /rooms.
 */
const roomsScenario: RoomsScenario = quick
  ? { name: 'many rooms: 100 rooms × 10 readers, 1 msg/s per room', rooms: 100, readers: 10, rate: 1, seconds: 4 }
  : { name: 'many rooms: 1000 rooms × 10 readers, 1 msg/s per room', rooms: 1000, readers: 10, rate: 1, seconds: 10 }

async function roomsRound(r: number): Promise<Result[]> {
  const { target, child } = await start('ours', { ROOMS_PER_CREATOR: '100000', MAX_ROOMS: '100000' })
  try {
    const cookies = await signInUsers(target.base, 20, `rooms${r}_`)
    const names = await createRooms(target.base, cookies[0]!, roomsScenario.rooms, `bench${r}-`)
    return [{ ...(await manyRoomsScenario(target, cookies, names, roomsScenario, `r${r}rooms`)), round: r } as Result]
  } finally {
    await stop(child)
  }
}

/**
 * People in many rooms (issue 30): each person in 50 rooms (10 busy, 40 quiet) and the lobby, on
 * one follow=me socket; one message a second in every busy room (100 members each).
 */
const peopleScenario: PeopleScenario = quick
  ? { name: 'people: 200 people × 50 rooms each, 20 busy rooms at 1 msg/s', people: 200, busy: 20, busyPer: 10, quiet: 80, quietPer: 40, seconds: 4 }
  : { name: 'people: 1000 people × 50 rooms each, 100 busy rooms at 1 msg/s', people: 1000, busy: 100, busyPer: 10, quiet: 400, quietPer: 40, seconds: 10 }

async function peopleRound(r: number): Promise<Result[]> {
  const { target, child } = await start('ours', { ROOMS_PER_CREATOR: '100000', MAX_ROOMS: '100000', SESSIONS_PER_ADDRESS: '0' })
  try {
    const cookies = await signInUsers(target.base, peopleScenario.people, `people${r}_`)
    const [admin] = await signInUsers(target.base, 1, `peopleadmin${r}_`)
    const result = await runPeople(target, cookies, admin!, peopleScenario, `r${r}p`)
    return [{ ...result, idleBytesPerConn: result.bytesPerConnection, round: r } as Result, ...(r === 0 ? followMemory().map((x) => ({ ...x, round: r })) : [])]
  } finally {
    await stop(child)
  }
}

/** What a process read from Redis so far, and how many rooms it takes from it (its /metrics). */
async function busReceived(base: string): Promise<{ bytes: number; rooms: number }> {
  const body = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text()
  const read = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1] ?? NaN)
  return { bytes: read('chat_bus_received_bytes_total'), rooms: read('chat_bus_rooms_watched') }
}
const METRICS_TOKEN = 'benchmark-metrics-token-0000'
const spreadPeopleName = peopleScenario.name.replace(/^people:/, 'people over three processes on Redis:')

/**
 * The same people over three processes on PostgreSQL and Redis (person j on process j mod 3):
 * CPU per delivery of the three together, and what each reads from Redis.
 */
async function peopleRedisRound(r: number): Promise<{ results: Result[]; lines: string[] }> {
  const redis = await startRedis()
  try {
    return await withDatabase(`chat_bench_people_${r}`, async (databaseUrl) => {
      const env = { BROKER: 'redis', STORE: 'postgres', DATABASE_URL: databaseUrl, REDIS_URL: redis.url, REDIS_PREFIX: `people${r}:`, METRICS_TOKEN, ROOMS_PER_CREATOR: '100000', MAX_ROOMS: '100000', SESSIONS_PER_ADDRESS: '0' }
      const servers = [await start('ours', env), await start('ours', env), await start('ours', env)]
      try {
        const [first, ...peers] = servers.map((s) => s.target) as [Target, ...Target[]]
        const cookies = await signInUsers(first.base, peopleScenario.people, `peopler${r}_`)
        const [admin] = await signInUsers(first.base, 1, `peopleradmin${r}_`)
        const before = await Promise.all(servers.map((s) => busReceived(s.target.base)))
        const started = performance.now()
        const scenario = { ...peopleScenario, name: spreadPeopleName }
        const result = await runPeople({ ...first, peers }, cookies, admin!, scenario, `r${r}pr`)
        const elapsed = (performance.now() - started) / 1000
        const after = await Promise.all(servers.map((s) => busReceived(s.target.base)))
        const lines = servers.map(
          (_, i) =>
            `    process ${i + 1}: read ${Math.round((after[i]!.bytes - before[i]!.bytes) / 1024).toLocaleString('en-US')} KiB from Redis in ${elapsed.toFixed(0)} s (rooms set up, joined, warmed and measured), taking ${after[i]!.rooms} rooms from it`,
        )
        return { results: [{ ...result, idleBytesPerConn: result.bytesPerConnection, round: r } as Result], lines }
      } finally {
        await Promise.all(servers.map(({ child }) => stop(child)))
      }
    })
  } finally {
    await stop(redis.child)
  }
}

/**
 * The server's heap per connection after full collections (bench/follow-memory.ts, a process of
 * its own): the same people each on one room's socket, then each following their 50 rooms.
 */
function followMemory(): Result[] {
  const script = join(root, 'dist', 'bench', 'follow-memory.js')
  const people = quick ? 200 : 1000
  const out = execFileSync(process.execPath, [script, 'measure', String(people), '50'], { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'inherit'] })
  const m = JSON.parse(out) as FollowMemory
  return [
    { scenario: `heap per connection, ${people} people in 50 rooms: one room's socket`, target: 'ours', heapBytesPerConn: m.oneRoomBytes },
    { scenario: `heap per connection, ${people} people in 50 rooms: following every room`, target: 'ours', heapBytesPerConn: m.followBytes },
  ]
}

/** Idle rooms' memory: a store holding this many rooms (three messages each); fewer in a quick run (the figure is per room). */
const IDLE_ROOMS = quick ? 2000 : 10_000

/**
 * bench/idle-rooms.ts in fresh processes: one fills a store (on tmpfs where there is one: the
 * filling is not what is measured), then a chatroom opens it (none of the rooms loaded), loads
 * every room (nobody in them) and unloads them; the same on an empty store for the baseline.
 */
function idleRooms(n: number): Result[] {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir()
  const [full, empty] = [mkdtempSync(join(base, 'chat-bench-rooms-')), mkdtempSync(join(base, 'chat-bench-empty-'))]
  dataDirs.push(full, empty)
  const script = join(root, 'dist', 'bench', 'idle-rooms.js')
  const node = (...argv: string[]) => execFileSync(process.execPath, [...argv.filter((a) => a.startsWith('--')), script, ...argv.filter((a) => !a.startsWith('--'))], { encoding: 'utf8', timeout: 300_000, stdio: ['ignore', 'pipe', 'inherit'] })
  node('populate', full, String(n))
  const measured = JSON.parse(node('measure', full)) as IdleRoomsMeasure
  // Loading thousands at once grows V8's young generation (up to 16 MB a semi-space, kept once
  // grown, whatever the rooms hold: "unloaded again" keeps it): measured again with it held at
  // 1 MB, what stays is what the rooms keep.
  const bounded = JSON.parse(node('--max-semi-space-size=1', 'measure', full)) as IdleRoomsMeasure
  const baseline = JSON.parse(node('measure', empty)) as IdleRoomsMeasure
  const row = (what: string, m: IdleRoomsMeasure['none'], from: IdleRoomsMeasure['none']): Result => ({
    scenario: `idle rooms, ${n}: ${what}`,
    target: 'ours',
    rssMiB: m.rss / 1048576,
    heapMiB: m.heap / 1048576,
    rssBytesPerRoom: (m.rss - from.rss) / n,
    heapBytesPerRoom: (m.heap - from.heap) / n,
  })
  return [
    // Against a process on an empty store: what rooms that are only in the store cost.
    row('in the store, none loaded (vs an empty store)', measured.none, baseline.none),
    // Against the same process before: what a loaded room nobody is in costs, and what stays once unloaded.
    row('all loaded, nobody in them', measured.loaded, measured.none),
    row('all loaded, young generation held at 1 MB', bounded.loaded, bounded.none),
    row('unloaded again', measured.unloaded, measured.none),
  ]
}

const redisScenarios: SocketScenario[] = [
  { name: 'two processes on Redis, N=1000, 20 msg/s (10 senders)', n: 1000, senders: 10, rate: 20, seconds },
  { name: 'two processes on Redis, max fan-out, N=1000 (10 senders)', n: 1000, senders: 10, window: 8, seconds },
]

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

type Metric = keyof Pick<Result, 'connectMs' | 'sentPerSec' | 'deliveriesPerSec' | 'loss' | 'gaps' | 'p50' | 'p90' | 'p99' | 'max' | 'cpuPerMillion' | 'writesPerThousand' | 'rssMiB' | 'idleBytesPerConn' | 'startupMiB' | 'deliverAllMs' | 'loadgenCpu' | 'heapMiB' | 'rssBytesPerRoom' | 'heapBytesPerRoom' | 'heapBytesPerConn' | 'restCpu'>
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
  ['writesPerThousand', 'server writes / 1,000 deliveries', (v) => v.toFixed(1)],
  ['restCpu', 'busiest process CPU at rest (1 = a core)', (v) => v.toFixed(3)],
  ['idleBytesPerConn', 'idle bytes / socket', (v) => Math.round(v).toLocaleString('en-US')],
  ['connectMs', 'connect ms', (v) => Math.round(v).toLocaleString('en-US')],
  ['rssMiB', 'server RSS MiB', (v) => v.toFixed(0)],
  ['startupMiB', 'RSS before the first connection MiB', (v) => v.toFixed(0)],
  ['deliverAllMs', 'one message to all ms', (v) => Math.round(v).toLocaleString('en-US')],
  ['loadgenCpu', 'load generator CPU (1 = a core)', (v) => v.toFixed(2)],
  ['heapMiB', 'heap in use MiB', (v) => v.toFixed(1)],
  ['rssBytesPerRoom', 'RSS bytes / room', (v) => Math.round(v).toLocaleString('en-US')],
  ['heapBytesPerRoom', 'heap bytes / room', (v) => Math.round(v).toLocaleString('en-US')],
  ['heapBytesPerConn', 'heap bytes / connection', (v) => Math.round(v).toLocaleString('en-US')],
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

/** The targets, each from this run's figures: [what, figure, PASS/MISS (undefined: not measured)]. */
function targets(rows: Row[]): [string, string, boolean | undefined][] {
  const get = (scenario: string, metric: string) => rows.find((r) => r.scenario.startsWith(scenario) && r.metric === metric)
  const f = (v: number | undefined, digits = 2) => (v === undefined ? '—' : v.toFixed(digits))
  const ratio = (scenario: string, metric: string, max: number): [string, boolean | undefined] => {
    const row = get(scenario, metric)
    return [`${f(row?.ratio)}× (${f(row?.ours)} vs ${f(row?.baseline)})`, row?.ratio === undefined ? undefined : row.ratio <= max]
  }
  const abs = (scenario: string, metric: string, ok: (v: number) => boolean, digits = 2): [string, boolean | undefined] => {
    const row = get(scenario, metric)
    return [f(row?.ours, digits), row ? ok(row.ours) : undefined]
  }
  const of = (what: string, [figure, ok]: [string, boolean | undefined]): [string, string, boolean | undefined] => [what, figure, ok]
  const between = (a: Row | undefined, b: Row | undefined, ok: (x: number, y: number) => boolean): [string, boolean | undefined] =>
    a && b ? [`${f(a.ours)} vs ${f(b.ours)} (${f(a.ours / b.ours)}×)`, ok(a.ours, b.ours)] : ['—', undefined]
  const loadgen = get('max fan-out, N=1000 (10 senders)', 'load generator CPU (1 = a core)')
  return [
    of('N=100 at 100 msg/s: CPU per delivery ≤ 1.0× ws', ratio('N=100, 100 msg/s', 'CPU s / 1M deliveries', 1)),
    of('N=100 at 100 msg/s: p99 ≤ 1.0× ws', ratio('N=100, 100 msg/s', 'p99 ms', 1)),
    of('N=1000 at 100 msg/s: CPU per delivery ≤ 1.0× ws', ratio('N=1000, 100 msg/s', 'CPU s / 1M deliveries', 1)),
    of('N=1000 at 100 msg/s: p99 ≤ 1.0× ws', ratio('N=1000, 100 msg/s', 'p99 ms', 1)),
    of('max fan-out N=1000: ≤ 0.5 s CPU per 1M deliveries', abs('max fan-out, N=1000 (10 senders)', 'CPU s / 1M deliveries', (v) => v <= 0.5)),
    of('max fan-out N=1000: the load generator is not saturated (< 0.9 of its core)', [f(loadgen?.ours), loadgen ? loadgen.ours < 0.9 : undefined]),
    of('idle: ≤ 6 KB per socket at 10,000 (fresh process)', abs('idle memory, 10000', 'idle bytes / socket', (v) => v <= 6 * 1024, 0)),
    of('idle: RSS before the first connection ≤ 70 MB', abs('idle memory, 1000', 'RSS before the first connection MiB', (v) => v <= 70, 0)),
    of('opening 10,000 sockets ≤ 1.1× ws', ratio('idle memory, 10000', 'connect ms', 1.1)),
    of('long polling, 200 pollers at 100 msg/s: CPU ≤ 1.0× bare fastify', ratio('long polling', 'CPU s / 1M deliveries', 1)),
    of('long polling: 0 gaps', abs('long polling', 'gaps', (v) => v === 0, 0)),
    of('long polling: p99 ≤ 1.0× bare fastify', ratio('long polling', 'p99 ms', 1)),
    ((): [string, string, boolean | undefined] => {
      const what = `${BIG.toLocaleString('en-US')} idle sockets held, one message delivered to all`
      const big = rows.filter((r) => r.scenario === `idle memory, ${bigN} sockets`)
      const [perSocket, all, lost] = ['idle bytes / socket', 'one message to all ms', 'lost'].map((m) => big.find((r) => r.metric === m)?.ours)
      if (lost === undefined) return [what, '—', undefined]
      const figure = `${bigN.toLocaleString('en-US')} held, ${f(perSocket, 0)} B/socket, one message to all in ${f(all, 0)} ms, ${lost} missed`
      // Fewer than 50,000 (the descriptor limit): a MISS, with what bounds it.
      return [what, bigN < BIG ? `${figure} (bounded by the descriptor limit, ${fdLimit}: 50,000 are not possible here)` : figure, bigN === BIG && lost === 0]
    })(),
    of('store: sqlite within 10% of memory on max fan-out', between(get('store=sqlite', 'deliveries/s'), get('store=memory', 'deliveries/s'), (a, b) => a >= 0.9 * b)),
    // Both on PostgreSQL: the two processes need it (BROKER=redis), so one process is measured on it too.
    of(
      'two processes on Redis: CPU per delivery ≤ 1.2× one process on the same store and bus (max fan-out N=1000, PostgreSQL)',
      between(get('two processes on Redis, max fan-out', 'CPU s / 1M deliveries'), get('one process on Redis, max fan-out', 'CPU s / 1M deliveries'), (a, b) => a <= 1.2 * b),
    ),
    // At max fan-out each write carries what arrived since the last (the figure above depends on how much that is); at a fixed rate it does not.
    of(
      'two processes on Redis: CPU per delivery ≤ 1.2× one process on the same store and bus (N=1000, 20 msg/s, PostgreSQL)',
      between(get('two processes on Redis, N=1000, 20 msg/s', 'CPU s / 1M deliveries'), get('one process on Redis, N=1000, 20 msg/s', 'CPU s / 1M deliveries'), (a, b) => a <= 1.2 * b),
    ),
    of(
      'event streams: CPU per 1M deliveries within 1.5× WebSocket (max fan-out N=1000)',
      between(get('event streams (SSE): max fan-out', 'CPU s / 1M deliveries'), get('max fan-out, N=1000 (10 senders)', 'CPU s / 1M deliveries'), (a, b) => a <= 1.5 * b),
    ),
    // Issue 33's targets (the 100,000-connection run is --scale's, printed with it).
    of('issue 33: the durable trickle, N=100 at 100 msg/s on SQLite: CPU per delivery ≤ 1.2× ws', ratio('N=100, 100 msg/s', 'CPU s / 1M deliveries', 1.2)),
    of('issue 33: the durable trickle: p99 ≤ 1.5× ws', ratio('N=100, 100 msg/s', 'p99 ms', 1.5)),
    of('issue 33: long polling, 200 pollers at 100 msg/s: CPU ≤ 1.2× bare fastify', ratio('long polling', 'CPU s / 1M deliveries', 1.2)),
    // The same total rate: 100 busy rooms × 1 msg/s × 100 members each, against one room of 100 at 100 msg/s (one process, SQLite).
    of(
      `issue 33: ${spreadPeopleName.replace(/:.*/, '')}: CPU per delivery ≤ 1.2× one room's at the same total rate (N=100, 100 msg/s, one process)`,
      between(get(spreadPeopleName, 'CPU s / 1M deliveries'), get('N=100, 100 msg/s', 'CPU s / 1M deliveries'), (a, b) => a <= 1.2 * b),
    ),
    ((): [string, string, boolean | undefined] => {
      const what = `issue 33: ${IDLE_ROOMS.toLocaleString('en-US')} idle rooms loaded in memory ≤ ${Math.round((50 * IDLE_ROOMS) / 10_000)} MB (RSS growth, V8's young generation held at 1 MB)`
      const rss = get(`idle rooms, ${IDLE_ROOMS}: all loaded, nobody`, 'RSS bytes / room')?.ours
      const kept = get(`idle rooms, ${IDLE_ROOMS}: all loaded, young`, 'RSS bytes / room')?.ours
      const heap = get(`idle rooms, ${IDLE_ROOMS}: all loaded, nobody`, 'heap bytes / room')?.ours
      if (rss === undefined || kept === undefined || heap === undefined) return [what, '—', undefined]
      const mb = (perRoom: number) => (perRoom * IDLE_ROOMS) / 1e6
      return [what, `${mb(kept).toFixed(1)} MB of RSS (${mb(rss).toFixed(1)} MB with the young generation grown by the loading), ${mb(heap).toFixed(1)} MB of heap in use`, mb(kept) <= (50 * IDLE_ROOMS) / 10_000]
    })(),
  ]
}

/** The many-rooms figures beside the one-room ones of the same run, and what idle rooms cost. */
function manyRooms(rows: Row[]): string {
  const get = (scenario: string, metric: string) => rows.find((r) => r.scenario.startsWith(scenario) && r.metric === metric)?.ours
  const f = (v: number | undefined, digits = 2) => (v === undefined || Number.isNaN(v) ? '—' : v.toFixed(digits))
  const b = (v: number | undefined) => (v === undefined ? '—' : `${Math.round(v).toLocaleString('en-US')} B`)
  // Per message too: a room of 10 readers spreads each message's commit over 10 deliveries, a room of 100 over 100.
  const perMessage = (scenario: string) => {
    const [cpu, deliveries, sent] = [get(scenario, 'CPU s / 1M deliveries'), get(scenario, 'deliveries/s'), get(scenario, 'sent msg/s')]
    return cpu === undefined || !deliveries || !sent ? undefined : (cpu / 1e6) * (deliveries / sent) * 1000
  }
  const figures = (scenario: string) =>
    `CPU ${f(get(scenario, 'CPU s / 1M deliveries'))} s / 1M deliveries (${f(perMessage(scenario))} ms / message), p99 ${f(get(scenario, 'p99 ms'), 1)} ms, ` +
    `${Math.round(get(scenario, 'deliveries/s') ?? 0).toLocaleString('en-US')} deliveries/s, ${f(get(scenario, 'lost'), 0)} lost`
  const idle = `idle rooms, ${IDLE_ROOMS}: `
  const memory = (what: string) => `RSS ${b(get(idle + what, 'RSS bytes / room'))}, heap ${b(get(idle + what, 'heap bytes / room'))} per room (process: RSS ${f(get(idle + what, 'server RSS MiB'), 0)} MiB, heap ${f(get(idle + what, 'heap in use MiB'), 1)} MiB)`
  return [
    'Many rooms:',
    `  ${roomsScenario.name}: ${figures(roomsScenario.name)}`,
    `  ${peopleScenario.name} (one socket per person): ${figures(peopleScenario.name)} (RSS grew ${b(get(peopleScenario.name, 'idle bytes / socket'))} per connection while they connected: garbage of subscribing included)`,
    `  ${spreadPeopleName} (one socket per person, person j on process j mod 3): ${figures(spreadPeopleName)}`,
    ...peopleLines,
    `    server heap per connection after full collections: ${b(get('heap per connection', 'heap bytes / connection'))} on one room's socket, ${b(rows.find((r) => r.scenario.includes('following every room') && r.metric === 'heap bytes / connection')?.ours)} following every room of theirs`,
    ...['N=100, 100 msg/s (10 senders)', 'N=1000, 20 msg/s (10 senders)'].map((s) => `  one room, ${s}: ${figures(s)}`),
    `  ${IDLE_ROOMS.toLocaleString('en-US')} idle rooms (SQLite, three messages each):`,
    `    in the store, none loaded: ${memory('in the store')}`,
    `    all loaded, nobody in them: ${memory('all loaded, nobody')}`,
    `    the same, V8's young generation held at 1 MB (--max-semi-space-size=1): ${memory('all loaded, young')}`,
    `    unloaded again (ROOM_IDLE): ${memory('unloaded again')}`,
  ].join('\n')
}

/**
 * 50,000 idle WebSocket connections to one fresh process of ours (full runs only): RSS per
 * socket, and one message to all of them. Each side needs ~50,000 descriptors.
 */
async function bigRound(n: number): Promise<Result[]> {
  const { target, child } = await start('ours', {}, scripts.ours, Math.min(BIG_FDS, fdLimit))
  try {
    const cookies = await signInUsers(target.base, 20, 'big_')
    return [{ ...(await idleMemory(target, cookies, n, 'big', true)), round: 0 } as Result]
  } finally {
    await stop(child)
  }
}

/**
 * The scale run (bench/scale.ts) on a redis-server of its own and a database of its own: `n`
 * connections over `processes` of ours. Full runs hold a few thousand, `--quick` (CI) fewer,
 * `--scale` 100,000.
 */
async function scaleRound(n: number, processes: number): Promise<{ results: Result[]; lines: string[] }> {
  const redis = await startRedis(['--maxclients', '1000'])
  try {
    return await withDatabase('chat_bench_scale', (databaseUrl) =>
      scaleScenario(
        { connections: n, processes, people: Math.max(10, Math.ceil(n / 100)), roomsEach: 3, restSeconds: quick ? 3 : 10, kinds: scaleKinds?.length ? scaleKinds : undefined },
        {
          start: (env, fds) => start('ours', env, scripts.ours, fds),
          stop,
          env: { BROKER: 'redis', STORE: 'postgres', DATABASE_URL: databaseUrl, REDIS_URL: redis.url, REDIS_PREFIX: 'scale:', SESSIONS_PER_ADDRESS: '0', PG_POOL_SIZE: '8', ROOMS_PER_CREATOR: '1000' },
          workerScript: join(root, 'dist', 'bench', 'scale-worker.js'),
          fdLimit,
          pin: hasTaskset,
        },
      ),
    )
  } finally {
    await stop(redis.child)
  }
}
/** Processes for n connections: each under the descriptor limit with room to spare. */
const processesFor = (n: number) => Math.max(2, Math.ceil(n / Math.max(1000, fdLimit - 3000)))

if (hasTaskset) {
  try {
    execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })
  } catch {
    // Pinning is a nicety; the run goes on without it.
  }
}
// A profiling run starts with an empty folder, so what is there afterwards is this run's.
if (profiling) rmSync(profileDir, { recursive: true, force: true })
const startedAt = Date.now()
const all: Result[] = []
const scaleLines: string[] = []
const peopleLines: string[] = []
// Where the descriptor limit is lower than 50,000 connections need (and cannot be raised:
// it takes CAP_SYS_RESOURCE), as many as it allows are held instead, and the target says so.
const bigN = fdLimit >= BIG_FDS ? BIG : Math.max(1000, Math.floor((fdLimit - 1000) / 1000) * 1000)
if (!quick && scaleN === undefined && (wanted(`idle memory, ${BIG}`) || wanted(`idle memory, ${bigN}`))) {
  if (bigN < BIG) console.error(`${BIG} sockets need ${BIG_FDS} descriptors per process; this machine allows ${fdLimit}: holding ${bigN} instead`)
  all.push(...(await bigRound(bigN)))
}
const scaleSize = scaleN ?? (quick ? 1500 : 6000)
if ((scaleN !== undefined || wanted('scale')) && hasRedis && hasPostgres) {
  const processes = Number(option('--processes')) || (scaleN !== undefined ? processesFor(scaleSize) : 3)
  console.error(`scale: ${scaleSize} connections over ${processes} processes…`)
  const scale = await scaleRound(scaleSize, processes)
  all.push(...scale.results.map((x) => ({ ...x, round: 0 }) as Result))
  scaleLines.push(...scale.lines)
}
for (let r = 0; r < (scaleN !== undefined ? 0 : rounds); r++) {
  console.error(`round ${r + 1} of ${rounds}…`)
  all.push(...(await round(r)))
  if (!quick) all.push(...(await storeRound(r)))
  if (hasRedis && hasPostgres) all.push(...(await redisRound(r)))
  else if (r === 0) console.error('redis-server or PostgreSQL is missing: the two-process scenarios are skipped')
  if (wanted(roomsScenario.name)) all.push(...(await roomsRound(r)))
  if (wanted(peopleScenario.name)) all.push(...(await peopleRound(r)))
  if (wanted(spreadPeopleName) && hasRedis && hasPostgres) {
    const spread = await peopleRedisRound(r)
    all.push(...spread.results)
    if (r === 0) peopleLines.push(...spread.lines)
  }
}
// Memory is not noisy like CPU: measured once.
if (scaleN === undefined && wanted(`idle rooms, ${IDLE_ROOMS}`)) all.push(...idleRooms(IDLE_ROOMS).map((x) => ({ ...x, round: 0 })))
const rows = summarize(all)
console.log(`\n${quick ? 'Quick run' : 'Benchmark'}: ${rounds} round(s), ${seconds} s per scenario, ${hasTaskset ? 'server on core 1, load generator on core 0' : 'no taskset'}; medians; ratio = median of same-round ratios.\n`)
console.log(table(rows))
if (scaleN === undefined) {
  console.log('\nTargets:')
  for (const [what, figure, ok] of targets(rows)) console.log(`  ${ok === undefined ? 'n/a ' : ok ? 'PASS' : 'MISS'}  ${what}: ${figure}`)
  console.log(`\n${manyRooms(rows)}`)
}
if (scaleLines.length > 0) console.log(`\nScale (${all.find((x) => x.scenario.startsWith('scale:'))?.scenario}):\n${scaleLines.join('\n')}`)
if (profiling) console.log(`\nCPU profile of our server: ${profileDir}/*.cpuprofile (open in Chrome DevTools, Performance tab, or speedscope)`)
console.log(`\n(${((Date.now() - startedAt) / 1000).toFixed(0)} s)`)
mkdirSync(join(root, 'bench', 'results'), { recursive: true })
writeFileSync(join(root, 'bench', 'results', 'latest.json'), JSON.stringify({ quick, rounds, seconds, results: all, summary: rows }, null, 2))
