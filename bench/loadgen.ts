// The load generator: opens sockets to a server (ours, signed in through the real HTTP
// sign-in, or the baseline), sends at a fixed rate or as fast as the echo allows, and
// measures every delivery on one clock. Every loop here is bounded in count and time.
import { randomBytes } from 'node:crypto'
import { Agent, request as httpRequest, type ClientRequest } from 'node:http'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { WebSocket } from 'ws'
import { cpuSeconds, rssBytes, writeCalls } from './proc.js'

export interface Target {
  kind: 'ours' | 'baseline'
  /** http://127.0.0.1:PORT */
  base: string
  pid: number
  /** More processes serving the same room (the Redis scenario): clients are spread over all. */
  peers?: Target[]
}

/** Every process behind a target, for CPU and memory sums. */
const pidsOf = (target: Target) => [target.pid, ...(target.peers ?? []).map((p) => p.pid)]
export const cpuOf = (target: Target) => pidsOf(target).reduce((sum, pid) => sum + cpuSeconds(pid), 0)
export const rssOf = (target: Target) => pidsOf(target).reduce((sum, pid) => sum + rssBytes(pid), 0)
const writesOf = (target: Target) => pidsOf(target).reduce((sum, pid) => sum + writeCalls(pid), 0)

export interface Result {
  scenario: string
  target: Target['kind']
  connectMs?: number
  /** Messages actually sent per second (a fixed-rate run shows whether the rate held). */
  sentPerSec?: number
  deliveriesPerSec?: number
  expected?: number
  received?: number
  loss?: number
  gaps?: number
  p50?: number
  p90?: number
  p99?: number
  max?: number
  cpuPerMillion?: number
  /** The server's write system calls per 1,000 deliveries (how much each write carries: batching). */
  writesPerThousand?: number
  rssMiB?: number
  idleBytesPerConn?: number
  /** RSS of a fresh process before its first connection. */
  startupMiB?: number
  /** One message to every idle connection: until the last one had it. */
  deliverAllMs?: number
  /** The load generator's own CPU, as a share of one core over the run (near 100%: it is the bottleneck). */
  loadgenCpu?: number
  /** Rooms (bench/idle-rooms.ts): the JavaScript heap in use after a full collection. */
  heapMiB?: number
  /** Rooms: what each room adds to RSS and to the heap, against the same process (or a fresh one) before. */
  rssBytesPerRoom?: number
  heapBytesPerRoom?: number
  /** The scale run: the busiest process's CPU at rest (nothing sent), as a share of one core. */
  restCpu?: number
  /** The person's stream (bench/follow-memory.ts): the server's heap per connection after full collections. */
  heapBytesPerConn?: number
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Signs in `count` users through POST /signin; returns their Cookie headers. */
export async function signInUsers(base: string, count: number, prefix: string): Promise<string[]> {
  const cookies: string[] = []
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${base}/signin`, {
      method: 'POST',
      body: new URLSearchParams({ user: `${prefix}${i}`, transport: 'websocket' }),
      redirect: 'manual',
    })
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('chat_session='))
    if (!cookie) throw new Error(`sign-in failed: ${res.status}`)
    cookies.push(cookie.split(';')[0]!)
  }
  return cookies
}

/** Counts occurrences of `needle` in a frame without decoding it. */
export function countIn(data: Buffer, needle: Buffer): number {
  let count = 0
  for (let at = data.indexOf(needle); at !== -1; at = data.indexOf(needle, at + needle.length)) count++
  return count
}

export interface Client {
  /** Probes and senders: a ws client. Everyone else: the bare connection after the handshake. */
  ws: WebSocket | undefined
  raw?: Socket
  received: number
  /** Probes parse frames and time the run's messages; the rest only count them. */
  probe: boolean
  /** For closed-loop senders: called with each of this client's own messages that comes back. */
  onOwn?: () => void
  index: number
}

export interface Run {
  /** Tags this run's messages so archive replays of earlier runs are not counted. */
  tag: string
  latencies: number[]
  /** With SocketScenario.social: the message the reactions are on. */
  social?: { root: number }
  reactions?: number
}

function socketUrl(target: Target, index: number): string {
  const all = [target, ...(target.peers ?? [])]
  const base = all[index % all.length]!.base
  const ws = base.replace(/^http/, 'ws')
  return target.kind === 'ours' ? `${ws}/websocket/room/socket` : `${ws}/`
}

/**
 * Opens n sockets, 100 at a time; each counts the run's messages it receives. The first
 * `senders` are probes (they need their own echoes), and about `probes` more are spread
 * evenly over the rest, so latency samples early and late receivers alike.
 */
export async function openClients(
  target: Target,
  n: number,
  cookies: string[],
  run: Run,
  probes: number,
  senders = 0,
): Promise<{ clients: Client[]; connectMs: number }> {
  const step = probes > 0 ? Math.max(1, Math.floor(n / probes)) : Infinity
  const needle = Buffer.from(`"text":"${run.tag}:`)
  const clients: Client[] = []
  const started = performance.now()
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) => {
      const index = i + k
      const url = socketUrl(target, index)
      const headers: Record<string, string> = target.kind === 'ours' ? { cookie: cookies[index % cookies.length]!, origin: new URL(url.replace(/^ws/, 'http')).origin } : {}
      // Past ~28,000 sockets one source address runs out of ports: then they are spread over
      // 127.0.0.1-4. Not below that: binding a source address makes the kernel search for a
      // free port itself, which turns slow (seconds) with thousands of ports in TIME_WAIT.
      const localAddress = n >= 15_000 ? `127.0.0.${1 + (index % 4)}` : undefined
      const probe = index < senders || index % step === step - 1
      if (!probe) return scanning(url, headers, localAddress, needle, index)
      const ws = new WebSocket(url, { headers, perMessageDeflate: false, ...(localAddress && { localAddress }) })
      const client: Client = { ws, received: 0, probe, index }
      ws.on('message', (data: Buffer) => {
        if (!client.probe) {
          client.received += countIn(data, needle)
          return
        }
        // Read "TAG:SENDER:SENT_AT" where the tag is found, without parsing the frame.
        const now = performance.now()
        for (let at = data.indexOf(needle); at !== -1; at = data.indexOf(needle, at + needle.length)) {
          const start = at + needle.length
          const [sender, sentAt] = data.toString('latin1', start, data.indexOf(34, start)).split(':')
          client.received++
          run.latencies.push(now - Number(sentAt))
          if (Number(sender) === client.index) client.onOwn?.()
        }
      })
      return new Promise<Client>((resolve, reject) => {
        ws.once('open', () => resolve(client))
        ws.once('error', reject)
      })
    })
    clients.push(...(await Promise.all(batch)))
  }
  return { clients, connectMs: performance.now() - started }
}

