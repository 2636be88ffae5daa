import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { LocalBus } from '../app/chatroom/bus/local.js'
import { Chatroom } from '../app/chatroom/chatroom.js'
import type { Event } from '../app/chatroom/event.js'
import { memberKey } from '../app/chatroom/presence.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import type { RoomLog } from '../app/chatroom/store/store.js'
import { buildTestApp, signIn } from './helpers.js'

// Issue 23 item 6: a room costs nothing while idle. It is loaded on first use and unloaded
// (never the lobby) once nobody reads it, nobody is present and nothing happened in it for
// ROOM_IDLE; its next use loads it again from its log, nothing lost.

/** The local bus, telling which rooms it was asked to watch and unwatch. */
class SpyBus extends LocalBus {
  readonly watched: string[] = []
  readonly unwatched: string[] = []
  override watch(room: string): void {
    this.watched.push(room)
  }
  override unwatch(room: string): void {
    this.unwatched.push(room)
  }
}

const IDLE_MS = 40

async function registry(t: { teardown(fn: () => unknown): void }, store = new MemoryStore(), idleMs = IDLE_MS) {
  const bus = new SpyBus()
  const chatroom = new Chatroom(store, bus, { archiveSize: 10, subscriberQueue: 100, idleMs, presence: { graceMs: 20, ttlMs: 1000, leaseMs: { longpolling: 60 } } })
  await chatroom.start()
  t.teardown(() => chatroom.close())
  return { chatroom, bus, store }
}

/** Waits (bounded) until `done` holds. */
async function until(done: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await sleep(10)
  }
}

t.test('a room used then left idle is unloaded after ROOM_IDLE; its next use loads it again, ids going on, epoch unchanged', async (t) => {
  const { chatroom, bus } = await registry(t)
  const ann = { id: 'ann-id', name: 'ann' }
  const dev = await chatroom.room('dev')
  t.same(bus.watched, ['lobby', '~people', 'dev'], 'loaded: its events are watched (beside the lobby and the people channel)')
  const entered = await dev.enter(ann, 'websocket')
  if (!entered.ok) throw new Error('refused')
  t.equal((await dev.say(ann, 'hello dev')).outcome, 'ok')
  const epoch = dev.epoch
  entered.subscription.cancel()
  await dev.leave(ann)
  t.equal(dev.lastId, 1, 'the message alone: coming and going writes no line outside the lobby')
  t.equal(chatroom.loadedRooms, 2, 'still loaded right after')

  await until(() => chatroom.loadedRooms === 1, 'the idle room is unloaded')
  t.same(bus.unwatched, ['dev'], 'its events are no longer watched')

  const again = await chatroom.room('dev')
  t.not(again, dev, 'loaded anew')
  t.same(bus.watched, ['lobby', '~people', 'dev', 'dev'], 'and watched again')
  t.equal(again.epoch, epoch, 'the same log: its epoch unchanged')
  t.equal(again.lastId, 1, 'nothing lost')
  t.same(
    again.archive().map((s) => `${s.event.id}:${s.event.type}`),
    ['1:message'],
    'its window read back from the store',
  )
  t.equal((await again.post('bob', 'back')).event.id, 2, 'ids go on')
  t.equal(chatroom.lobby, await chatroom.room('lobby'), 'the lobby stays')
})

t.test('a room someone reads or is present in is never unloaded; once they go and it is quiet, it is', async (t) => {
  const { chatroom, bus } = await registry(t)
  const ann = { id: 'ann-id', name: 'ann' }
  const dev = await chatroom.room('dev')
  const entered = await dev.enter(ann, 'websocket')
  if (!entered.ok) throw new Error('refused')
  await sleep(IDLE_MS * 6)
  t.equal(chatroom.loadedRooms, 2, 'a reader keeps it loaded')
  t.equal(await chatroom.room('dev'), dev, 'the same room')

  // The reader goes; a long poller's lease (60 ms) then the grace (20 ms) keep ann present a while.
  entered.subscription.cancel()
  await dev.renew(ann, 'longpolling')
  t.ok(dev.presence.holds(ann))
  let loaded = true
  await until(() => {
    const holds = dev.presence.holds(ann)
    if (holds) loaded &&= chatroom.loadedRooms === 2
    return !holds
  }, 'ann leaves')
  t.ok(loaded, 'someone present (a lease, then the grace) keeps it loaded')
  await until(() => chatroom.loadedRooms === 1, 'then the room is unloaded')
  t.same(bus.unwatched, ['dev'])
  t.same(
    (await chatroom.room('dev')).archive().map((s) => `${s.event.type}:${s.event.user}`),
    [],
    'and her coming and going wrote no line (outside the lobby, the lines are membership)',
  )
})

