import { setImmediate as tick } from 'node:timers/promises'
import t from 'tap'
import type { Bus, BusListener } from '../app/chatroom/bus/bus.js'
import { LocalBus, LocalPresenceStore } from '../app/chatroom/bus/local.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { MemoryFloodGuard } from '../app/chatroom/flood.js'
import { MemoryNameClaims } from '../app/chatroom/names.js'
import { Chatroom } from '../app/chatroom/chatroom.js'
import { eventSchema, frameOf, jsonArray, type StoredEvent } from '../app/chatroom/event.js'
import { Subscription } from '../app/chatroom/subscription.js'

async function room(archiveSize = 100, subscriberQueue = 256): Promise<Chatroom> {
  const chatroom = new Chatroom(new MemoryStore(), new LocalBus(), { archiveSize, subscriberQueue })
  await chatroom.start()
  return chatroom
}

const ids = (events: StoredEvent[]) => events.map((s) => s.event.id)
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** Reads until the event with id `until` arrives (or the subscription ends). */
async function readUntil(subscription: Subscription, until: number): Promise<number[]> {
  const seen: number[] = []
  for await (const stored of subscription) {
    seen.push(stored.event.id)
    if (stored.event.id >= until) break
  }
  return seen
}

t.test('events get consecutive ids from 1, in publish order, valid per the schema', async (t) => {
  const r = await room()
  await r.join('ann')
  await r.post('ann', 'hello')
  await r.post('bob', 'hi ann')
  await r.left('ann')
  const archive = r.archive()
  t.same(ids(archive), [1, 2, 3, 4])
  t.same(
    archive.map((s) => [s.event.type, s.event.user, s.event.text]),
    [
      ['join', 'ann', undefined],
      ['message', 'ann', 'hello'],
      ['message', 'bob', 'hi ann'],
      ['leave', 'ann', undefined],
    ],
  )
  for (const stored of archive) {
    t.ok(eventSchema.safeParse(stored.event).success, `event ${stored.event.id} matches the schema`)
    t.equal(stored.json, JSON.stringify(stored.event), 'the stored JSON is the event')
  }
  t.equal(r.lastId, 4)
})

t.test('the archive keeps only the newest ARCHIVE_SIZE events', async (t) => {
  const r = await room(10)
  for (let i = 1; i <= 25; i++) await r.post('ann', `m${i}`)
  t.same(ids(r.archive()), range(16, 25))
  t.equal(r.archive().at(-1)?.event.text, 'm25')
})

t.test('subscribe with a cursor inside, before and after the archive', async (t) => {
  const r = await room(10)
  for (let i = 1; i <= 25; i++) await r.post('ann', `m${i}`)

  const inside = r.subscribe(20)
  t.same(ids(inside.take()), range(21, 25), 'inside: exactly what follows the cursor')

  const before = r.subscribe(3)
  const got = before.take()
  t.same(ids(got), range(16, 25), 'before: the whole archive')
  t.equal(got[0]!.event.id - 3 - 1, 12, 'the first id tells the client it missed 12 events')

  const fresh = r.subscribe()
  t.same(ids(fresh.take()), range(16, 25), 'no cursor: the whole archive')

  const after = r.subscribe(25)
  t.same(after.take(), [], 'after: nothing yet')
  await r.post('bob', 'live')
  t.same(ids(after.take()), [26], 'then the live event')
  t.same(ids(inside.take()), [26], 'every open subscription gets it')

  for (const s of [inside, before, fresh, after]) s.cancel()
  t.equal(r.subscriberCount, 0)
})

