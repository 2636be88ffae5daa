// Many rooms (issue 23): R rooms, each with its own readers on its own socket
// (/websocket/rooms/:room/socket), one message per room per second from one of them. CPU per
// delivery and send-to-delivery latency, to set beside the one-room scenarios. Every loop here
// is bounded in count and time.
import { performance } from 'node:perf_hooks'
import { WebSocket } from 'ws'
import { paced, scanning, warmThenMeasure, type Client, type Result, type Run, type Target } from './loadgen.js'

export interface RoomsScenario {
  name: string
  rooms: number
  /** Readers per room (the first also sends, the first two measure latency). */
  readers: number
  /** Messages per room per second. */
  rate: number
  seconds: number
}

/** Creates `count` public rooms through POST /rooms (ten at a time), as `cookie`; returns their names. */
export async function createRooms(base: string, cookie: string, count: number, prefix: string): Promise<string[]> {
  const names = Array.from({ length: count }, (_, i) => `${prefix}${i}`)
  for (let i = 0; i < names.length; i += 10) {
    await Promise.all(
      names.slice(i, i + 10).map(async (name) => {
        const res = await fetch(`${base}/rooms`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ name }) })
        if (res.status !== 201) throw new Error(`creating room ${name}: ${res.status} ${await res.text()}`)
      }),
    )
  }
  return names
}

interface RoomClients {
  sender: Client
  all: Client[]
}

/**
 * Opens every room's readers, 100 sockets at a time: in each room the first is a ws client that
 * sends and times its own echoes, the second a ws client that times what it gets, the rest
 * count the run's messages in raw bytes (the load generator must not be the bottleneck).
 */
async function openRooms(target: Target, names: string[], readers: number, cookies: string[], run: Run): Promise<{ rooms: RoomClients[]; connectMs: number }> {
  const needle = Buffer.from(`"text":"${run.tag}:`)
  const ws = target.base.replace(/^http/, 'ws')
  const origin = target.base
  const slots = names.flatMap((name, room) => Array.from({ length: readers }, (_, reader) => ({ name, room, reader })))
  const opened: Client[] = []
  const started = performance.now()
  for (let i = 0; i < slots.length; i += 100) {
    const batch = slots.slice(i, i + 100).map(({ name, room, reader }, k) => {
      const url = `${ws}/websocket/rooms/${name}/socket`
      const headers = { cookie: cookies[(i + k) % cookies.length]!, origin }
      if (reader >= 2) return scanning(url, headers, undefined, needle, room)
      const socket = new WebSocket(url, { headers, perMessageDeflate: false })
      const client: Client = { ws: socket, received: 0, probe: true, index: room }
      socket.on('message', (data: Buffer) => {
        const now = performance.now()
        for (let at = data.indexOf(needle); at !== -1; at = data.indexOf(needle, at + needle.length)) {
          const start = at + needle.length
          const sentAt = data.toString('latin1', start, data.indexOf(34, start)).split(':')[1]
          client.received++
          run.latencies.push(now - Number(sentAt))
        }
      })
      return new Promise<Client>((resolve, reject) => {
        socket.once('open', () => resolve(client))
        socket.once('error', reject)
      })
    })
    opened.push(...(await Promise.all(batch)))
  }
  const rooms = names.map((_, room) => {
    const all = opened.slice(room * readers, (room + 1) * readers)
    return { sender: all[0]!, all }
  })
  return { rooms, connectMs: performance.now() - started }
}

/** "TAG:ROOM:SENT_AT", as the one-room scenarios' messages (the sender's own echo counts as one of its room's deliveries). */
function send(client: Client, tag: string): void {
  client.ws!.send(JSON.stringify({ text: `${tag}:${client.index}:${performance.now()}` }))
}

/** Every room sends `rate` messages a second (spread evenly over the second, rooms in turn). */
function everyRoom(rooms: RoomClients[], rate: number, tag: string, onSend: () => void = () => {}): () => void {
  let next = 0
  return paced(rooms.length * rate, () => {
    send(rooms[next++ % rooms.length]!.sender, tag)
    onSend()
  })
}

/** R rooms × K readers, one sender per room at a fixed rate: latency, throughput, loss, CPU per delivery. */
export async function manyRoomsScenario(target: Target, cookies: string[], names: string[], s: RoomsScenario, tag: string): Promise<Result> {
  const run: Run = { tag, latencies: [] }
  const { rooms, connectMs } = await openRooms(target, names, s.readers, cookies, run)
  const clients = rooms.flatMap((r) => r.all)
  const result = await warmThenMeasure(target, clients, run, (runTag: string, onSend?: () => void) => everyRoom(rooms, s.rate, runTag, onSend), { scenario: s.name, connectMs, seconds: s.seconds, readers: s.readers })
  return result
}
