// The scale run (issue 33): N connections held by P app processes on one PostgreSQL and one
// Redis, each process under the descriptor limit; the load generator is W processes of its own
// (bench/scale-worker.ts), each under the limit too, its sockets from 127.0.0.1–8. Every
// connection is a person's stream (`follow=me`: the lobby and every room of theirs), a third each
// over WebSocket, event streams and long polls. Then: what each process holds per connection,
// what each spends at rest, and one message in the lobby (everyone's room) to all N.
import { spawn, type ChildProcess } from 'node:child_process'
import { cpuSeconds, rssBytes } from './proc.js'
import { signInUsers, sleep, type Result, type Target } from './loadgen.js'
import { createRooms } from './rooms.js'
import type { Command, Conn, Kind, Report } from './scale-worker.js'

export interface ScaleOptions {
  connections: number
  processes: number
  /** People signed in; each holds connections / people of them. */
  people: number
  /** The ways in, shared out in turn (all three unless given). */
  kinds?: Kind[]
  /** Rooms each person belongs to besides the lobby. */
  roomsEach: number
  /** Seconds of rest measured (nothing sent). */
  restSeconds: number
}

export interface ScaleDeps {
  start(env: Record<string, string>, fds: number): Promise<{ target: Target; child: ChildProcess }>
  stop(child: ChildProcess): Promise<void>
  env: Record<string, string>
  workerScript: string
  /** Descriptors a process may have (the hard limit where it cannot be raised). */
  fdLimit: number
  pin: boolean
}

const KINDS: Kind[] = ['websocket', 'sse', 'longpoll']

/** Rooms the people of the run belong to besides the lobby. */
const SCALE_ROOMS = 100

/**
 * The run's people: accounts (each with their own log, as a person who signs in has), each a
 * member of `roomsEach` of SCALE_ROOMS public rooms besides the lobby; several at a time, each
 * call bounded. Returns their session cookies.
 */
