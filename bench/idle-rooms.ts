// What idle rooms cost in memory (issue 23 item 6), with the default store (SQLite):
//   node dist/bench/idle-rooms.js populate DIR N   N rooms in DIR's store, three messages each
//   node dist/bench/idle-rooms.js measure DIR      a chatroom on DIR: its memory with none of the
//                                                   rooms loaded, with all loaded and nobody in
//                                                   them, and after unloading them again
// `measure` prints one JSON line: RSS and heap in use (after full collections) at each step.
// bench/run.ts runs both, each in a process of its own, and `measure` on an empty store too.
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { LocalBus } from '../app/chatroom/bus/local.js'
import { Chatroom } from '../app/chatroom/chatroom.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import { LOBBY } from '../app/chatroom/store/store.js'

export interface Memory {
  rss: number
  heap: number
}

export interface IdleRoomsMeasure {
  rooms: number
  /** The lobby loaded, the other rooms only in the store. */
  none: Memory
  /** Every room loaded (its window read, its events watched), nobody in any. */
  loaded: Memory
  /** The same rooms unloaded again (what stays is the store's). */
  unloaded: Memory
  loadMs: number
}

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

async function memory(): Promise<Memory> {
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const { rss, heapUsed } = process.memoryUsage()
  return { rss, heap: heapUsed }
}

async function populate(dir: string, n: number): Promise<void> {
  const store = new SqliteStore(dir)
  await store.open()
  for (let i = 0; i < n; i++) {
    const name = `idle${i}`
    await store.rooms.create({ name, skeleton: name, title: name, topic: '', visibility: 'public', createdBy: 'bench', createdAt: Date.now() })
    await (await store.log(name)).append([
      { type: 'message', user: 'ann', text: `hello ${name}` },
      { type: 'message', user: 'bob', text: 'hi ann, how are things?' },
      { type: 'message', user: 'ann', text: 'quiet, as you can see' },
    ])
  }
  await store.close()
}

async function measure(dir: string): Promise<IdleRoomsMeasure> {
  const store = new SqliteStore(dir)
  // As the server's defaults (ARCHIVE_SIZE, SUBSCRIBER_QUEUE); no idle timer: the unloading is called below.
  const chatroom = new Chatroom(store, new LocalBus(), { archiveSize: 100, subscriberQueue: 256, idleMs: 0 })
  await chatroom.start()
  const names = (await store.logs()).filter((name) => name !== LOBBY)
  const none = await memory()
  const started = performance.now()
  for (let i = 0; i < names.length; i += 500) await Promise.all(names.slice(i, i + 500).map((name) => chatroom.room(name)))
  const loadMs = performance.now() - started
  if (chatroom.loadedRooms !== names.length + 1) throw new Error(`${chatroom.loadedRooms - 1} of ${names.length} rooms loaded`)
  const loaded = await memory()
  if (chatroom.unloadIdle(0) !== names.length) throw new Error('not every room was unloaded')
  const unloaded = await memory()
  await chatroom.close()
  return { rooms: names.length, none, loaded, unloaded, loadMs }
}

const [mode, dir, n] = process.argv.slice(2)
if (mode === 'populate' && dir) await populate(dir, Number(n ?? 10_000))
else if (mode === 'measure' && dir) console.log(JSON.stringify(await measure(dir)))
else {
  console.error('usage: idle-rooms.js populate DIR N | measure DIR')
  process.exit(2)
}
