import { setImmediate as tick } from 'node:timers/promises'
import t from 'tap'
import { LocalBus } from '../app/chatroom/bus/local.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { Chatroom } from '../app/chatroom/chatroom.js'
import { Follower, type Taken } from '../app/chatroom/follower.js'
import { memberKey } from '../app/chatroom/presence.js'

const ann = { id: 'ann-id', name: 'ann' }

async function chat(t: { teardown(fn: () => unknown): void }, subscriberQueue = 256, archiveSize = 100) {
  const chatroom = new Chatroom(new MemoryStore(), new LocalBus(), { archiveSize, subscriberQueue })
  await chatroom.start()
  t.teardown(() => chatroom.close())
  return chatroom
}

/** A follower of ann's, with what it was handed, tick by tick. */
function follower(tab?: string) {
  const f = new Follower(memberKey(ann), ann.name, 'websocket', tab)
  const takes: Taken[][] = []
  f.onReadable = () => takes.push(f.take())
  return { f, takes }
}

const said = (takes: Taken[][]) => takes.flat().map((x) => [x.room.name, x.ended ?? x.events.map((s) => s.event.text ?? s.event.type).join(' ')])

t.test('one follower reads many rooms: each room its events in order, a tick read together, nothing of a room it does not follow', async (t) => {
  const chatroom = await chat(t)
  const rooms = await Promise.all(['a', 'b', 'c', 'd'].map((name) => chatroom.room(name)))
  const { f, takes } = follower()
  for (const room of rooms.slice(0, 3)) t.equal(await room.follow(f), true, `${room.name} followed from now`)
  t.equal(f.size, 3)
  t.same(
    rooms.map((r) => r.subscriberCount),
    [1, 1, 1, 0],
    'each followed room counts it as its reader',
  )
  await Promise.all([rooms[0]!.post('bob', 'a1'), rooms[1]!.post('bob', 'b1'), rooms[3]!.post('bob', 'd1')])
  await rooms[0]!.post('bob', 'a2')
  await tick()
  await tick()
  t.same(said(takes), [
    ['a', 'a1'],
    ['b', 'b1'],
    ['a', 'a2'],
  ])
  t.notOk(f.pending, 'everything taken')
  t.ok(f.has('c') && !f.has('d'))
  f.cancel()
  t.same(
    rooms.map((r) => r.subscriberCount),
    [0, 0, 0, 0],
    'cancelled: no room keeps it',
  )
  t.equal(f.size, 0)
  await rooms[2]!.post('bob', 'c1')
  await tick()
  t.equal(takes.length, 2, 'nothing after its cancel')
})

t.test('a room with something to hand over, another epoch, or the lobby is not followed: the caller subscribes instead', async (t) => {
  const chatroom = await chat(t)
  const dev = await chatroom.room('dev')
  await dev.post('bob', 'one')
  await dev.post('bob', 'two')
  const { f } = follower()
  t.equal(await dev.follow(f, { lastReceived: 1 }), false, 'a cursor behind the room: its backlog needs a subscription')
  t.equal(await dev.follow(f, { lastReceived: 2, epoch: 'another' }), false, 'a cursor of another epoch')
  t.equal(await chatroom.lobby.follow(f), false, "the lobby's readers are its presence")
  t.equal(f.size, 0)
  t.equal(await dev.follow(f, { lastReceived: 2, epoch: dev.epoch }), true, 'a cursor at its newest event')
  t.equal(await dev.follow(f), true, 'twice is once')
  t.equal(f.size, 1)
  t.equal(dev.subscriberCount, 1)
  f.cancel()
  t.equal(await dev.follow(f), false, 'a cancelled follower follows nothing')
})

