import { once } from 'node:events'
import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import type { Event } from '../app/chatroom/event.js'
import { eventually, range, skipUnless } from './helpers.js'
import { faultSetup, metric, Reconnecting, RUNS, signIn, sleep, withPostgres } from './fault-cluster.js'
import { haveRedis } from './redis.js'

// The promise of skip.test.ts for readers of several rooms (the one-room readers there take other paths):
// four rooms (the lobby and three others), senders posting round robin into them with client ids
// and failing over between the processes; on each process a long poll of the four rooms, a socket
// of the four rooms and an event stream of the four rooms resuming by Last-Event-ID, each
// reconnecting often and on the other process in turn. Redis is killed (SIGKILL) and started
// again empty, then process A is killed and started again, while the rooms are loaded (and
// loaded again on the restarted process) under traffic. Per room and reader, the ids must be
// consecutive, none twice: never the same stretch handed again.

const ROOMS = ['lobby', 'red', 'green', 'blue']
const PHASE_MS = Number(process.env.FAULT_PHASE_MS ?? 4000)
type Kind = 'rooms-longpolling' | 'rooms-socket' | 'rooms-sse'
type RoomEvent = Event & { room: string }

/** One reader of the four rooms: a cursor (epoch, last id) per room, kept across connections. */
class RoomsReader extends Reconnecting {
  readonly ids = new Map<string, number[]>(ROOMS.map((room) => [room, []]))
  readonly gaps: string[] = []
  readonly doubled: string[] = []
  told = 0
  private readonly cursors = new Map<string, { epoch?: string; last: number }>(ROOMS.map((room) => [room, { last: 0 }]))
  /** What the event stream last said in `id:` (the browser's Last-Event-ID). */
  private lastEventId: string | undefined

  constructor(
    name: string,
    readonly kind: Kind,
    cookie: string,
    bases: () => string[],
    first: number,
  ) {
    super(name, cookie, bases, first)
  }

  last(room: string): number {
    return this.cursors.get(room)!.last
  }

  private cursorOf(room: string): string {
    const { epoch, last } = this.cursors.get(room)!
    return `${room}:${epoch ?? ''}:${last}`
  }

  private see(room: string, events: { id?: number }[]): void {
    const cursor = this.cursors.get(room)!
    for (const { id } of events) {
      if (id === undefined) continue // a typing signal
      if (id <= cursor.last) this.doubled.push(`${room} ${id} at ${cursor.last} (${this.kind} ${this.name})`)
      else {
        if (id !== cursor.last + 1) this.gaps.push(`${room} ${cursor.last + 1}..${id - 1} (${this.kind} ${this.name})`)
        cursor.last = id
        this.ids.get(room)!.push(id)
      }
    }
  }

  private startOver(room: string): void {
    this.told++
    this.cursors.set(room, { last: 0 })
    this.lastEventId = undefined
  }

  protected connect(base: string, ms: number): Promise<void> {
    if (this.kind === 'rooms-socket') return this.socket(base, ms)
    if (this.kind === 'rooms-sse') return this.stream(base, ms)
    return this.poll(base, ms)
  }

  private async poll(base: string, ms: number): Promise<void> {
    const until = Date.now() + ms
    while (Date.now() < until && !this.stopped) {
      const query = ROOMS.map((room) => `cursor=${encodeURIComponent(this.cursorOf(room))}`).join('&')
      const res = await fetch(`${base}/longpolling/messages?${query}`, { headers: { cookie: this.cookie }, signal: AbortSignal.timeout(3000) })
      if (res.status !== 200) return void (await sleep(50))
      const body = (await res.json()) as { events: RoomEvent[]; rooms: Record<string, { epoch: string }>; refused: { room: string; status: number }[] }
      for (const [room, { epoch }] of Object.entries(body.rooms)) this.cursors.get(room)!.epoch ??= epoch
      for (const event of body.events) this.see(event.room, [event])
      for (const refusal of body.refused) if (refusal.status === 409) this.startOver(refusal.room)
      if (body.refused.length > 0) await sleep(50)
    }
  }