t.test('no event lost or doubled between archive and live while 1,000 are published', async (t) => {
  const TOTAL = 1000
  const r = await room(100, 2000)
  const readers: Promise<{ cursor: number | undefined; lastAt: number; seen: number[] }>[] = []

  const publisher = (async () => {
    for (let i = 0; i < TOTAL; i++) {
      // Not awaited one by one: publishes overlap subscribes in the same ticks.
      void r.post('pub', `n${i}`)
      if (i % 3 === 0) await tick()
    }
  })()
  const subscriber = (async () => {
    for (let k = 0; r.lastId < TOTAL && k < 10_000; k++) {
      const last = r.lastId
      // Cursors inside the archive, before it, and none at all.
      const cursor = k % 3 === 0 ? undefined : k % 3 === 1 ? Math.max(0, last - 5) : Math.max(0, last - 150)
      const lastAt = r.lastId
      const subscription = r.subscribe(cursor)
      readers.push(readUntil(subscription, TOTAL).then((seen) => ({ cursor, lastAt, seen })))
      await tick()
    }
  })()
  await Promise.all([publisher, subscriber])
  const results = await Promise.all(readers)
  t.ok(results.length > 50, `${results.length} subscriptions taken while publishing`)
  let bad = 0
  for (const { cursor, lastAt, seen } of results) {
    const first = seen[0]!
    // From where it started, a consecutive run to the end: no gap, no repeat.
    if (seen.join() !== range(first, TOTAL).join()) bad++
    // It started no later than the first event published after it subscribed...
    if (first > lastAt + 1) bad++
    // ...and nothing at or before its cursor.
    if (cursor !== undefined && first <= cursor) bad++
  }
  t.equal(bad, 0, 'every subscription saw a consecutive run from its start to the last event')
  t.equal(r.subscriberCount, 0, 'readers that stopped released their subscriptions')
})

t.test('a slow subscriber is dropped as lagged; a fast one gets everything', async (t) => {
  const r = await room(10, 16)
  const slow = r.subscribe()
  const fast = r.subscribe()
  const fastRead = readUntil(fast, 100)
  for (let i = 1; i <= 100; i++) {
    await r.post('ann', `m${i}`)
  }
  t.same(await fastRead, range(1, 100), 'the fast reader got all 100 in order')
  t.equal(slow.state, 'lagged')
  t.equal(r.subscriberCount, 0, 'the lagged one was released, the fast one let go')
  const rest = await slow.next()
  t.equal(rest.done, true, 'a lagged subscription ends for its reader')
})

t.test('a full archive handed to a newcomer does not count as lag', async (t) => {
  const r = await room(5, 2)
  for (let i = 0; i < 5; i++) await r.post('ann', `old ${i}`)
  const s = r.subscribe()
  await r.post('ann', 'live 1')
  await r.post('ann', 'live 2')
  t.equal(s.state, 'open', 'archive of 5 plus 2 live with a queue of 2')
  await r.post('ann', 'live 3')
  t.equal(s.state, 'lagged', 'the third unread live event is one too many')
})

t.test('publish never waits for a subscriber that does not read', async (t) => {
  const r = await room(10, 1000)
  const idle = r.subscribe()
  for (let i = 0; i < 500; i++) await r.post('ann', 'x')
  t.equal(idle.size, 500, 'all queued, none delivered, publish went on')
  idle.cancel()
})

t.test('every subscriber gets the same stored event: serialized once', async (t) => {
  const r = await room()
  const a = r.subscribe()
  const b = r.subscribe()
  const stored = await r.post('ann', 'same bytes')
  const [fromA] = a.take()
  const [fromB] = b.take()
  t.equal(fromA, stored)
  t.equal(fromB, stored, 'the very same object, with its JSON made once')
  t.equal(jsonArray([stored]), `[${stored.json}]`)
  t.equal(frameOf(fromA!), frameOf(fromB!), 'one Buffer for every reader')
  t.same(JSON.parse(frameOf(stored).toString()), [stored.event])
  t.same(JSON.parse(jsonArray([stored, stored])), [stored.event, stored.event])
})

t.test('cancel releases: 10,000 subscribe/cancel cycles leave no subscriber', async (t) => {
  const r = await room()
  await r.post('ann', 'something in the archive')
  for (let i = 0; i < 10_000; i++) {
    const s = r.subscribe(i % 2 ? 0 : undefined)
    s.cancel()
    s.cancel()
  }
  t.equal(r.subscriberCount, 0)
})

