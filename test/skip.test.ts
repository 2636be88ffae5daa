import { once } from 'node:events'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import type { Event } from '../app/chatroom/event.js'
import { eventually, range, skipUnless } from './helpers.js'
import { faultSetup, metric, Reconnecting, RUNS, signIn, sleep, withPostgres } from './fault-cluster.js'
import { haveRedis } from './redis.js'

// The whole fault sequence against the real thing, several times: two app processes on one
// PostgreSQL log and a redis-server of our own, senders on both, readers of every transport on
// both that resume from their cursor (often on the other process), Redis killed (SIGKILL) and
// started again empty three times, and one app process killed and started again. Every reader
// must get every event once and in order, or be told to start over: never skip one silently.
// Every loop is bounded in count and time, and everything is on 127.0.0.1.

type Transport = 'websocket' | 'sse' | 'longpolling'

/**
 * A reader that keeps one cursor (epoch, last id) across connections: each connection lasts a
 * short random while (or until its process dies), then it resumes on the next process in turn.
 * It records what a user would notice: an id that skips ahead (a silent gap), one seen twice,
 * and being told to start over (409 / 4409 / a refused stream).
 */
class Reader extends Reconnecting {
  readonly ids: number[] = []
  readonly gaps: string[] = []
  readonly doubled: number[] = []
  told = 0
  private epoch: string | undefined
  private cursor: number | undefined

  constructor(
    name: string,
    readonly transport: Transport,
    cookie: string,
    bases: () => string[],
    first: number,
  ) {
    super(name, cookie, bases, first)
  }

  get last(): number {
    return this.cursor ?? 0
  }

  private query(): string {
    return this.cursor === undefined ? '' : `?lastReceived=${this.cursor}&epoch=${this.epoch}`
  }

  private see(events: { id?: number }[]): void {
    for (const event of events) {
      const id = event.id
      if (id === undefined) continue // a typing signal
      if (this.cursor !== undefined && id <= this.cursor) this.doubled.push(id)
      else {
        if (this.cursor !== undefined && id !== this.cursor + 1) this.gaps.push(`${this.cursor + 1}..${id - 1} (${this.transport} on ${this.name})`)
        this.cursor = id
        this.ids.push(id)
      }
    }
  }

  private startOver(): void {
    this.told++
    this.cursor = undefined
    this.epoch = undefined
  }

  protected connect(base: string, ms: number): Promise<void> {
    if (this.transport === 'websocket') return this.socket(base, ms)
    if (this.transport === 'sse') return this.stream(base, ms)
    return this.poll(base, ms)
  }