/**
 * A reader that only counts: the WebSocket handshake by hand, then the server's (unmasked)
 * frames are scanned as raw bytes for the run's tag, never parsed, so the load generator spends
 * little per delivery (the tail of each chunk is kept, so a tag split across two is still seen).
 */
export function scanning(url: string, headers: Record<string, string>, localAddress: string | undefined, needle: Buffer, index: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url.replace(/^ws/, 'http'), {
      ...(localAddress && { localAddress }),
      agent: false,
      headers: { ...headers, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
    })
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      const client: Client = { ws: undefined, raw: socket, received: 0, probe: false, index }
      let tail: Buffer = Buffer.alloc(0)
      const scan = (chunk: Buffer) => {
        // A chunk that starts a frame (0x81: a final text frame) cannot continue a tag from the last one.
        if (tail.length > 0 && chunk[0] !== 0x81) client.received += countIn(Buffer.concat([tail, chunk.subarray(0, needle.length - 1)]), needle)
        client.received += countIn(chunk, needle)
        tail = chunk.subarray(Math.max(0, chunk.length - needle.length + 1))
      }
      if (head.length > 0) scan(head)
      socket.on('data', scan)
      socket.on('error', () => {})
      resolve(client)
    })
    req.on('response', (res) => reject(new Error(`upgrade refused: ${res.statusCode}`)))
    req.on('error', reject)
    req.end()
  })
}

export async function closeClients(clients: Client[]): Promise<void> {
  await Promise.all(
    clients.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.raw) {
            c.raw.destroy()
            return resolve()
          }
          const ws = c.ws!
          if (ws.readyState === WebSocket.CLOSED) return resolve()
          ws.once('close', () => resolve())
          ws.terminate()
        }),
    ),
  )
}

const totalOf = (clients: Client[]) => clients.reduce((sum, c) => sum + c.received, 0)

/**
 * Calls fire() `rate` times a second, by the clock: a tick that comes late (the load
 * generator is busy too) catches up, so the rate holds. Returns a stop function.
 */
export function paced(rate: number, fire: () => void): () => void {
  const started = performance.now()
  let fired = 0
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - started) / 1000) * rate)
    for (; fired < due; fired++) fire()
  }, 5)
  return () => clearInterval(timer)
}