t.test('cancel and abort end a waiting reader', async (t) => {
  const r = await room()
  const s = r.subscribe()
  const waiting = s.next()
  s.cancel()
  t.same(await waiting, { value: undefined, done: true })
  t.equal(s.state, 'cancelled')

  const controller = new AbortController()
  const aborted = r.subscribe(undefined, { abort: controller.signal })
  t.equal(r.subscriberCount, 1)
  const read = readUntil(aborted, Infinity)
  controller.abort()
  t.same(await read, [], 'the for-await loop ends')
  t.equal(r.subscriberCount, 0)

  const pre = new AbortController()
  pre.abort()
  const never = r.subscribe(undefined, { abort: pre.signal })
  t.equal(never.closed, true, 'an already-aborted signal gives an ended subscription')
  t.equal(r.subscriberCount, 0)

  await r.post('ann', 'in the archive')
  const broken = r.subscribe()
  for await (const _ of broken) break
  t.equal(broken.state, 'cancelled')
  t.equal(r.subscriberCount, 0, 'breaking out of for-await cancels')
})

t.test('onReadable fires once per tick for whatever arrived, and take() drains in order', async (t) => {
  const r = await room()
  const s = r.subscribe()
  let calls = 0
  s.onReadable = () => calls++
  // Published in one tick: one commit, one delivery, one wake-up, as soon as it is committed.
  const posted = Promise.all([r.post('a', '1'), r.post('a', '2'), r.post('a', '3')])
  t.equal(calls, 0, 'not while the publisher is still running')
  await posted
  t.equal(calls, 1, 'one wake-up for three events, once committed')
  await tick()
  t.equal(calls, 1, 'and no second one for the same events')
  t.same(ids(s.take()), [1, 2, 3])
  await r.post('a', '4')
  await tick()
  t.equal(calls, 2)
  s.cancel()
  t.equal(calls, 2, 'not for the reader\'s own cancel')

  const closing = r.subscribe()
  let closeCalls = 0
  closing.onReadable = () => closeCalls++
  r.endSubscriptions()
  t.equal(closing.state, 'closed')
  t.equal(closeCalls, 1, 'but when the room closes it')

  const small = await room(2, 2)
  const lagging = small.subscribe()
  let lagCalls = 0
  lagging.onReadable = () => lagCalls++
  await Promise.all([small.post('a', 'x'), small.post('a', 'x'), small.post('a', 'x')])
  t.equal(lagging.state, 'lagged')
  t.equal(lagCalls, 1, 'and at once when it lags')
  await tick()
  t.equal(lagCalls, 1, 'a lagged reader is not woken for what it had queued')
  t.same(lagging.take(), [], 'a lagged reader gets nothing more')
})

t.test('an id that skips ahead is filled from the store before newer events go out', async (t) => {
  // A shared bus whose stream can skip events, as a real one does while reconnecting; another
  // process commits to the same store.
  const { room: r, bus, commitElsewhere } = sharedRoom(t)
  await r.start()
  const sub = r.subscribe()
  const stored = await commitElsewhere(...range(1, 6).map((i) => `m${i}`))
  bus().event(stored[0]!, 'lobby')
  bus().event(stored[3]!, 'lobby') // 2 and 3 were missed
  bus().event(stored[4]!, 'lobby') // arrives while the gap is being filled
  bus().event(stored[2]!, 'lobby') // a late duplicate
  await new Promise((resolve) => setImmediate(resolve))
  bus().event(stored[5]!, 'lobby')
  await new Promise((resolve) => setImmediate(resolve))
  t.same(ids(sub.take()), [1, 2, 3, 4, 5, 6], 'in order, nothing missed, nothing twice')
  t.same(ids(r.archive()), [1, 2, 3, 4, 5, 6])
})

