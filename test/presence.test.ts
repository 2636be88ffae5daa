import t from 'tap'
import { LocalBus, LocalPresenceStore } from '../app/chatroom/bus/local.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { Chatroom } from '../app/chatroom/chatroom.js'
import { Presence } from '../app/chatroom/presence.js'
import { buildTestApp, enter, signIn, SocketClient } from './helpers.js'

/** Events are committed to the log in the next tick (one transaction per tick). */
const committed = () => new Promise((resolve) => setImmediate(resolve))

/** A room and its presence on a clock the test moves by hand: no timers, no margins. */
async function setup(graceMs: number) {
  const room = new Chatroom(new MemoryStore(), new LocalBus(), { archiveSize: 100, subscriberQueue: 100 })
  await room.start()
  const clock = { now: 1_000_000 }
  const presence = new Presence(new LocalPresenceStore(room), { graceMs, now: () => clock.now })
  const kinds = () => room.archive().map((s) => `${s.event.type}:${s.event.user}`)
  /** Moves the clock, runs the sweep the timer would have run, and lets what it published commit. */
  const advance = async (ms: number) => {
    clock.now += ms
    presence.sweep()
    await committed()
  }
  return { room, presence, kinds, advance }
}

t.test('two connections of one user: one join, one leave after both are gone and the grace has passed', async (t) => {
  const { presence, kinds, advance } = await setup(100)
  const ann = { name: 'ann', avatar: '/avatars/aaaaaaaaaaaaaaaaaaaa.svg' }
  const tab1 = presence.hold(ann)
  const tab2 = presence.hold(ann)
  await committed()
  t.same(kinds(), ['join:ann'], 'one join for two tabs')
  tab1()
  tab1()
  await advance(250)
  t.same(kinds(), ['join:ann'], 'one tab left (released twice): still here')
  tab2()
  await advance(99)
  t.same(kinds(), ['join:ann'], 'within the grace: no leave yet')
  t.equal(presence.isOnline('ann'), true)
  await advance(1)
  t.same(kinds(), ['join:ann', 'leave:ann'], 'the leave, as the grace ends')
  t.equal(presence.isOnline('ann'), false)
})

t.test('a reload within the grace period makes no leave/join noise', async (t) => {
  const { presence, kinds, advance } = await setup(300)
  const release = presence.hold({ name: 'bob' })
  release()
  await advance(299)
  const again = presence.hold({ name: 'bob' })
  await advance(1000)
  t.same(kinds(), ['join:bob'], 'back within the grace: nothing published')
  again()
  await advance(299)
  t.same(kinds(), ['join:bob'], 'the grace starts again from the last release')
  await advance(1)
  t.same(kinds(), ['join:bob', 'leave:bob'])
})

t.test('a lease runs out: offline after the lease and the grace', async (t) => {
  const { presence, kinds, room, advance } = await setup(50)
  presence.touch({ name: 'cat' }, 'longpolling', 150)
  presence.touch({ name: 'cat' }, 'longpolling', 150)
  await committed()
  t.same(kinds(), ['join:cat'])
  t.same(room.roster().users, [{ name: 'cat' }])
  await advance(100)
  presence.touch({ name: 'cat' }, 'longpolling', 150)
  await advance(149)
  t.same(kinds(), ['join:cat'], 'renewed in time: the lease runs to 250')
  await advance(1)
  t.same(kinds(), ['join:cat'], 'the lease ran out; the grace begins')
  await advance(49)
  t.same(kinds(), ['join:cat'])
  await advance(1)
  t.same(kinds(), ['join:cat', 'leave:cat'])
  t.same(room.roster(), { lastId: 2, count: 0, users: [] })
})

t.test('the leave link leaves at once, unless another transport still holds the user', async (t) => {
  const { presence, kinds } = await setup(10_000)
  presence.touch({ name: 'dan' }, 'refresh', 60_000)
  const socket = presence.hold({ name: 'dan' })
  presence.drop({ name: 'dan' }, 'refresh')
  await committed()
  t.same(kinds(), ['join:dan'], 'the socket still holds dan')
  socket()
  presence.touch({ name: 'dan' }, 'refresh', 60_000)
  presence.drop({ name: 'dan' }, 'refresh')
  await committed()
  t.same(kinds(), ['join:dan', 'leave:dan'], 'nothing else held him: leave at once, no grace')
})

t.test('in the app: one user in a WebSocket tab and a long-poll tab', async (t) => {
  const app = await buildTestApp(t, { PRESENCE_GRACE: '0.2', LONGPOLL_TIMEOUT: '0.2', PRESENCE_LEASE_FACTOR: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  const bob = await signIn(app, 'bob')
  const watcher = await SocketClient.open(base, bob)
  const kinds = () => watcher.events.map((e) => `${e.type}:${e.user}`)

  const socket = await SocketClient.open(base, ann)
  await enter(app, ann, 'longpolling')
  const polled = await fetch(`${base}/longpolling/room/messages?lastReceived=${app.chatroom.lastId}`, { headers: { cookie: ann } })
  t.same(await polled.json(), [], 'the poll timed out')
  await watcher.until(() => kinds().includes('join:ann'), 'ann joins')

  const users = await app.inject({ method: 'GET', url: '/room/users', headers: { cookie: bob } })
  t.equal(users.statusCode, 200)
  t.match(users.json(), { lastId: app.chatroom.lastId, users: [{ name: 'ann', avatar: /^\/avatars\/[0-9a-f]{20}\.svg$/ }, { name: 'bob' }] })

  await socket.close()
  // The long-poll lease (0.2 s) then the grace (0.2 s): one leave.
  await watcher.until(() => kinds().includes('leave:ann'), 'ann leaves', 3000)
  t.same(kinds().filter((k) => k.endsWith(':ann')), ['join:ann', 'leave:ann'], 'one join, one leave')
  const after = await app.inject({ method: 'GET', url: '/room/users', headers: { cookie: bob } })
  t.same(after.json().users.map((u: { name: string }) => u.name), ['bob'])
  await watcher.close()
})

t.test('the online list needs a session', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/room/users' })
  t.equal(res.statusCode, 401)
})

t.test('the room pages list who is online, the viewer marked', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann')
  const bob = await signIn(app, 'bob')
  await enter(app, ann, 'refresh')
  for (const transport of ['refresh', 'longpolling', 'websocket'] as const) {
    const page = await app.inject({ method: 'GET', url: `/${transport}/room`, headers: { cookie: bob } })
    t.match(page.body, /<li class="online" data-name="ann">\s*<img class="avatar" src="\/avatars\/[0-9a-f]{20}\.svg"/, `${transport}: ann listed`)
    if (transport !== 'websocket') t.match(page.body, /<li class="online me" data-name="bob">[\s\S]*?\(you\)/, `${transport}: bob marked`)
  }
  const fragment = await app.inject({ method: 'GET', url: '/refresh/room/thread', headers: { cookie: bob } })
  t.match(fragment.body, /<ul id="users"[^>]*>[\s\S]*data-name="ann"[\s\S]*data-name="bob"/, 'the refresh fragment carries the list')
})