t.test("a slow follower lags in the busy room alone; the room's other readers and its other rooms go on", async (t) => {
  const chatroom = await chat(t, 5)
  const busy = await chatroom.room('busy')
  const quiet = await chatroom.room('quiet')
  const f = new Follower(memberKey(ann), ann.name, 'websocket', undefined, false)
  // Nobody takes: the queue fills.
  await busy.follow(f)
  await quiet.follow(f)
  // Another reader of the room, one that reads as events come.
  const other = busy.subscribe(busy.lastId)
  let read = 0
  other.onReadable = (s) => (read += s.take().length)
  for (let i = 1; i <= 7; i++) await busy.post('bob', `m${i}`)
  await quiet.post('bob', 'q1')
  await tick()
  t.equal(busy.subscriberCount, 1, 'the busy room let go of it, not of its other reader')
  t.ok(f.has('quiet') && !f.has('busy'))
  const taken = f.take()
  t.same(
    taken.map((x) => [x.room.name, x.ended, x.events.length]),
    [
      ['busy', 'lagged', 0],
      ['quiet', undefined, 1],
    ],
    'told once that the busy room lagged (its queue dropped: it resumes from its cursor), the quiet one read',
  )
  t.equal(read, 7, 'the room never waited on it: its other reader has every event')
  other.cancel()
  f.cancel()
})

t.test('a leave ends the follower in that room (all of it, one page, one transport), a shutdown ends it as closed', async (t) => {
  const chatroom = await chat(t)
  const dev = await chatroom.room('dev')
  const ops = await chatroom.room('ops')
  const page = follower('tab-1')
  const other = follower('tab-2')
  for (const f of [page.f, other.f]) {
    await dev.follow(f)
    await ops.follow(f)
  }
  await dev.leave(ann, undefined, 'tab-1')
  await tick()
  t.same(said(page.takes), [['dev', 'left']], "page tab-1's leave ends tab-1's reading of dev")
  t.same(said(other.takes), [], 'not the other page')
  await dev.leave(ann, 'sse')
  await tick()
  t.same(said(other.takes), [], 'a leave of another transport ends nothing of the socket')
  await dev.leave({ id: 'bob-id', name: 'bob' })
  await tick()
  t.same(said(other.takes), [], "someone else's leave ends nothing of hers")
  await dev.leave(ann)
  await tick()
  t.same(said(other.takes), [['dev', 'left']], 'leaving the room ends it everywhere')
  t.equal(dev.subscriberCount, 0)
  t.ok(page.f.has('ops') && other.f.has('ops'), 'the other room goes on')
  await ops.endSubscriptions()
  await tick()
  t.same(said(page.takes).at(-1), ['ops', 'closed'], 'shutdown: closed')
  t.equal(page.f.size, 0)
})

t.test('signals: typing of others kept (the newest per person), her own not handed back; the room lets go of an idle follower once it is cancelled', async (t) => {
  const chatroom = await chat(t)
  const dev = await chatroom.room('dev')
  const { f, takes } = follower()
  await dev.follow(f)
  t.equal(dev.idleSince, undefined, 'a followed room stays loaded')
  dev.typing({ name: 'bob' })
  dev.typing(ann)
  await new Promise((resolve) => setTimeout(resolve, 20))
  const signals = takes.flat().flatMap((x) => x.signals)
  t.same(
    signals.map((s) => [s.type, s.user]),
    [['typing', 'bob']],
  )
  f.cancel()
  t.type(dev.idleSince, 'number', 'idle once its follower is gone')
})

t.test('a room whose window starts over (the store pruned) ends its followers as lagged rather than hand them a gap', async (t) => {
  const chatroom = await chat(t)
  const dev = await chatroom.room('dev')
  await dev.post('bob', 'one')
  const { f, takes } = follower()
  await dev.follow(f)
  const event = dev.archive().at(-1)!
  dev.deliver({ ...event, event: { ...event.event, id: event.event.id + 5 } })
  // The room reads the missing ones from the store: there are none (pruned), so it starts over at the one it has.
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(said(takes)[0], ['dev', 'lagged'])
  t.equal(f.size, 0)
})