/** A shared bus the test drives by hand (as a Redis that drops messages while it restarts), and a store whose reads it can hold. */
function sharedRoom(t: { teardown(fn: () => unknown): void }) {
  class HeldStore extends MemoryStore {
    /** While set, reads (after, lastId) finish, then wait for it to resolve before answering. */
    hold: Promise<void> | undefined
    override async after(after: number, limit: number): Promise<StoredEvent[]> {
      const events = await super.after(after, limit)
      await this.hold
      return events
    }
    override async lastId(): Promise<number> {
      const id = await super.lastId()
      await this.hold
      return id
    }
  }
  const store = new HeldStore()
  let listener: BusListener = { event: () => {}, signal: () => {}, revoked: () => {} }
  const bus: Bus = {
    shared: true,
    publish() {},
    signal() {},
    watch() {},
    unwatch() {},
    presenceStore: (room) => new LocalPresenceStore(room),
    floodGuard: (_scope, limit, windowMs) => new MemoryFloodGuard(limit, windowMs),
    names: new MemoryNameClaims(),
    revoke() {},
    async ready() {
      return true
    },
    listen(l) {
      listener = l
    },
    async close() {},
  }
  const room = new Chatroom(store, bus, { archiveSize: 100, subscriberQueue: 100, catchUpMs: 0 })
  t.teardown(() => room.close())
  /** Another process commits these; the bus brings none of them (yet). */
  const commitElsewhere = (...texts: string[]) => store.append(texts.map((text) => ({ type: 'message' as const, user: 'bob', text })))
  const holdReads = () => {
    let release!: () => void
    store.hold = new Promise((resolve) => (release = resolve))
    return () => {
      store.hold = undefined
      release()
    }
  }
  return { room, store, bus: () => listener, commitElsewhere, holdReads }
}

t.test('an event the bus brings while missed ones are read never jumps over events committed after that read began (the two-process skip)', async (t) => {
  const { room, bus, commitElsewhere, holdReads } = sharedRoom(t)
  await room.start()
  const reader = room.subscribe()
  const [one] = await commitElsewhere('m1')
  bus().event(one!, 'lobby')
  const [, three] = await commitElsewhere('m2', 'm3')
  const release = holdReads()
  bus().event(three!, 'lobby') // 2 was missed: the room reads 2..3 from the store, and that read is held
  await tick()
  // Meanwhile 4 and 5 are committed elsewhere and lost by the bus; 6 comes through.
  const [, , six] = await commitElsewhere('m4', 'm5', 'm6')
  bus().event(six!, 'lobby')
  release()
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(ids(reader.take()), [1, 2, 3, 4, 5, 6], 'the reader gets 4 and 5 too, in order')
  t.same(ids(room.archive()), [1, 2, 3, 4, 5, 6], 'so does the replay window')
  t.equal(room.stats.gaps, 0, 'no reader ever met a gap')
})

t.test('a cursor ahead of this process, resumed while this process catches up, is not moved past what the reader has', async (t) => {
  const { room, bus, commitElsewhere, holdReads } = sharedRoom(t)
  await room.start()
  const first = await commitElsewhere('m1', 'm2', 'm3')
  for (const s of first) bus().event(s, 'lobby')
  const later = await commitElsewhere('m4', 'm5')
  // The reader has 5 (from another process); this one has only 3 and asks the store where the log stands.
  const release = holdReads()
  const entering = room.enter({ name: 'reader' }, 'websocket', { lastReceived: 5, epoch: room.epoch })
  await tick()
  // While that read is held, this process catches up past the cursor: 4, 5, then 6 and 7.
  for (const s of later) bus().event(s, 'lobby')
  for (const s of await commitElsewhere('m6', 'm7')) bus().event(s, 'lobby')
  release()
  const entered = await entering
  if (!entered.ok) throw new Error(`refused: ${entered.refused}`)
  await tick()
  const got = ids(entered.subscription.take()).filter((id) => room.archive().some((s) => s.event.id === id && s.event.type === 'message'))
  t.same(got, [6, 7], 'the reader gets 6 and 7, the events after its cursor')
  entered.subscription.cancel()
})

t.test('a reader that would be handed a gap is ended as lagged (so it resumes from its cursor), and the gap is counted', async (t) => {
  const { room, bus, commitElsewhere } = sharedRoom(t)
  await room.start()
  for (const s of await commitElsewhere('m1', 'm2')) bus().event(s, 'lobby')
  const reader = room.subscribe()
  t.same(ids(reader.take()), [1, 2])
  // The store loses 3..4 (pruned, or a bad restore) before this process read them; 5 arrives.
  const [, , five] = await commitElsewhere('m3', 'm4', 'm5')
  ;void (room as unknown as { store: MemoryStore }).store.prune(1, 0)
  bus().event(five!, 'lobby')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(reader.state, 'lagged', 'the reader was ended, not handed 5 after 2')
  t.same(reader.take(), [], 'and was given nothing past the gap')
  t.equal(room.stats.gaps, 1, 'counted for /metrics')
  t.same(ids(room.archive()), [5], 'the replay window starts over at 5, consecutive')
  const resumed = await room.enter({ name: 'reader' }, 'websocket', { lastReceived: 2, epoch: room.epoch })
  t.match(resumed, { ok: false, refused: 'behind' }, 'resuming from 2 is told to start over')
})