t.test('a reference kept past the unloading takes no readers and no writes; the name is only ever one Room', async (t) => {
  const { chatroom } = await registry(t)
  const ann = { id: 'ann-id', name: 'ann' }
  const stale = await chatroom.room('dev')
  await stale.post('bob', 'one')
  await until(() => chatroom.loadedRooms === 1, 'unloaded')

  const [a, b] = await Promise.all([chatroom.room('dev'), chatroom.room('dev')])
  // Read, so it stays loaded however slowly this test runs.
  const reader = a.subscribe()
  t.teardown(() => reader.cancel())
  t.equal(a, b, 'two uses at once load one Room')
  t.not(a, stale)
  const refused = await stale.enter(ann, 'websocket')
  t.match(refused, { ok: false, refused: 'unavailable' }, 'the old one sends its reader back (it retries and gets the room loaded now)')
  t.match(await stale.say(ann, 'lost?'), { outcome: 'unavailable' }, 'and takes no message')
  await stale.renew(ann, 'longpolling')
  t.notOk(stale.presence.holds(ann), 'nor anyone present')
  t.equal((await a.say(ann, 'two')).outcome, 'ok')
  t.same(
    a.archive().map((s) => s.event.text ?? s.event.type),
    ['one', 'two'],
    'the room loaded now has everything, once',
  )
})

t.test('a room still loading is not unloaded under the request that loads it', async (t) => {
  // A store whose room logs answer slowly (a remote database), so the load spans several idle checks.
  class SlowStore extends MemoryStore {
    override async log(room: string): Promise<RoomLog> {
      const log = await super.log(room)
      if (room === 'lobby') return log
      return {
        room: log.room,
        epoch: log.epoch,
        append: (drafts) => log.append(drafts),
        after: async (after, limit) => {
          await sleep(IDLE_MS * 4)
          return log.after(after, limit)
        },
        before: (before, limit) => log.before(before, limit),
        lastId: () => log.lastId(),
        prune: (maxEvents, maxAgeMs) => log.prune(maxEvents, maxAgeMs),
        thread: (root, after, limit) => log.thread(root, after, limit),
        message: (id) => log.message(id),
      }
    }
  }
  const { chatroom, bus } = await registry(t, new SlowStore())
  const loading = chatroom.room('slow')
  await sleep(IDLE_MS * 2)
  const second = chatroom.room('slow')
  const [room, again] = await Promise.all([loading, second])
  t.equal(room, again, 'one Room for the name')
  t.equal(await chatroom.room('slow'), room, 'and it is the one the registry holds')
  t.same(bus.unwatched, [], 'not unloaded while loading')
  t.equal((await room.post('ann', 'hi')).event.id, 1)
  await until(() => chatroom.loadedRooms === 1, 'unloaded once idle')
})

t.test('ROOM_IDLE 0 never unloads', async (t) => {
  const { chatroom } = await registry(t, new MemoryStore(), 0)
  await chatroom.room('dev')
  await sleep(IDLE_MS * 3)
  t.equal(chatroom.loadedRooms, 2)
})

/** Live intervals and timeouts of this process, counted by wrapping the global timer functions. */
function countTimers(t: { teardown(fn: () => unknown): void }): () => number {
  const live = new Set<unknown>()
  const { setInterval: si, clearInterval: ci, setTimeout: st, clearTimeout: ct } = globalThis
  const wrapped = {
    setInterval: (...args: Parameters<typeof si>) => {
      const timer = si(...args)
      live.add(timer)
      return timer
    },
    clearInterval: (timer?: Parameters<typeof ci>[0]) => {
      live.delete(timer)
      ci(timer)
    },
    setTimeout: (callback: (...args: unknown[]) => void, ms?: number, ...rest: unknown[]) => {
      const timer = st((...a: unknown[]) => {
        live.delete(timer)
        callback(...a)
      }, ms, ...rest)
      live.add(timer)
      return timer
    },
    clearTimeout: (timer?: Parameters<typeof ct>[0]) => {
      live.delete(timer)
      ct(timer)
    },
  }
  Object.assign(globalThis, wrapped)
  t.teardown(() => Object.assign(globalThis, { setInterval: si, clearInterval: ci, setTimeout: st, clearTimeout: ct }))
  return () => live.size
}