function send(client: Client, run: Run): void {
  if (!run.social) return void client.ws!.send(JSON.stringify({ text: `${run.tag}:${client.index}:${performance.now()}` }))
  client.ws!.send(JSON.stringify({ text: `${run.tag}:${client.index}:${performance.now()}: **ship it** _today_, see \`deploy.sh\`` }))
  // A reaction to the run's first message: each sender adds then takes back one emoji of its own, so every frame changes something.
  const turn = (run.reactions = (run.reactions ?? 0) + 1)
  const emoji = REACTIONS[client.index % REACTIONS.length]!
  client.ws!.send(JSON.stringify({ type: 'react', id: run.social.root, emoji, action: Math.floor(turn / REACTIONS.length) % 2 === 0 ? 'add' : 'remove' }))
}

const REACTIONS = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '✅', '🚀', '🙏']

export function percentiles(samples: number[]): Pick<Result, 'p50' | 'p90' | 'p99' | 'max'> {
  if (samples.length === 0) return {}
  const sorted = Float64Array.from(samples).sort()
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]! }
}

/** Waits (bounded) until every expected delivery arrived or nothing more comes. */
export async function drain(total: () => number, expected: number, limitMs: number): Promise<void> {
  const deadline = performance.now() + limitMs
  let last = -1
  let still = 0
  while (performance.now() < deadline) {
    const now = total()
    if (now >= expected) return
    still = now === last ? still + 1 : 0
    if (still >= 20) return
    last = now
    await sleep(50)
  }
}

export interface SocketScenario {
  name: string
  n: number
  senders: number
  /** Messages per second across all senders; undefined: as fast as each sender's echo allows. */
  rate?: number
  /** Messages each closed-loop sender keeps in flight. */
  window?: number
  seconds: number
  /** How the N readers listen (default: WebSocket); with 'sse' the senders are sockets of their own. */
  readers?: 'websocket' | 'sse'
  /** Issue 32's message path: each message formatted (bold, italic, code), and a reaction frame after each (added and taken back in turn, so each is written and delivered). */
  social?: boolean
}

interface Stream {
  req: ClientRequest
  received: number
}

/**
 * Opens n event streams (ours only), 100 at a time; each counts the run's messages by scanning
 * its chunks for the tag, never parsing them (the load generator must not be the bottleneck).
 */
async function openStreams(target: Target, n: number, cookies: string[], run: Run): Promise<Stream[]> {
  const needle = Buffer.from(`"text":"${run.tag}:`)
  const agent = new Agent({ keepAlive: false, maxSockets: Infinity })
  const streams: Stream[] = []
  const all = [target, ...(target.peers ?? [])]
  for (let i = 0; i < n; i += 100) {
    const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) => {
      const index = i + k
      const base = all[index % all.length]!.base
      return new Promise<Stream>((resolve, reject) => {
        const req = httpRequest(`${base}/sse/room/events`, { agent, headers: { cookie: cookies[index % cookies.length]!, accept: 'text/event-stream' } }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`event stream refused: ${res.statusCode}`))
          const stream: Stream = { req, received: 0 }
          res.on('data', (chunk: Buffer) => (stream.received += countIn(chunk, needle)))
          res.once('data', () => resolve(stream))
        })
        req.on('error', reject)
        req.end()
      })
    })
    streams.push(...(await Promise.all(batch)))
  }
  return streams
}

async function warmUp(senders: Client[], run: Run, rate: number): Promise<void> {
  let next = 0
  const stop = paced(rate, () => send(senders[next++ % senders.length]!, run))
  await sleep(1000)
  stop()
}

/**
 * A load over open clients, as the many-room scenarios run it: one second of it first, not
 * measured (the server compiles its hot paths), then `seconds` of it measured; `load(tag,
 * onSend)` starts it (messages tagged `tag`) and returns its stop. The clients are closed after.
 */
export async function warmThenMeasure(
  target: Target,
  clients: Client[],
  run: Run,
  load: (tag: string, onSend?: () => void) => () => void,
  m: { scenario: string; connectMs: number; seconds: number; readers: number },
): Promise<Result> {
  const total = () => clients.reduce((sum, c) => sum + c.received, 0)
  const warm = load(`${run.tag}w`)
  await sleep(1000)
  warm()
  await sleep(500)
  for (const c of clients) c.received = 0
  run.latencies.length = 0
  let sent = 0
  const measured = measuring(target)
  const stop = load(run.tag, () => sent++)
  await sleep(m.seconds * 1000)
  stop()
  const result = await measured.result({ scenario: m.scenario, connectMs: m.connectMs, latencies: run.latencies, total, sent, readers: m.readers })
  await closeClients(clients)
  await sleep(300)
  return result
}