  private async socket(base: string, ms: number): Promise<void> {
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/websocket/socket`, { headers: { cookie: this.cookie } })
    ws.on('error', () => {})
    const subscribe = (room: string) => {
      const { epoch, last } = this.cursors.get(room)!
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'subscribe', room, ...(epoch && { epoch }), lastReceived: last }))
    }
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as { type?: string; room?: string; events?: { id?: number }[]; epoch?: string; status?: number }
      if (frame.type === 'hello') for (const room of ROOMS) subscribe(room)
      else if (frame.type === 'subscribed') this.cursors.get(frame.room!)!.epoch ??= frame.epoch
      else if (frame.type === 'unsubscribed') setTimeout(() => subscribe(frame.room!), 20)
      else if (frame.type === 'refused') {
        if (frame.status === 409) this.startOver(frame.room!)
        setTimeout(() => subscribe(frame.room!), 50)
      } else if (frame.events && frame.room) this.see(frame.room, frame.events)
    })
    const timer = setTimeout(() => ws.close(), ms)
    await once(ws, 'close')
    clearTimeout(timer)
  }

  private async stream(base: string, ms: number): Promise<void> {
    const query = ROOMS.map((room) => `cursor=${encodeURIComponent(this.cursorOf(room))}`).join('&')
    const headers: Record<string, string> = { cookie: this.cookie }
    if (this.lastEventId !== undefined) headers['last-event-id'] = this.lastEventId
    const res = await fetch(`${base}/sse/events?${query}`, { headers, signal: AbortSignal.timeout(ms) })
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
          const id = /^id: (.*)$/m.exec(block)?.[1]
          if (data === undefined) continue
          if (name === 'hello') {
            for (const [room, { epoch }] of Object.entries((JSON.parse(data) as { rooms: Record<string, { epoch: string }> }).rooms)) this.cursors.get(room)!.epoch ??= epoch
          } else if (name === 'refused') {
            const refusal = JSON.parse(data) as { room: string; status: number }
            if (refusal.status === 409) this.startOver(refusal.room)
          } else if (name === undefined) {
            const event = JSON.parse(data) as RoomEvent
            this.see(event.room, [event])
            if (id !== undefined) this.lastEventId = id
          }
        }
      }
    } catch {
      // The time ran out (the reader moves on), or the process died.
    }
  }
}

/** Senders posting round robin into the rooms with a client id each, resending it on the other process until it is answered. */
function roomSenders(bases: () => string[], cookies: string[]) {
  const acked = new Map<string, number[]>(ROOMS.map((room) => [room, []]))
  let refused = 0
  let stop = false
  const loops = cookies.map(async (cookie, i) => {
    for (let n = 0, turn = i; n < 5000 && !stop; n++) {
      const room = ROOMS[(n + i) % ROOMS.length]!
      const url = room === 'lobby' ? '/longpolling/room/messages' : `/longpolling/rooms/${room}/messages`
      const clientId = `c${i}-${n}-${Math.random().toString(36).slice(2, 8)}`
      for (let attempt = 0; attempt < 20 && !stop; attempt++) {
        const all = bases()
        try {
          const res = await fetch(`${all[turn++ % all.length]}${url}`, {
            method: 'POST',
            headers: { cookie, 'content-type': 'application/json' },
            body: JSON.stringify({ text: `s${i}-${n}`, clientId }),
            signal: AbortSignal.timeout(5000),
          })
          if (res.status === 201 || res.status === 200) {
            acked.get(room)!.push(((await res.json()) as Event).id)
            break
          }
          refused++
        } catch {
          refused++
        }
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

async function roomsFaultRun(t: Test, run: number): Promise<void> {
  // A window bigger than the rooms' logs: a room loaded under traffic reads all of it while the bus brings more.
  const { redis, startA, startB } = await faultSetup(t, { ARCHIVE_SIZE: '2000' })
  let a = await startA()
  const b = await startB()
  let aAlive = true
  const bases = () => (aAlive ? [a.base, b.base] : [b.base])
  const owner = await signIn(a.base, 'owner')
  for (const room of ROOMS.slice(1)) {
    const res = await fetch(`${a.base}/rooms`, { method: 'POST', headers: { cookie: owner }, body: new URLSearchParams({ name: room }) })
    t.ok(res.ok, `room ${room} created (${res.status})`)
  }

  const readers: RoomsReader[] = []
  for (const kind of ['rooms-longpolling', 'rooms-socket', 'rooms-sse'] as const) {
    for (const home of [0, 1]) {
      const name = `${kind.slice(6)}${home ? 'B' : 'A'}`
      readers.push(new RoomsReader(name, kind, await signIn([a.base, b.base][home]!, name), bases, home))
    }
  }
  const cookies = await Promise.all(['ann', 'bob', 'cat', 'dan'].map((name, i) => signIn(i % 2 ? b.base : a.base, name)))
  // Senders first: the readers load the rooms on each process while messages flow.
  const sending = roomSenders(bases, cookies)
  await sleep(300)
  for (const reader of readers) reader.start()

  await sleep(PHASE_MS / 2)
  await redis.stop()
  await sleep(300 + Math.random() * 700)
  await redis.start()
  await sleep(PHASE_MS)
  aAlive = false
  a.child.kill('SIGKILL')
  await once(a.child, 'exit')
  a = await startA()
  aAlive = true
  await sleep(PHASE_MS)
  await sending.stop()
  const sent = [...sending.acked.values()].reduce((n, ids) => n + ids.length, 0)
  t.ok(sent > 100, `run ${run}: ${sent} messages acknowledged in four rooms (${sending.refused()} tries refused or unanswered while things were down)`)
  const lasts = new Map(ROOMS.map((room) => [room, Math.max(0, ...sending.acked.get(room)!)]))

  await eventually(() => readers.every((r) => ROOMS.every((room) => r.last(room) >= lasts.get(room)!)), 'every reader to reach every room\'s last acknowledged message', 20_000).catch(
    (error: unknown) => {
      t.fail(`${String(error)}: ${readers.map((r) => `${r.name} at ${ROOMS.map((room) => `${room} ${r.last(room)}/${lasts.get(room)}`).join(' ')}`).join('; ')}`)
    },
  )
  await Promise.all(readers.map((r) => r.stop()))

  const connections = readers.reduce((n, r) => n + r.connections, 0)
  t.same(readers.flatMap((r) => r.doubled).slice(0, 20), [], `run ${run}: no reader of several rooms was handed an event twice (${connections} connections)`)
  t.same(readers.flatMap((r) => r.gaps).slice(0, 20), [], `run ${run}: no reader of several rooms skipped an event`)
  t.same(readers.map((r) => r.told), readers.map(() => 0), `run ${run}: nobody had to start over (the log is durable)`)
  for (const reader of readers) {
    for (const room of ROOMS) {
      const ids = reader.ids.get(room)!
      t.same(ids, range(1, reader.last(room)), `run ${run}: ${reader.name} has ${room} 1..${reader.last(room)}, each once, in order`)
    }
  }
  for (const room of ROOMS) {
    const acked = sending.acked.get(room)!
    t.equal(new Set(acked).size, acked.length, `run ${run}: ${room}: no acknowledged message has another's id (none doubled)`)
  }
  for (const [name, server] of [['A', a], ['B', b]] as const) {
    t.same(
      [await metric(server.base, 'chat_reader_repeats_total'), await metric(server.base, 'chat_reader_gaps_total')],
      [0, 0],
      `run ${run}: process ${name} never had to stop a repeat or a gap (chat_reader_repeats_total, chat_reader_gaps_total)`,
    )
  }
  for (const server of [a, b]) {
    server.child.kill('SIGTERM')
    await once(server.child, 'exit')
  }
}

t.test('readers of several rooms on two processes, Redis killed and started empty, a process killed: every room once and in order', { skip: skipUnless(withPostgres && haveRedis, 'PostgreSQL or redis-server is missing') }, async (t) => {
  for (let run = 1; run <= RUNS; run++) await t.test(`run ${run} of ${RUNS}`, (t) => roomsFaultRun(t, run))
})