t.test('10,000 rooms, each used once then idle, leave no Room and no timer behind', async (t) => {
  const timers = countTimers(t)
  const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  // Unloaded below by the registry's own check, called at once (the timer calls it every idleMs / 2), whatever the machine's load.
  const { chatroom, bus } = await registry(t, new MemoryStore(), 60_000)
  const baseline = { timers: timers(), active: activeTimeouts() }
  const N = 10_000
  const refs: WeakRef<object>[] = []
  const started = performance.now()
  for (let from = 0; from < N; from += 1000) {
    await Promise.all(
      Array.from({ length: 1000 }, async (_, i) => {
        const name = `r${from + i}`
        const room = await chatroom.room(name)
        refs.push(new WeakRef(room))
        // One in ten is read by someone who comes and goes (their presence had a sweep timer); the rest get a message.
        if (i % 10 !== 0) return void (await room.post('bob', 'hello'))
        const member = { id: `${name}-ann`, name: `${name}-ann` }
        const entered = await room.enter(member, 'websocket')
        if (!entered.ok) throw new Error(`${name}: refused`)
        await room.say(member, 'hello')
        entered.subscription.cancel()
        await room.leave(member)
      }),
    )
  }
  t.comment(`10,000 rooms used in ${Math.round(performance.now() - started)} ms`)
  t.equal(chatroom.loadedRooms, N + 1, 'all loaded, and all idle now')
  // The people's presence sweeps once for everyone (not per room) until those who just left are gone.
  await until(() => chatroom.people.size === 0, 'the people who came and went are gone')
  t.equal(timers(), baseline.timers, 'no timer for a loaded room nobody is in')
  t.equal(activeTimeouts(), baseline.active, 'nor one that keeps the process up')
  t.equal(chatroom.unloadIdle(60_000), 0, 'none has been idle for ROOM_IDLE yet')
  t.equal(chatroom.unloadIdle(0), N, 'every room is idle: all unloaded')
  t.equal(chatroom.loadedRooms, 1, 'the lobby stays')
  t.equal(bus.unwatched.length, N, 'each unwatched once')
  t.equal(timers(), baseline.timers, 'no timer left behind')
  t.equal(activeTimeouts(), baseline.active)

  // Nothing holds on to an unloaded room: they are collected.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  for (let i = 0; i < 3 && refs.some((r) => r.deref()); i++) {
    await sleep(10)
    gc()
  }
  t.equal(refs.filter((r) => r.deref()).length, 0, 'no Room object is left')

  t.same((await chatroom.room('r1230')).archive().map((s) => `${s.event.type} ${s.event.text}`), ['message hello'], 'any of them loads again as it was (coming and going wrote no line)')
  t.same((await chatroom.room('r1234')).archive().map((s) => s.event.type), ['message'])
})

t.test('ROOM_IDLE in the app: a room is unloaded once quiet and answers as before', async (t) => {
  const app = await buildTestApp(t, { ROOM_IDLE: '0.05', LONGPOLL_TIMEOUT: '0.1', PRESENCE_LEASE_FACTOR: '1' })
  const ann = await signIn(app, 'ann')
  const made = await app.inject({ method: 'POST', url: '/rooms', payload: { name: 'dev' }, headers: { cookie: ann } })
  t.equal(made.statusCode, 201)
  const said = await app.inject({ method: 'POST', url: '/longpolling/rooms/dev/messages', payload: { message: 'hello dev' }, headers: { cookie: ann } })
  t.equal(said.statusCode, 201)
  const read = await app.inject({ url: '/longpolling/rooms/dev/messages?lastReceived=0', headers: { cookie: ann } })
  const first = read.json() as Event[]
  const epoch = read.headers['x-room-epoch']
  t.ok(epoch)
  await until(() => app.chatroom.loadedRooms === 1, 'dev is unloaded once ann is gone and it is quiet')

  const said2 = await app.inject({ method: 'POST', url: '/longpolling/rooms/dev/messages', payload: { message: 'still here' }, headers: { cookie: ann } })
  t.equal(said2.statusCode, 201)
  const poll = await app.inject({ url: `/longpolling/rooms/dev/messages?lastReceived=${first.at(-1)!.id}`, headers: { cookie: ann } })
  t.equal(poll.headers['x-room-epoch'], epoch, 'the same epoch')
  const events = poll.json() as Event[]
  t.equal(events[0]?.id, first.at(-1)!.id + 1, 'the ids go on')
  t.ok(events.some((e) => e.text === 'still here'))
})

