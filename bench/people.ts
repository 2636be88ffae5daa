// People in many rooms (the person's stream, issue 30): P people, each a member of 50 rooms (some
// busy, most quiet) and the lobby, each on ONE socket that follows all of them
// (/websocket/socket?follow=me). Every busy room gets one message a second. CPU per delivery,
// send-to-delivery latency and memory per connection, to set beside one room of the same
// readers. Every loop here is bounded in count and time.
import { performance } from 'node:perf_hooks'
import { WebSocket } from 'ws'
import { paced, rssOf, scanning, sleep, warmThenMeasure, type Client, type Result, type Run, type Target } from './loadgen.js'
import { createRooms } from './rooms.js'

export interface PeopleScenario {
  name: string
  people: number
  /** Busy rooms (one message a second each) and the busy rooms each person is in. */
  busy: number
  busyPer: number
  /** Quiet rooms and the quiet rooms each person is in. */
  quiet: number
  quietPer: number
  seconds: number
}

/** The rooms of person `i`: busy and quiet, spread evenly (every busy room has people × busyPer / busy members). */
function roomsOf(s: PeopleScenario, i: number): { busy: number[]; quiet: number[] } {
  return {
    busy: Array.from({ length: s.busyPer }, (_, k) => (i + k) % s.busy),
    quiet: Array.from({ length: s.quietPer }, (_, k) => (i + k) % s.quiet),
  }
}

/** Joins every person to their rooms (POST /rooms/NAME/join), 100 at a time. */
async function joinAll(base: string, cookies: string[], s: PeopleScenario, busyNames: string[], quietNames: string[]): Promise<void> {
  const joins = cookies.flatMap((cookie, i) => {
    const { busy, quiet } = roomsOf(s, i)
    return [...busy.map((k) => busyNames[k]!), ...quiet.map((k) => quietNames[k]!)].map((room) => ({ cookie, room }))
  })
  for (let i = 0; i < joins.length; i += 100) {
    await Promise.all(
      joins.slice(i, i + 100).map(async ({ cookie, room }) => {
        const res = await fetch(`${base}/rooms/${room}/join`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', origin: base }, body: '{}' })
        if (res.status !== 200) throw new Error(`joining ${room}: ${res.status} ${await res.text()}`)
      }),
    )
  }
}

/**
 * Opens one follow=me socket per person, 100 at a time: the first `busy` people (person j is in
 * busy room j) are ws clients that send into their room and time their own echoes; the rest count
 * the run's messages in raw bytes.
 */
async function openPeople(target: Target, cookies: string[], s: PeopleScenario, run: Run): Promise<{ clients: Client[]; connectMs: number }> {
  const needle = Buffer.from(`"text":"${run.tag}:`)
  // With several processes (peers), person j's socket goes to process j mod their number.
  const all = [target, ...(target.peers ?? [])]
  const clients: Client[] = []
  const started = performance.now()
  for (let i = 0; i < cookies.length; i += 100) {
    const batch = cookies.slice(i, i + 100).map((cookie, k) => {
      const person = i + k
      const origin = all[person % all.length]!.base
      const url = `${origin.replace(/^http/, 'ws')}/websocket/socket?follow=me`
      const headers = { cookie, origin }
      if (person >= s.busy) return scanning(url, headers, undefined, needle, person)
      const socket = new WebSocket(url, { headers, perMessageDeflate: false })
      const client: Client = { ws: socket, received: 0, probe: true, index: person }
      socket.on('message', (data: Buffer) => {
        const now = performance.now()
        for (let at = data.indexOf(needle); at !== -1; at = data.indexOf(needle, at + needle.length)) {
          const start = at + needle.length
          const [room, sentAt] = data.toString('latin1', start, data.indexOf(34, start)).split(':')
          client.received++
          // Its own echoes time the run (a message's send and its delivery on the same machine clock).
          if (Number(room) === person) run.latencies.push(now - Number(sentAt))
        }
      })
      return new Promise<Client>((resolve, reject) => {
        socket.once('open', () => resolve(client))
        socket.once('error', reject)
      })
    })
    clients.push(...(await Promise.all(batch)))
  }
  // Each socket subscribes its rooms after its hello: a moment for all of them.
  await sleep(Math.min(5000, 500 + cookies.length))
  return { clients, connectMs: performance.now() - started }
}

/** P people on one socket each, in 50 rooms; one message a second in every busy room. */
export async function peopleScenario(target: Target, cookies: string[], adminCookie: string, s: PeopleScenario, tag: string): Promise<Result & { bytesPerConnection: number }> {
  const busyNames = await createRooms(target.base, adminCookie, s.busy, `${tag}b`)
  const quietNames = await createRooms(target.base, adminCookie, s.quiet, `${tag}q`)
  await joinAll(target.base, cookies, s, busyNames, quietNames)
  const run: Run = { tag, latencies: [] }
  const rssBefore = rssOf(target)
  const { clients, connectMs } = await openPeople(target, cookies, s, run)
  const bytesPerConnection = (rssOf(target) - rssBefore) / clients.length
  const senders = clients.slice(0, s.busy)
  const send = (sender: Client, runTag: string) => {
    const room = busyNames[sender.index]!
    sender.ws!.send(JSON.stringify({ type: 'say', room, text: `${runTag}:${sender.index}:${performance.now()}` }))
  }
  const everyBusyRoom = (runTag: string, onSend: () => void = () => {}) => {
    let next = 0
    return paced(s.busy, () => {
      send(senders[next++ % senders.length]!, runTag)
      onSend()
    })
  }
  // Each message reaches the members of its room: people × busyPer / busy of them.
  const readers = (s.people * s.busyPer) / s.busy
  const result = await warmThenMeasure(target, clients, run, everyBusyRoom, { scenario: s.name, connectMs, seconds: s.seconds, readers })
  return { ...result, bytesPerConnection }
}