t.test('a room loaded while the bus brings events newer than the log it read keeps one consecutive window: no reader is handed an event twice', async (t) => {
  // The lobby has 5 events; while it loads (its last id is read as 5, then its window), 6..8
  // are committed elsewhere and the bus brings them, so the window read and the fill overlap.
  const { room, bus, commitElsewhere, holdReads } = sharedRoom(t)
  await commitElsewhere('m1', 'm2', 'm3', 'm4', 'm5')
  const release = holdReads()
  const starting = room.start()
  for (let i = 0; i < 5; i++) await tick()
  for (const s of await commitElsewhere('m6', 'm7', 'm8')) bus().event(s, 'lobby')
  release()
  await starting
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.same(ids(room.archive()), range(1, 8), 'the replay window is 1..8, each once')
  t.same(ids(room.archive(7)), [8], 'a reader at 7 is handed 8 alone')
  const entered = await room.enter({ name: 'reader' }, 'longpolling', { lastReceived: 6, epoch: room.epoch })
  if (!entered.ok) throw new Error(`refused: ${entered.refused}`)
  const got = entered.subscription.take()
  t.same(ids(got.filter((s) => s.event.type === 'message')), [7, 8], 'a poll from 6 gets 7 and 8, nothing at or below its cursor (then its own arrival)')
  t.same(ids(got), range(7, got.at(-1)!.event.id), 'each once, in order')
  entered.subscription.cancel()
})

t.test('a reader entering a room that is still loading waits for it: it is handed what follows its cursor, then live events, with no gap', async (t) => {
  const { room, bus } = sharedRoom(t)
  await room.start()
  await room.createRoom({ name: 'ann', id: 'ann-id', account: true }, { name: 'x' })
  // Its creator's join line loaded it: unloaded, so its next use reads its window again.
  t.equal(room.unloadIdle(0), 1, 'x unloaded')
  const log = await (room as unknown as { store: MemoryStore }).store.log('x')
  for (let i = 1; i <= 5; i++) await log.append([{ type: 'message', user: 'bob', text: `x${i}` }])
  // The room's first window read is held: two readers ask for it meanwhile.
  let release!: () => void
  const held = new Promise<void>((resolve) => (release = resolve))
  const after = log.after.bind(log)
  log.after = async (from, limit) => {
    const page = await after(from, limit)
    await held
    return page
  }
  const first = room.readable('x', { name: 'ann', id: 'ann-id', account: true })
  for (let i = 0; i < 5; i++) await tick()
  const second = room.readable('x', { name: 'ann', id: 'ann-id', account: true })
  let loadedEarly = false
  void second.then(() => (loadedEarly = true))
  for (let i = 0; i < 5; i++) await tick()
  t.notOk(loadedEarly, 'a second use of the room waits while its window is read')
  release()
  const x = (await second)!
  t.equal(x, (await first)!, 'both get the same room')
  const entered = await x.enter({ name: 'ann', id: 'ann-id', account: true }, 'websocket', { lastReceived: 3, epoch: x.epoch })
  if (!entered.ok) throw new Error(`refused: ${entered.refused}`)
  const [six] = await log.append([{ type: 'message', user: 'bob', text: 'x6' }])
  bus().event(six!, 'x')
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(entered.subscription.state, 'open', 'the reader was not ended')
  t.same(ids(entered.subscription.take()), [4, 5, 6, 7], 'it got 4, 5, 6 and the live 7 (after the join line, x1 to x6 are 2 to 7), once each')
  t.equal(room.stats.gaps, 0, 'no gap was ever met')
  entered.subscription.cancel()
})