  private async socket(base: string, ms: number): Promise<void> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/websocket/room/socket${this.query()}`, { headers: { cookie: this.cookie } })
    ws.on('error', () => {})
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as unknown
      if (Array.isArray(frame)) this.see(frame as Event[])
      else if ((frame as { type?: string }).type === 'hello') this.epoch = (frame as { epoch: string }).epoch
    })
    const timer = setTimeout(() => ws.close(), ms)
    const [code] = (await once(ws, 'close')) as [number]
    clearTimeout(timer)
    if (code === 4409) this.startOver()
  }

  private async stream(base: string, ms: number): Promise<void> {
    const res = await fetch(`${base}/sse/room/events${this.query()}`, { headers: { cookie: this.cookie }, signal: AbortSignal.timeout(ms) })
    if (!res.ok || !res.body) return void (await sleep(50))
    let buffer = ''
    try {
      const chunks = res.body.pipeThrough(new TextDecoderStream()).getReader()
      for (let read = await chunks.read(); !read.done; read = await chunks.read()) {
        buffer += read.value
        let end: number
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const name = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (data === undefined) continue
          if (name === 'hello') this.epoch = (JSON.parse(data) as { epoch: string }).epoch
          else if (name === 'refused') {
            if ((JSON.parse(data) as { status: number }).status === 409) this.startOver()
          } else if (name === undefined) this.see([JSON.parse(data) as Event])
        }
      }
    } catch {
      // The time ran out (the reader moves on), or the process died.
    }
  }

  private async poll(base: string, ms: number): Promise<void> {
    const until = Date.now() + ms
    while (Date.now() < until && !this.stopped) {
      const res = await fetch(`${base}/longpolling/room/messages${this.query()}`, { headers: { cookie: this.cookie }, signal: AbortSignal.timeout(3000) })
      if (res.status === 409) return this.startOver()
      if (res.status !== 200) return void (await sleep(50))
      this.epoch = res.headers.get('x-room-epoch') ?? this.epoch
      this.see((await res.json()) as Event[])
    }
  }
}

/** Senders that send until stopped, to each process in turn, keeping what was acknowledged. */
function senders(bases: () => string[], cookies: string[]) {
  const acked: Event[] = []
  let refused = 0
  let stop = false
  const loops = cookies.map(async (cookie, i) => {
    for (let n = 0; n < 5000 && !stop; n++) {
      const all = bases()
      try {
        const res = await fetch(`${all[n % all.length]}/longpolling/room/messages`, {
          method: 'POST',
          headers: { cookie, 'content-type': 'application/json' },
          body: JSON.stringify({ text: `s${i}-${n}` }),
          signal: AbortSignal.timeout(5000),
        })
        if (res.status === 201) acked.push((await res.json()) as Event)
        else refused++
      } catch {
        refused++
        await sleep(20)
      }
    }
  })
  return {
    acked,
    refused: () => refused,
    async stop() {
      stop = true
      await Promise.all(loops)
    },
  }
}

async function faultRun(t: Test, run: number): Promise<void> {
  const { redis, startA, startB } = await faultSetup(t)
  const a = await startA()
  let b = await startB()
  let bAlive = true
  const bases = () => (bAlive ? [a.base, b.base] : [a.base])

  const readers: Reader[] = []
  for (const transport of ['websocket', 'sse', 'longpolling'] as const) {
    for (const home of [0, 1]) {
      const name = `${transport}${home ? 'B' : 'A'}`
      readers.push(new Reader(name, transport, await signIn([a.base, b.base][home]!, name), bases, home))
    }
  }
  const cookies = await Promise.all(['ann', 'bob', 'cat', 'dan'].map((name, i) => signIn(i % 2 ? b.base : a.base, name)))
  for (const reader of readers) reader.start()
  const sending = senders(bases, cookies)
  const began = Date.now()

  // Redis dies three times and comes back empty; process B is killed (SIGKILL) in between.
  for (let kill = 1; kill <= 3; kill++) {
    await sleep(1200)
    await redis.stop()
    await sleep(300 + Math.random() * 700)
    await redis.start()
    if (kill === 2) {
      bAlive = false
      b.child.kill('SIGKILL')
      await once(b.child, 'exit')
      b = await startB()
      bAlive = true
    }
  }
  await sleep(1500)
  await sending.stop()
  const acked = sending.acked.length
  const last = Math.max(...sending.acked.map((e) => e.id))
  t.ok(acked > 100, `run ${run}: ${acked} messages acknowledged in ${Date.now() - began} ms (${sending.refused()} sends refused or unanswered while things were down)`)

  // Everyone catches up to the last acknowledged message, then the readers stop.
  await eventually(() => readers.every((r) => r.last >= last), `every reader to reach event ${last}`, 20_000).catch((error: unknown) => {
    t.fail(`${String(error)}: ${readers.map((r) => `${r.name} at ${r.last} after ${r.connections} connections`).join(', ')}`)
  })
  await Promise.all(readers.map((r) => r.stop()))

  const gaps = readers.flatMap((r) => r.gaps)
  t.same(gaps, [], `run ${run}: no reader skipped an event (${readers.reduce((n, r) => n + r.connections, 0)} connections, each resumed from its cursor)`)
  t.same(readers.flatMap((r) => r.doubled), [], `run ${run}: no reader got an event twice`)
  t.same(readers.map((r) => r.told), readers.map(() => 0), `run ${run}: nobody had to start over (the log is durable)`)
  for (const reader of readers) t.same(reader.ids, range(reader.ids[0]!, reader.last), `run ${run}: ${reader.transport} reader homed on ${reader.name.at(-1)}: every event once, in order`)
  t.same([await metric(a.base, 'chat_reader_gaps_total'), await metric(b.base, 'chat_reader_gaps_total')], [0, 0], `run ${run}: chat_reader_gaps_total is 0 on both processes`)
  t.comment(`run ${run}: ${gaps.length} gaps${gaps.length ? `: ${gaps.join(', ')}` : ''}`)

  for (const server of [a, b]) {
    server.child.kill('SIGTERM')
    await once(server.child, 'exit')
  }
}

t.test('two processes, every transport resuming on both, Redis killed and started empty three times, a process killed: no reader skips an event', { skip: skipUnless(withPostgres && haveRedis, 'PostgreSQL or redis-server is missing') }, async (t) => {
  for (let run = 1; run <= RUNS; run++) await t.test(`run ${run} of ${RUNS}`, (t) => faultRun(t, run))
})

// A process that missed events (Redis down) which the store no longer has when it comes to read
// them (pruned, or a restore): its readers must be told, never handed the next event as if it
// followed. Every reader here stays connected across the hole, so it is the check on live
// events (Subscription.push) that must end each one, not the cursor check of a new connection.
t.test('a process that missed events the store no longer has ends its live readers to start over: none is handed the hole as if it were not there', { skip: skipUnless(withPostgres && haveRedis, 'PostgreSQL or redis-server is missing') }, async (t) => {
  const pg = (await import('pg')).default
  const { redis, env, startA, startB } = await faultSetup(t)
  const a = await startA()
  const b = await startB()
  const sender = await signIn(a.base, 'sender')
  const say = async (text: string) => {
    const res = await fetch(`${a.base}/longpolling/room/messages`, { method: 'POST', headers: { cookie: sender, 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
    t.equal(res.status, 201, `"${text}" acknowledged`)
    return (await res.json()) as Event
  }
  for (let i = 1; i <= 3; i++) await say(`before ${i}`)

  // Readers on B, each from the cursor it has (its own events seen), kept open across the hole.
  type Seen = { name: string; ids: number[]; ended: string | undefined }
  const readers: Seen[] = []
  const watch = (name: string) => {
    const seen: Seen = { name, ids: [], ended: undefined }
    readers.push(seen)
    return seen
  }
  const record = (seen: Seen, events: { id?: number }[]) => {
    for (const { id } of events) if (id !== undefined) seen.ids.push(id)
  }
  const cookie = await signIn(b.base, 'reader')
  const first = await fetch(`${b.base}/longpolling/room/messages?lastReceived=0`, { headers: { cookie } })
  const epoch = first.headers.get('x-room-epoch')!
  const now = ((await first.json()) as Event[]).at(-1)!.id
  t.ok(now >= 4, `process B has the room, up to ${now}`)

  const socket = watch('one-room socket')
  const ws = new WebSocket(`${b.base.replace(/^http/, 'ws')}/websocket/room/socket?lastReceived=${now}`, { headers: { cookie } })
  ws.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as unknown
    if (Array.isArray(frame)) record(socket, frame as Event[])
  })
  ws.on('close', (code) => (socket.ended = `closed ${code}`))
  const several = watch('socket of several rooms')
  const ws2 = new WebSocket(`${b.base.replace(/^http/, 'ws')}/websocket/socket`, { headers: { cookie } })
  ws2.on('message', (data) => {
    const frame = JSON.parse(data.toString()) as { type?: string; events?: Event[]; reason?: string }
    if (frame.type === 'hello') ws2.send(JSON.stringify({ type: 'subscribe', room: 'lobby', lastReceived: now }))
    else if (frame.type === 'unsubscribed') several.ended = `unsubscribed ${frame.reason}`
    else if (frame.events) record(several, frame.events)
  })
  const stream = watch('event stream')
  const streaming = fetch(`${b.base}/sse/room/events?lastReceived=${now}`, { headers: { cookie } }).then(async (res) => {
    let buffer = ''
    const chunks = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    for (let read = await chunks.read(); !read.done; read = await chunks.read()) {
      buffer += read.value
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (data !== undefined && !/^event: /m.test(block)) record(stream, [JSON.parse(data) as Event])
      }
    }
    stream.ended = 'ended'
  })
  const poll = watch('long poll')
  const polling = fetch(`${b.base}/longpolling/room/messages?lastReceived=${now}`, { headers: { cookie }, signal: AbortSignal.timeout(60_000) }).then(async (res) => {
    record(poll, (await res.json()) as Event[])
    poll.ended = `answered ${res.status}`
  })
  await Promise.all([once(ws, 'open'), once(ws2, 'open')])
  await sleep(300)

  // B is stopped while Redis dies: A commits five messages B never hears of, and the store then
  // loses them (as a prune or a restore would); Redis comes back, B goes on, A says one more.
  b.child.kill('SIGSTOP')
  await redis.stop()
  const lost = []
  for (let i = 1; i <= 5; i++) lost.push(await say(`lost ${i}`))
  const db = new pg.Client({ connectionString: env.DATABASE_URL })
  await db.connect()
  await db.query("DELETE FROM chat_room_events WHERE room = 'lobby' AND id >= $1", [lost[0]!.id])
  await db.end()
  await redis.start()
  b.child.kill('SIGCONT')
  await sleep(1500)
  const after = await say('after the hole')
  await eventually(() => readers.every((r) => r.ended !== undefined || r.ids.includes(after.id)), 'every reader on B to be ended or handed the event after the hole', 20_000).catch((error: unknown) =>
    t.fail(`${String(error)}: ${readers.map((r) => `${r.name}: ${r.ended ?? 'open'}, ${r.ids.join(' ')}`).join('; ')}`),
  )
  for (const reader of readers) {
    t.same(reader.ids, range(now + 1, now + reader.ids.length), `${reader.name}: only events that follow its cursor, with no hole (${reader.ended ?? 'still open'})`)
    t.notOk(reader.ids.includes(after.id), `${reader.name}: was not handed ${after.id} after ${lost[0]!.id - 1}`)
  }
  const gaps = await metric(b.base, 'chat_reader_gaps_total')
  t.ok(gaps !== undefined && gaps >= 1, `process B ended its readers at the hole (chat_reader_gaps_total ${gaps})`)
  // Resuming from the cursor is told plainly to start over.
  const resumed = await fetch(`${b.base}/longpolling/room/messages?lastReceived=${now}&epoch=${epoch}`, { headers: { cookie } })
  t.equal(resumed.status, 409, `resuming from before the hole is told to start over (409): ${resumed.status} ${await resumed.clone().text()} ${readers.map((r) => `${r.name}: ${r.ended ?? 'open'}, ${r.ids.join(' ')}`).join('; ')}`)
  ws.close()
  ws2.close()
  await Promise.race([streaming.catch(() => {}), sleep(100)])
  await polling.catch(() => {})
  for (const server of [a, b]) {
    server.child.kill('SIGTERM')
    await once(server.child, 'exit')
  }
})