t.test('rooms start with nothing of their own and share nothing: a mute, a ban, a typist, a reader in one room are not in another', async (t) => {
  const { chatroom, store } = await registry(t, new MemoryStore(), 0)
  const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((name) => chatroom.room(name)))
  const mod = { id: 'mod-id', name: 'mod' }
  const ann = { id: 'ann-id', name: 'ann' }
  const bob = { id: 'bob-id', name: 'bob' }
  const carl = { id: 'carl-id', name: 'carl' }
  // As the registry moderates: the store records it, then the room's log says it.
  const now = Date.now()
  await store.rooms.restrict('a', { person: memberKey(bob), name: 'bob', kind: 'mute', until: undefined, by: 'mod', reason: 'shouting', at: now })
  await a!.moderation(mod, 'mute', 'bob', 'shouting')
  await store.rooms.restrict('b', { person: memberKey(carl), name: 'carl', kind: 'ban', until: undefined, by: 'mod', reason: 'spam', at: now })
  await b!.moderation(mod, 'ban', 'carl', 'spam')
  t.equal((await a!.say(bob, 'hi')).outcome, 'forbidden', 'muted in a')
  t.equal((await b!.say(bob, 'hi')).outcome, 'ok', 'not in b')
  t.equal((await c!.say(bob, 'hi')).outcome, 'ok', 'nor in c')
  t.match(await b!.enter(carl, 'websocket'), { ok: false, refused: 'banned' }, 'banned from b')
  const inC = await c!.enter(carl, 'websocket')
  t.ok(inC.ok, 'not from c')
  if (inC.ok) inC.subscription.cancel()

  // A reader of a hears a, not b; a typist in a types in a alone.
  const reader = await a!.enter(ann, 'websocket', { typing: true, lastReceived: a!.lastId })
  if (!reader.ok) throw new Error('refused')
  const other = c!.subscribe(c!.lastId)
  a!.typing(carl)
  await b!.say(ann, 'in b')
  await a!.say(ann, 'in a')
  await until(() => reader.subscription.size > 0, 'a reader of a hears a')
  t.same(reader.subscription.take().map((s) => s.event.text), ['in a'])
  t.same(other.take(), [], 'a reader of c hears nothing of a or b')
  t.same(a!.typingNow(), ['carl'], 'carl types in a')
  t.same(b!.typingNow(), [], 'not in b')
  reader.subscription.cancel()
  other.cancel()
  await a!.leave(ann)
  t.equal(a!.subscriberCount + b!.subscriberCount + c!.subscriberCount, 0, 'every reader gone')
  // A room whose readers went gives back what held them; a new reader of it is one of its own.
  const again = a!.subscribe(a!.lastId)
  await a!.say(ann, 'once more')
  t.same(again.take().map((s) => s.event.text), ['once more'])
  t.equal(c!.subscriberCount, 0, 'c has none of them')
  again.cancel()
})

t.test('the empty collections rooms start with are shared and never written: a write takes one of its own', async (t) => {
  const { noMap, noSet, owned, shrunk } = await import('../app/chatroom/empty.js')
  const shared = noMap<string, number>()
  t.equal(noMap(), shared, 'one shared map')
  t.throws(() => shared.set('x', 1), /shared empty map was written to/, 'writing to it throws, never leaks into another room')
  t.throws(() => noSet<string>().add('x'), /shared empty set was written to/)
  const mine = owned(shared)
  t.not(mine, shared, 'a write takes a map of its own')
  mine.set('x', 1)
  t.equal(shared.size, 0)
  t.equal(owned(mine), mine, 'a map of its own stays')
  mine.delete('x')
  t.equal(shrunk(mine), shared, 'emptied: the shared one back')
  t.equal(shrunk(owned(noSet<string>())), noSet(), 'a set the same')
})