t.test('a reader is never handed an id at or below its cursor or one it was handed: it is ended to resume, and the repeat is counted', async (t) => {
  const counted: string[] = []
  const owner = {
    release() {},
    wake() {},
    gap: (_s: unknown, expected: number, got: number) => void counted.push(`gap ${expected} ${got}`),
    repeat: (_s: unknown, after: number, got: number) => void counted.push(`repeat ${after} ${got}`),
  }
  const r = await room()
  for (let i = 1; i <= 6; i++) await r.post('ann', `m${i}`)
  const events = r.archive()
  const at = (...wanted: number[]) => wanted.map((id) => events[id - 1]!)

  const behind = new Subscription(owner, at(3, 4, 5), 10, { cursor: 4 })
  t.equal(behind.state, 'lagged', 'a backlog that starts at or below the cursor ends the reader')
  t.same(behind.take(), [], 'and hands it nothing')
  const twice = new Subscription(owner, at(5, 6, 5, 6), 10, { cursor: 4 })
  t.equal(twice.state, 'lagged', 'a backlog that goes back on itself ends the reader')
  t.same(counted, ['repeat 4 3', 'repeat 6 5'], 'both counted as repeats')

  counted.length = 0
  const live = new Subscription(owner, at(5), 10, { cursor: 4 })
  t.equal(live.state, 'open', 'a backlog after the cursor is fine')
  live.push(events[5]!)
  live.push(events[4]!)
  t.equal(live.state, 'lagged', 'a live event at or below the last one handed ends the reader')
  t.same(counted, ['repeat 6 5'], 'counted as a repeat, not a gap')
  const skipping = new Subscription(owner, at(5), 10, { cursor: 4 })
  skipping.push(events[5]!)
  skipping.push({ ...events[5]!, event: { ...events[5]!.event, id: 8 } })
  t.equal(skipping.state, 'lagged', 'a live event past the next one ends the reader')
  t.same(counted, ['repeat 6 5', 'gap 7 8'], 'counted as a gap')
  t.equal(r.stats.repeats, 0, 'the room itself never repeated')
})

t.test("a person's connections in a room: one page's leave ends that page's alone, the per-user cap counts those open, and a followed room's reader ends with its room's leave", async (t) => {
  const chatroom = new Chatroom(new MemoryStore(), new LocalBus(), { archiveSize: 100, subscriberQueue: 256, perUser: { websocket: 2 } })
  await chatroom.start()
  t.teardown(() => chatroom.close())
  const dev = await chatroom.room('dev')
  const ann = { id: 'ann-id', name: 'ann' }
  const open = async (tab: string, options: { following?: boolean } = {}) => {
    const entered = await dev.enter(ann, 'websocket', { tab, ...options })
    if (!entered.ok) throw new Error(`refused: ${entered.refused}`)
    return entered.subscription
  }
  const a = await open('a')
  const b = await open('b')
  const refused = await dev.enter(ann, 'websocket', { tab: 'c' })
  t.match(refused, { ok: false, refused: 'tooMany' }, 'a third page past the cap of two is refused')
  b.cancel()
  const c = await open('c')
  t.equal(c.state, 'open', 'once one closes, another page may open')
  // A room followed in the background does not count toward the cap (a person's stream holds every room).
  const followed = await open('f', { following: true })
  await dev.leave(ann, undefined, 'a')
  t.same([a.state, c.state, followed.state], ['left', 'open', 'open'], "page a's leave ends page a alone")
  await dev.leave(ann)
  t.same([c.state, followed.state], ['left', 'left'], 'leaving the room ends every reader of hers, the followed one too')
  const again = await open('d')
  const another = await open('e')
  t.same([again.state, another.state], ['open', 'open'], 'nothing of the ended ones still counts: two pages open again')
  again.cancel()
  another.cancel()
  await dev.leave(ann)
  t.equal((await open('g')).state, 'open')
})

t.test("the replay window as the store keeps it: an edited message's earlier edits carry its newest text, a deleted one's none", async (t) => {
  const r = await (await room()).room('dev')
  const ann = { id: 'ann-id', name: 'ann' }
  const said = await r.say(ann, 'first words')
  const id = said.outcome === 'ok' ? said.stored.event.id : 0
  await r.edit(ann, id, 'second words')
  await r.edit(ann, id, 'third words')
  t.same(
    r.archive().map((s) => `${s.event.type} ${s.event.text}`),
    ['message third words', 'edit third words', 'edit third words'],
  )
  await r.remove(ann, id)
  t.notOk(r.archive().some((s) => s.event.text !== undefined), 'deleted: no text anywhere in the window')
})