/**
 * A measured window, from now: when it ends, what arrived in it (the throughput), what arrived at
 * all once the stragglers are in (the loss), the server's CPU per delivery and memory, and this
 * load generator's own CPU (so a saturated run shows).
 */
export function measuring(target: Target) {
  const cpuBefore = cpuOf(target)
  const writesBefore = writesOf(target)
  const loadBefore = process.cpuUsage()
  const started = performance.now()
  return {
    async result(m: { scenario: string; connectMs: number; latencies: number[]; total: () => number; sent: number; readers: number }): Promise<Result> {
      const elapsed = (performance.now() - started) / 1000
      const load = process.cpuUsage(loadBefore)
      const inWindow = m.total()
      const expected = m.sent * m.readers
      await drain(m.total, expected, 5000)
      const received = m.total()
      const cpu = cpuOf(target) - cpuBefore
      return {
        scenario: m.scenario,
        target: target.kind,
        connectMs: m.connectMs,
        sentPerSec: m.sent / elapsed,
        deliveriesPerSec: inWindow / elapsed,
        expected,
        received,
        loss: expected - received,
        ...percentiles(m.latencies),
        cpuPerMillion: received > 0 ? cpu / (received / 1e6) : undefined,
        writesPerThousand: received > 0 ? (writesOf(target) - writesBefore) / (received / 1000) : undefined,
        rssMiB: rssOf(target) / 1048576,
        loadgenCpu: (load.user + load.system) / 1e6 / elapsed,
      }
    },
  }
}

/** N sockets, K senders at a fixed total rate or closed-loop; latency, throughput, loss, CPU. */
export async function socketScenario(target: Target, cookies: string[], s: SocketScenario, tag: string): Promise<Result> {
  const run: Run = { tag, latencies: [] }
  if (s.social) {
    // The message every reaction is on (the baseline echoes whatever it is sent).
    const res = await fetch(`${target.base}/longpolling/room/messages`, { method: 'POST', headers: { cookie: cookies[0]!, 'content-type': 'application/json' }, body: JSON.stringify({ text: `${tag}: react to me` }) }).catch(() => undefined)
    const root = res?.ok ? ((await res.json()) as { id?: number }).id : undefined
    run.social = { root: root ?? 1 }
  }
  const sse = s.readers === 'sse'
  // Latency from the senders (they read their own echoes) and 20 more readers spread over the rest.
  const { clients, connectMs } = await openClients(target, sse ? s.senders : s.n, cookies, run, 20, s.senders)
  const streams = sse ? await openStreams(target, s.n, cookies, run) : []
  const total = () => totalOf(clients) + streams.reduce((sum, x) => sum + x.received, 0)
  const readers = sse ? s.n + s.senders : s.n
  // A second of the same load first, not measured: a fresh server process compiles its hot
  // paths during its first messages, and a long-running server (what this measures) has.
  await warmUp(clients.slice(0, s.senders), { tag: `${tag}w`, latencies: [] }, s.rate ?? 200)
  await sleep(500)
  for (const c of clients) c.received = 0
  for (const x of streams) x.received = 0
  run.latencies.length = 0
  const senders = clients.slice(0, s.senders)
  let sent = 0
  let running = true
  const measured = measuring(target)

  if (s.rate !== undefined) {
    let next = 0
    const stop = paced(s.rate, () => {
      send(senders[next++ % senders.length]!, run)
      sent++
    })
    await sleep(s.seconds * 1000)
    stop()
  } else {
    const inFlight = s.window ?? 8
    for (const sender of senders) {
      sender.onOwn = () => {
        if (!running) return
        send(sender, run)
        sent++
      }
      for (let i = 0; i < inFlight; i++) {
        send(sender, run)
        sent++
      }
    }
    await sleep(s.seconds * 1000)
  }
  running = false
  const result = await measured.result({ scenario: s.name, connectMs, latencies: run.latencies, total, sent, readers })
  await closeClients(clients)
  for (const x of streams) x.req.destroy()
  await sleep(300)
  return result
}

/**
 * Memory one idle connection costs the server (a fresh process): RSS before and after opening n
 * sockets, and how long opening them took (sign-in excluded: the cookies are made before). With
 * `deliver`, one message then goes to all of them and the time until the last has it is taken.
 */
