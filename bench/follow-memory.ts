// What a person's stream costs the server in memory (issue 30): P people, each a member of R
// rooms, first each on one room's socket (the lobby's, /websocket/room/socket), then each on one
// socket that follows all their rooms (/websocket/socket?follow=me). The server runs in this
// process so its heap can be measured after full collections; the sockets are opened by a child
// process (their own objects are not the server's). Prints one JSON line.
//   node dist/bench/follow-memory.js measure PEOPLE ROOMS
//   node dist/bench/follow-memory.js clients URL MODE ROOMS   (the child: cookies on stdin)
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { buildApp } from '../app/app.js'
import { loadConfig } from '../conf/config.js'
import { scanning, signInUsers, sleep, type Client } from './loadgen.js'
import { createRooms } from './rooms.js'

export interface FollowMemory {
  people: number
  rooms: number
  /** Heap in use per connection, after full collections: on one room's socket, and following every room of theirs. */
  oneRoomBytes: number
  followBytes: number
}

type Mode = 'one' | 'follow'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

async function heapUsed(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc()
    await sleep(50)
  }
  return process.memoryUsage().heapUsed
}

/** The child: opens one socket per cookie (read on stdin), says `ready` once every socket has all its rooms, then holds them until told to go. */
async function clients(url: string, mode: Mode, rooms: number): Promise<void> {
  let input = ''
  for await (const chunk of process.stdin) input += chunk
  const cookies = JSON.parse(input) as string[]
  const origin = url.replace(/^ws/, 'http').replace(/\/websocket\/.*$/, '')
  // The lobby, the person's rooms and their own events: each said subscribed once.
  const needle = Buffer.from(mode === 'follow' ? '"type":"subscribed"' : '"events"')
  const want = mode === 'follow' ? rooms + 2 : 0
  const open: Client[] = []
  for (let i = 0; i < cookies.length; i += 100) {
    open.push(...(await Promise.all(cookies.slice(i, i + 100).map((cookie, k) => scanning(url, { cookie, origin }, undefined, needle, i + k)))))
  }
  const deadline = Date.now() + 60_000
  while (open.some((c) => c.received < want) && Date.now() < deadline) await sleep(100)
  process.send?.({ ready: open.filter((c) => c.received >= want).length })
  process.on('message', () => {
    for (const c of open) c.raw?.destroy()
    process.exit(0)
  })
}

/** Opens the sockets from a child process, measures the server's heap with them open, and closes them. */
async function heldBy(base: string, cookies: string[], mode: Mode, rooms: number): Promise<number> {
  const before = await heapUsed()
  const path = mode === 'follow' ? '/websocket/socket?follow=me' : '/websocket/room/socket'
  const child = fork(fileURLToPath(import.meta.url), ['clients', base.replace(/^http/, 'ws') + path, mode, String(rooms)], { stdio: ['pipe', 'inherit', 'inherit', 'ipc'] })
  child.stdin!.end(JSON.stringify(cookies))
  const ready = await new Promise<number>((resolve, reject) => {
    child.once('message', (m) => resolve((m as { ready: number }).ready))
    child.once('exit', (code) => reject(new Error(`the clients exited (${code})`)))
  })
  if (ready !== cookies.length) throw new Error(`${ready} of ${cookies.length} sockets had all their rooms`)
  await sleep(500)
  const after = await heapUsed()
  child.send('go')
  await new Promise((resolve) => child.once('exit', resolve))
  await sleep(1000)
  return (after - before) / cookies.length
}

async function measure(people: number, rooms: number): Promise<FollowMemory> {
  const config = loadConfig({
    SESSION_SECRET: 'benchmark-secret-benchmark-secret-0000',
    LOG_LEVEL: 'silent',
    STORE: 'memory',
    SIGNIN_RATE_LIMIT: '100000',
    MAX_CONNECTIONS_PER_IP: '0',
    SESSIONS_PER_ADDRESS: '0',
    MAX_SOCKETS_PER_USER: '10000',
    MAX_EVENT_LOOP_DELAY: '0',
    PRESENCE_CHURN: '10000',
    ROOMS_PER_CREATOR: '100000',
    PING_INTERVAL: '600',
    PONG_TIMEOUT: '1200',
  })
  const app = await buildApp(config, { logger: false })
  await app.listen({ host: '127.0.0.1', port: 0 })
  try {
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const [admin] = await signInUsers(base, 1, 'fmadmin')
    const names = await createRooms(base, admin!, rooms, 'fm')
    const cookies = await signInUsers(base, people, 'fm')
    for (const cookie of cookies) {
      await Promise.all(
        names.map(async (room) => {
          const res = await app.inject({ method: 'POST', url: `/rooms/${room}/join`, headers: { cookie, origin: base, host: new URL(base).host }, payload: {} })
          if (res.statusCode !== 200) throw new Error(`joining ${room}: ${res.statusCode}`)
        }),
      )
    }
    const oneRoomBytes = await heldBy(base, cookies, 'one', rooms)
    const followBytes = await heldBy(base, cookies, 'follow', rooms)
    return { people, rooms, oneRoomBytes, followBytes }
  } finally {
    await app.close()
  }
}

const [mode, a, b, c] = process.argv.slice(2)
if (mode === 'measure') console.log(JSON.stringify(await measure(Number(a ?? 500), Number(b ?? 50))))
else if (mode === 'clients' && a && (b === 'one' || b === 'follow')) await clients(a, b, Number(c ?? 0))
else {
  console.error('usage: follow-memory.js measure PEOPLE ROOMS | clients URL MODE ROOMS')
  process.exit(2)
}