async function registerPeople(base: string, count: number, roomsEach: number): Promise<string[]> {
  const cookies: string[] = new Array<string>(count)
  const call = async (path: string, cookie: string | undefined, body: Record<string, string>, ok: number[]) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: base, ...(cookie && { cookie }) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    })
    if (!ok.includes(res.status)) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`)
    return res
  }
  const inTurn = async (n: number, work: (i: number) => Promise<void>) => {
    let next = 0
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < n) await work(next++)
    }))
  }
  await inTurn(count, async (i) => {
    const res = await call('/accounts', undefined, { name: `scale_${i}`, password: 'scale run password' }, [201])
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('chat_session='))
    if (!cookie) throw new Error('registering: no session')
    cookies[i] = cookie.split(';')[0]!
  })
  if (roomsEach === 0) return cookies
  // Made by someone outside the run (a room's maker is its member: none of the people is in more than roomsEach).
  const [maker] = await signInUsers(base, 1, 'scale_maker_')
  const rooms = await createRooms(base, maker!, Math.min(SCALE_ROOMS, count), 'scale-')
  await inTurn(count, async (i) => {
    for (let k = 0; k < roomsEach; k++) await call(`/rooms/${rooms[(i + k * 7) % rooms.length]}/join`, cookies[i], {}, [200])
  })
  return cookies
}

interface Worker {
  child: ChildProcess
  next(type: Report['type'], ms: number): Promise<Report>
  tell(command: Command): void
}

function startWorker(script: string, fds: number, pin: boolean): Worker {
  const node = [...(pin ? ['taskset', '-c', '0'] : []), process.execPath, script]
  const child = spawn('bash', ['-c', `ulimit -n ${fds} && exec "$@"`, 'bash', ...node], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const waiting: { type: Report['type']; resolve: (r: Report) => void }[] = []
  child.on('message', (report: Report) => {
    const at = waiting.findIndex((w) => w.type === report.type)
    if (at !== -1) waiting.splice(at, 1)[0]!.resolve(report)
  })
  return {
    child,
    tell: (command) => child.send(command),
    next: (type, ms) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`a load generator process did not report ${type} in ${ms} ms`)), ms)
        waiting.push({ type, resolve: (r) => (clearTimeout(timer), resolve(r)) })
      }),
  }
}

export async function scaleScenario(o: ScaleOptions, d: ScaleDeps): Promise<{ results: Result[]; lines: string[] }> {
  const kinds = o.kinds ?? KINDS
  const name = `scale: ${o.connections.toLocaleString('en-US')} connections over ${o.processes} processes${kinds.length === 3 ? '' : ` (${kinds.join(', ')})`}`
  const lines: string[] = []
  // Each process of ours holds connections / processes, with room for its own (PostgreSQL, Redis, files).
  const perProcess = Math.ceil(o.connections / o.processes)
  if (perProcess + 500 > d.fdLimit) throw new Error(`${perProcess} connections per process need more than the ${d.fdLimit} descriptors a process may have: use more processes`)
  const servers: { target: Target; child: ChildProcess }[] = []
  const workers: Worker[] = []
  // Where a long run stands, on stderr (a run of 100,000 takes minutes).
  const begun = performance.now()
  // With the monotonic clock in µs, as a --cpu-prof profile's sample times are (to cut one to the rest).
  const stage = (what: string) => process.stderr.write(`  ${((performance.now() - begun) / 1000).toFixed(0)} s: ${what} (monotonic ${process.hrtime.bigint() / 1000n} µs)\n`)
  try {
    for (let p = 0; p < o.processes; p++) servers.push(await d.start(d.env, d.fdLimit))
    const cookies = await registerPeople(servers[0]!.target.base, o.people, o.roomsEach)
    const ports = servers.map((s) => Number(new URL(s.target.base).port))
    // The load generator: as many processes as the descriptor limit asks for, each under it.
    const perWorker = Math.max(1000, d.fdLimit - 2000)
    const count = Math.ceil(o.connections / perWorker)
    const shares: Conn[][] = Array.from({ length: count }, () => [])
    for (let i = 0; i < o.connections; i++) {
      shares[i % count]!.push({ port: ports[i % o.processes]!, kind: kinds[Math.floor(i / o.processes) % kinds.length]!, cookie: cookies[i % cookies.length]!, local: `127.0.0.${1 + (i % 8)}` })
    }
    const rssBefore = servers.map((s) => rssBytes(s.target.pid))
    const started = performance.now()
    for (const share of shares) {
      const worker = startWorker(d.workerScript, d.fdLimit, d.pin)
      workers.push(worker)
      worker.tell({ type: 'open', conns: share, concurrency: 25 })
    }
    const opened = (await Promise.all(workers.map((w) => w.next('opened', 900_000)))) as Extract<Report, { type: 'opened' }>[]
    const connectMs = performance.now() - started
    stage('opened')
    const held = opened.reduce((sum, r) => sum + r.opened, 0)
    const failed = opened.reduce((sum, r) => sum + r.failed, 0)
    const retried = opened.reduce((sum, r) => sum + r.retried, 0)
    if (retried > 0) lines.push(`  ${retried.toLocaleString('en-US')} openings were refused (503, 1013) or cut and tried again, backing off`)
    if (failed > 0) lines.push(`  ${failed} connections could not be opened: ${[...new Set(opened.flatMap((r) => r.errors))].slice(0, 3).join('; ')}`)
    // Each connection enters its rooms after it opens: a moment for the last of them, and for presence to settle.
    await sleep(Math.min(20_000, 3000 + o.connections / 20))
    const rssAfter = servers.map((s) => rssBytes(s.target.pid))
    // At rest: nothing is sent; what each process spends (timers, heartbeats, long polls renewed).
    const countsBefore = (await Promise.all(workers.map((w) => (w.tell({ type: 'count' }), w.next('count', 90_000))))) as Extract<Report, { type: 'count' }>[]
    const cpuBefore = servers.map((s) => cpuSeconds(s.target.pid))
    const restStarted = performance.now()
    stage('at rest')
    await sleep(o.restSeconds * 1000)
    const restElapsed = (performance.now() - restStarted) / 1000
    const cpuRest = servers.map((s, i) => (cpuSeconds(s.target.pid) - cpuBefore[i]!) / restElapsed)
    const countsAfter = (await Promise.all(workers.map((w) => (w.tell({ type: 'count' }), w.next('count', 90_000))))) as Extract<Report, { type: 'count' }>[]
    const pollsAtRest = countsAfter.reduce((sum, c) => sum + c.polls, 0) - countsBefore.reduce((sum, c) => sum + c.polls, 0)
    const droppedAtRest = countsAfter.reduce((sum, c) => sum + c.dropped, 0)
    const whyAtRest: Record<string, number> = {}
    for (const c of countsAfter) for (const [what, n] of Object.entries(c.why)) whyAtRest[what] = (whyAtRest[what] ?? 0) + n

    stage('rested; the message goes')
    // One message in the lobby, which every person follows: to all of them.
    const tag = `scale${Date.now()}`
    for (const w of workers) w.tell({ type: 'watch', tag })
    await sleep(500)
    const sentAt = Date.now()
    const res = await fetch(`${servers[0]!.target.base}/longpolling/room/messages`, {
      method: 'POST',
      headers: { cookie: cookies[0]!, 'content-type': 'application/json' },
      body: JSON.stringify({ text: `${tag}:to everyone` }),
    })
    if (res.status !== 201) throw new Error(`the message to everyone was refused: ${res.status} ${await res.text()}`)
    let counts: Extract<Report, { type: 'count' }>[] = []
    let total = 0
    let toldAt = Date.now()
    for (const deadline = Date.now() + 120_000; Date.now() < deadline; ) {
      counts = (await Promise.all(workers.map((w) => (w.tell({ type: 'count', since: sentAt }), w.next('count', 90_000))))) as Extract<Report, { type: 'count' }>[]
      total = counts.reduce((sum, c) => sum + c.received.websocket + c.received.sse + c.received.longpoll, 0)
      if (total >= held) break
      if (Date.now() - toldAt >= 10_000) {
        toldAt = Date.now()
        stage(`${total} of ${held} have it`)
      }
      await sleep(200)
    }
    const lastAt = Math.max(...counts.map((c) => c.lastAt))
    const byKind = Object.fromEntries(kinds.map((k) => [k, counts.reduce((sum, c) => sum + c.received[k], 0)]))
    const lastOfKind = Object.fromEntries(kinds.map((k) => [k, Math.max(...counts.map((c) => c.lastOf[k])) - sentAt]))

    const growth = rssAfter.reduce((sum, r, i) => sum + r - rssBefore[i]!, 0)
    lines.push(
      `  ${held.toLocaleString('en-US')} held of ${o.connections.toLocaleString('en-US')} (${o.people.toLocaleString('en-US')} people with accounts, each in the lobby and ${o.roomsEach} other rooms; ${kinds.length === 3 ? 'a third each WebSocket, event stream, long poll' : `${kinds.join(' and ')} only`}), opened in ${(connectMs / 1000).toFixed(1)} s by ${workers.length} load generator processes`,
      `  one message in the lobby: ${total.toLocaleString('en-US')} delivered (${kinds.map((k) => `${k} ${byKind[k]!.toLocaleString('en-US')}`).join(', ')}), ${(held - total).toLocaleString('en-US')} missed, the last ${lastAt - sentAt} ms after it was sent (the last of each: ${kinds.map((k) => `${k} ${lastOfKind[k]} ms`).join(', ')})`,
      ...(held > total
        ? [
            `  long polls without it: ${counts.reduce((sum, c) => sum + c.missedPolls.answered, 0)} answered after it was sent (polled on without it), ${counts.reduce((sum, c) => sum + c.missedPolls.silent, 0)} not (the longest wait ${Math.max(...counts.map((c) => c.missedPolls.waitedMs))} ms), on ports ${[...new Set(counts.flatMap((c) => c.missedPolls.ports))].join(', ')}${counts.find((c) => c.missedPolls.sample) ? `; the last answer of one: ${counts.find((c) => c.missedPolls.sample)!.missedPolls.sample}` : ''}`,
            `  their answers since the message was watched for: ${counts.flatMap((c) => c.missedPolls.answersSince).join(', ')}; the first three of one: ${counts.find((c) => c.missedPolls.since.length > 0)?.missedPolls.since.join('\n    ') ?? 'none'}`,
          ]
        : []),
      `  at rest for ${o.restSeconds} s: ${pollsAtRest.toLocaleString('en-US')} long polls renewed; since they opened, ${droppedAtRest} connections closed by the servers and not reopened (a long poll's connection is reopened, as a browser does, 5 times at most)${Object.keys(whyAtRest).length > 0 ? ` (${Object.entries(whyAtRest).map(([what, n]) => `${what}: ${n}`).join(', ')})` : ''}`,
      ...servers.map((_, i) => {
        const mine = Math.floor(o.connections / o.processes) + (i < o.connections % o.processes ? 1 : 0)
        return `  process ${i + 1}: ${mine.toLocaleString('en-US')} connections, RSS ${Math.round(rssAfter[i]! / 1048576)} MiB (${Math.round((rssAfter[i]! - rssBefore[i]!) / mine).toLocaleString('en-US')} B per connection), CPU at rest ${(cpuRest[i]! * 100).toFixed(1)}% of a core`
      }),
    )
    const result: Result = {
      scenario: name,
      target: 'ours',
      connectMs,
      expected: held,
      received: total,
      loss: held - total,
      deliverAllMs: lastAt - sentAt,
      idleBytesPerConn: growth / Math.max(1, held),
      rssMiB: rssAfter.reduce((a, b) => a + b, 0) / 1048576,
      restCpu: Math.max(...cpuRest),
    }
    return { results: [result], lines }
  } finally {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill('SIGKILL')
    await Promise.all(servers.map((s) => d.stop(s.child)))
  }
}