export async function idleMemory(target: Target, cookies: string[], n: number, tag: string, deliver = false): Promise<Result> {
  await sleep(300)
  const before = rssBytes(target.pid)
  const run: Run = { tag, latencies: [] }
  const { clients, connectMs } = await openClients(target, n, cookies, run, 0, deliver ? 1 : 0)
  await sleep(Math.min(5000, 1500 + n / 20))
  const after = rssBytes(target.pid)
  const result: Result = { scenario: `idle memory, ${n} sockets`, target: target.kind, connectMs, idleBytesPerConn: (after - before) / n, rssMiB: after / 1048576 }
  if (deliver) {
    for (const c of clients) c.received = 0
    const started = performance.now()
    send(clients[0]!, run)
    await drain(() => totalOf(clients), n, 60_000)
    result.deliverAllMs = performance.now() - started
    result.received = totalOf(clients)
    result.expected = n
    result.loss = n - result.received
  }
  await closeClients(clients)
  await sleep(300)
  return result
}

/** Long polling (ours only): pollers follow their cursors while a socket publishes at a fixed rate. */
export async function longPollScenario(target: Target, cookies: string[], pollers: number, rate: number, seconds: number, tag: string): Promise<Result> {
  const run: Run = { tag, latencies: [] }
  let received = 0
  let gaps = 0
  let running = true
  // A fresh controller per poll (one shared signal would collect a listener per fetch).
  const current: AbortController[] = []
  const cookieOf = (index: number): Record<string, string> => (target.kind === 'ours' ? { cookie: cookies[index % cookies.length]! } : {})
  const start = (await (await fetch(`${target.base}/longpolling/room/messages`, { headers: cookieOf(0) })).json()) as { id: number }[]
  const firstCursor = start.at(-1)?.id ?? 0

  const poller = async (index: number) => {
    let cursor = firstCursor
    const headers = cookieOf(index)
    // Its page's id, as the page sends it (ours keeps the room entered between a page's polls; the bare server ignores it).
    const tab = `bench${tag}p${index}`
    // Bounded: at most one poll per 5 ms of the run, and never past `running`.
    for (let polls = 0; running && polls < (seconds * 1000) / 5; polls++) {
      let events: { id: number; text?: string }[]
      const controller = (current[index] = new AbortController())
      try {
        const res = await fetch(`${target.base}/longpolling/room/messages?lastReceived=${cursor}&tab=${tab}`, { headers, signal: controller.signal })
        events = (await res.json()) as { id: number; text?: string }[]
      } catch {
        return
      }
      const now = performance.now()
      for (const e of events) {
        if (e.id !== cursor + 1) gaps++
        cursor = e.id
        if (typeof e.text === 'string' && e.text.startsWith(`${tag}:`)) {
          received++
          run.latencies.push(now - Number(e.text.split(':')[2]))
        }
      }
    }
  }
  const loops = Array.from({ length: pollers }, (_, i) => poller(i))
  await sleep(500)

  // The publisher posts over HTTP, as a long-polling page does (the same for both servers).
  const publish = () =>
    void fetch(`${target.base}/longpolling/room/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...cookieOf(pollers) },
      body: JSON.stringify({ text: `${tag}:${pollers}:${performance.now()}` }),
    }).then((res) => res.arrayBuffer(), () => undefined)
  const cpuBefore = cpuSeconds(target.pid)
  let sent = 0
  const started = performance.now()
  const stop = paced(rate, () => {
    publish()
    sent++
  })
  await sleep(seconds * 1000)
  stop()
  const sentPerSec = sent / ((performance.now() - started) / 1000)
  const expected = sent * pollers
  const deadline = performance.now() + 5000
  while (received < expected && performance.now() < deadline) await sleep(50)
  const elapsed = (performance.now() - started) / 1000
  running = false
  for (const controller of current) controller?.abort()
  await Promise.all(loops)
  const cpu = cpuSeconds(target.pid) - cpuBefore
  return {
    scenario: `long polling, ${pollers} pollers, ${rate} msg/s`,
    target: target.kind,
    sentPerSec,
    deliveriesPerSec: received / elapsed,
    expected,
    received,
    loss: expected - received,
    gaps,
    ...percentiles(run.latencies),
    cpuPerMillion: received > 0 ? cpu / (received / 1e6) : undefined,
    rssMiB: rssBytes(target.pid) / 1048576,
  }
}
