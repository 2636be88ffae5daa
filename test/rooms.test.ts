import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { WebSocket } from 'ws'
import { buildTestApp, range, signIn as guest, registerAccount as account } from './helpers.js'

// Many rooms: each its own log (ids from 1, its own epoch), listed, created, joined, left; private
// rooms and direct messages that do not exist, on any route, for whoever may not read them.

const cookieOf = (res: { cookies: { name: string; value: string }[] }) => `chat_session=${res.cookies.find((c) => c.name === 'chat_session')!.value}`

const post = (app: FastifyInstance, cookie: string, url: string, payload: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload, headers: { cookie } })
const get = (app: FastifyInstance, cookie: string, url: string) => app.inject({ url, headers: { cookie } })

/** The status a WebSocket upgrade gets: 101 when it opened, else the HTTP refusal's. */
function upgradeStatus(url: string, cookie: string): Promise<number> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers: { cookie } })
    ws.once('unexpected-response', (req, res) => {
      req.destroy()
      resolve(res.statusCode ?? 0)
    })
    ws.once('open', () => {
      ws.close()
      resolve(101)
    })
    ws.once('error', () => resolve(-1))
  })
}

t.test('a public room: created, listed, its own log (ids from 1, its own epoch), and nothing of it in the lobby', async (t) => {
  const app = await buildTestApp(t)
  const ann = await guest(app, 'ann')
  const made = await post(app, ann, '/rooms', { name: 'dev', title: 'Development', topic: 'Builds and bugs' })
  t.equal(made.statusCode, 201)
  t.match(made.json(), { name: 'dev', title: 'Development', topic: 'Builds and bugs', visibility: 'public' })
  t.equal((await post(app, ann, '/rooms', { name: 'DEV' })).statusCode, 400, 'names are lower case')
  t.equal((await post(app, ann, '/rooms', { name: 'dev' })).statusCode, 409, 'a taken name: 409')
  t.equal((await post(app, ann, '/rooms', { name: 'de-v' })).statusCode, 409, 'and a look-alike of it')

  const said = await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'hello dev' })
  t.equal(said.statusCode, 201)
  const bob = await guest(app, 'bob')
  const poll = await get(app, bob, '/longpolling/rooms/dev/messages?lastReceived=0')
  const events = poll.json() as Event[]
  t.same(events.map((e) => e.id), range(1, events.length), 'the room\'s ids start at 1')
  t.ok(events.some((e) => e.text === 'hello dev'))
  t.not(poll.headers['x-room-epoch'], app.chatroom.epoch, 'an epoch of its own')
  const lobby = (await get(app, bob, '/longpolling/room/messages?lastReceived=0')).json() as Event[]
  t.notOk(lobby.some((e) => e.text === 'hello dev'), 'the lobby never sees it')
  const history = (await get(app, bob, '/rooms/dev/history')).json() as { events: Event[] }
  t.ok(history.events.some((e) => e.text === 'hello dev'), 'its history')

  const listed = (await get(app, bob, '/rooms')).json() as { rooms: { name: string; lastId: number; unread: number; member: boolean }[] }
  t.same(listed.rooms.map((r) => r.name), ['dev', 'lobby'], 'both rooms listed')
  t.match(listed.rooms.find((r) => r.name === 'dev'), { lastId: Number, member: false })
  t.equal((await post(app, bob, '/rooms/dev/join')).statusCode, 200)
  const joined = (await get(app, bob, '/rooms')).json() as { rooms: { name: string; member: boolean }[] }
  t.ok(joined.rooms.find((r) => r.name === 'dev')!.member, 'a member once joined')
  t.equal((await post(app, bob, '/rooms/nowhere/join')).statusCode, 404)

  const page = await get(app, bob, '/refresh/rooms/dev')
  t.equal(page.statusCode, 200, 'the refresh page of the room: no JavaScript needed')
  t.match(page.body, /hello dev/)
  t.match(page.body, /action="\/refresh\/rooms\/dev"/, 'its form posts to the room')
  t.match(page.body, /<title>#dev/)
})

t.test('a private room does not exist for a stranger on any route; an invited member reads it', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await account(app, 'ann')
  const eve = await account(app, 'eve')
  const visitor = await guest(app, 'visitor')
  t.equal((await post(app, visitor, '/rooms', { name: 'secret', visibility: 'private' })).statusCode, 403, 'a guest cannot make a private room')
  t.equal((await post(app, ann, '/rooms', { name: 'secret', visibility: 'private', topic: 'plans' })).statusCode, 201)
  t.equal((await post(app, ann, '/longpolling/rooms/secret/messages', { message: 'the plan' })).statusCode, 201)

  for (const [who, cookie] of [['an account', eve], ['a guest', visitor]] as const) {
    const routes: [string, () => Promise<number>][] = [
      ['GET /rooms/secret/history', async () => (await get(app, cookie, '/rooms/secret/history')).statusCode],
      ['GET /rooms/secret/users', async () => (await get(app, cookie, '/rooms/secret/users')).statusCode],
      ['GET /longpolling/rooms/secret/messages', async () => (await get(app, cookie, '/longpolling/rooms/secret/messages?lastReceived=0')).statusCode],
      ['POST /longpolling/rooms/secret/messages', async () => (await post(app, cookie, '/longpolling/rooms/secret/messages', { message: 'let me in' })).statusCode],
      ['POST /longpolling/rooms/secret/typing', async () => (await post(app, cookie, '/longpolling/rooms/secret/typing')).statusCode],
      ['GET /sse/rooms/secret/events', async () => (await get(app, cookie, '/sse/rooms/secret/events')).statusCode],
      ['GET /refresh/rooms/secret', async () => (await get(app, cookie, '/refresh/rooms/secret')).statusCode],
      ['GET /refresh/rooms/secret/thread', async () => (await get(app, cookie, '/refresh/rooms/secret/thread')).statusCode],
      ['POST /refresh/rooms/secret', async () => (await post(app, cookie, '/refresh/rooms/secret', { message: 'hi' })).statusCode],
      ['POST /rooms/secret/join', async () => (await post(app, cookie, '/rooms/secret/join')).statusCode],
      ['POST /rooms/secret/invite', async () => (await post(app, cookie, '/rooms/secret/invite', { user: 'visitor' })).statusCode],
      ['WebSocket /websocket/rooms/secret/socket', () => upgradeStatus(`${base.replace('http', 'ws')}/websocket/rooms/secret/socket`, cookie)],
    ]
    for (const [route, call] of routes) t.equal(await call(), 404, `${who}: ${route} is 404, as for a room that does not exist`)
    const rooms = (await get(app, cookie, '/rooms')).json() as { rooms: { name: string }[] }
    t.notOk(rooms.rooms.some((r) => r.name === 'secret'), `${who}: not listed`)
  }
  const nothing = (await get(app, eve, '/rooms/nothing-here/history'))
  t.same([nothing.statusCode, nothing.json().message], [404, 'No such room.'], 'the same answer as for a room that does not exist')

  const invited = await post(app, ann, '/rooms/secret/invite', { user: 'eve' })
  t.match(invited.json(), { ok: true, user: 'eve', added: true })
  const events = (await get(app, eve, '/longpolling/rooms/secret/messages?lastReceived=0')).json() as Event[]
  t.ok(events.some((e) => e.text === 'the plan'), 'an invited member reads it')
  t.ok(((await get(app, eve, '/rooms')).json() as { rooms: { name: string }[] }).rooms.some((r) => r.name === 'secret'), 'and sees it listed')
  t.equal((await post(app, eve, '/rooms/secret/leave')).statusCode, 200, 'she leaves it')
  t.equal((await get(app, eve, '/rooms/secret/history')).statusCode, 404, 'and then it no longer exists for her')
  t.equal((await post(app, ann, '/rooms/secret/invite', { user: 'nobody-at-all' })).statusCode, 404, 'inviting a name that is no account: 404')
})

t.test('direct messages: one room for two accounts, found again from either side, invisible to a third', async (t) => {
  const app = await buildTestApp(t)
  const ann = await account(app, 'ann')
  const bob = await account(app, 'bob')
  const cat = await account(app, 'cat')
  const opened = await post(app, ann, '/direct', { user: 'bob' })
  t.equal(opened.statusCode, 200)
  const { room } = opened.json() as { room: string; title: string }
  t.match(opened.json(), { title: 'ann & bob' })
  t.same((await post(app, bob, '/direct', { user: 'ANN' })).json().room, room, 'the same room from the other side')
  t.equal((await post(app, ann, '/longpolling/rooms/' + room + '/messages', { message: 'psst' })).statusCode, 201)
  const seen = (await get(app, bob, `/longpolling/rooms/${room}/messages?lastReceived=0`)).json() as Event[]
  t.ok(seen.some((e) => e.text === 'psst'), 'bob reads it')
  t.equal((await get(app, cat, `/rooms/${room}/history`)).statusCode, 404, 'cat cannot')
  t.equal((await post(app, cat, `/rooms/${room}/invite`, { user: 'cat' })).statusCode, 404, 'nor get herself in')
  t.equal((await post(app, ann, '/direct', { user: 'ann' })).statusCode, 400, 'not with yourself')
  const visitor = await guest(app, 'visitor')
  t.equal((await post(app, visitor, '/direct', { user: 'ann' })).statusCode, 403, 'a guest has no direct messages')
  t.equal((await post(app, ann, '/rooms', { name: 'dm-mine' })).statusCode, 400, '"dm-" names are kept for direct rooms')

  // Each side's room list names the other person; the two people are read once, not on every page.
  const store = app.chatroom.roomStore
  const named = store.named.bind(store)
  let reads = 0
  store.named = (name, limit) => {
    if (name === room) reads++
    return named(name, limit)
  }
  for (const [cookie, other] of [[ann, 'bob'], [bob, 'ann'], [ann, 'bob'], [bob, 'ann']] as const) {
    const page = await get(app, cookie, '/refresh/room')
    t.match(page.body, new RegExp(`<li data-room="${room}"[^>]* data-with="${other}"`), `the list names ${other}`)
  }
  t.equal(reads, 1, "the DM's two people were read once for four pages")
})

t.test('room limits: per creator and in all, each with a clear error', async (t) => {
  const app = await buildTestApp(t, { ROOMS_PER_CREATOR: '2', MAX_ROOMS: '4' })
  const ann = await guest(app, 'ann')
  t.equal((await post(app, ann, '/rooms', { name: 'one' })).statusCode, 201)
  t.equal((await post(app, ann, '/rooms', { name: 'two' })).statusCode, 201)
  const third = await post(app, ann, '/rooms', { name: 'three' })
  t.same([third.statusCode, third.json().message], [429, 'One person may create at most 2 rooms.'])
  const bob = await guest(app, 'bob')
  t.equal((await post(app, bob, '/rooms', { name: 'four' })).statusCode, 201, 'the lobby and three rooms')
  const full = await post(app, bob, '/rooms', { name: 'five' })
  t.same([full.statusCode, full.json().message], [429, 'This chat holds at most 4 rooms; none can be created now.'])
})

t.test('read markers: unread counts per room follow the person to another device; the refresh page marks a room read', async (t) => {
  const app = await buildTestApp(t)
  const ann = await account(app, 'ann')
  await post(app, ann, '/rooms', { name: 'dev' })
  const bobLaptop = await account(app, 'bob')
  const bobPhone = cookieOf(await app.inject({ method: 'POST', url: '/signin', payload: { user: 'bob', password: 'a long enough password', transport: 'refresh' } }))
  await post(app, bobLaptop, '/rooms/dev/join')
  for (const text of ['one', 'two', 'three']) await post(app, ann, '/longpolling/rooms/dev/messages', { message: text })
  const unread = async (cookie: string) => ((await get(app, cookie, '/rooms')).json() as { rooms: { name: string; unread: number; lastId: number }[] }).rooms.find((r) => r.name === 'dev')!
  const before = await unread(bobPhone)
  t.ok(before.unread >= 3, `unread on the phone: ${before.unread}`)
  t.equal((await post(app, bobLaptop, '/rooms/dev/read', { id: String(before.lastId - 1) })).statusCode, 204)
  t.equal((await unread(bobPhone)).unread, 1, 'read on the laptop, one left on the phone')
  t.equal((await post(app, bobLaptop, '/rooms/dev/read', { id: '1' })).statusCode, 204)
  t.equal((await unread(bobPhone)).unread, 1, 'a marker never moves back')
  const page = await get(app, bobPhone, '/refresh/rooms/dev')
  t.match(page.body, /<a href="\/refresh\/rooms\/dev" aria-current="page">#dev<\/a>/, 'the page lists its room as the current one')
  t.equal((await unread(bobLaptop)).unread, 0, 'opening the room\'s page marks it read everywhere')
  await post(app, ann, '/longpolling/room/messages', { message: 'in the lobby' })
  await post(app, ann, '/rooms', { name: 'quiet' })
  await get(app, await guest(app, 'visitor'), '/refresh/rooms/quiet')
  t.equal(((await get(app, bobLaptop, '/rooms')).json() as { rooms: { name: string; unread: number; lastId: number }[] }).rooms.find((r) => r.name === 'quiet')!.unread, 0, 'join lines are not unread messages')
  const lobbyPage = await get(app, bobPhone, '/refresh/rooms/dev')
  t.match(lobbyPage.body, /#lobby<\/a> <span class="unread"/, 'another room with something new shows its count')
})

t.test('one person in five rooms on three devices is one entry in each room\'s online list, and one join per room', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const devices = [await account(app, 'ann')]
  for (let i = 0; i < 2; i++) devices.push(cookieOf(await app.inject({ method: 'POST', url: '/signin', payload: { user: 'ann', password: 'a long enough password', transport: 'websocket' } })))
  const rooms = ['r1', 'r2', 'r3', 'r4', 'r5']
  for (const name of rooms) t.equal((await post(app, devices[0]!, '/rooms', { name })).statusCode, 201)
  const sockets: WebSocket[] = []
  for (const cookie of devices) {
    for (const name of rooms) {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/websocket/rooms/${name}/socket`, { headers: { cookie } })
      await new Promise((resolve, reject) => (ws.once('message', resolve), ws.once('error', reject)))
      sockets.push(ws)
    }
  }
  for (const name of rooms) {
    const users = (await get(app, devices[1]!, `/rooms/${name}/users`)).json() as { users: { name: string }[] }
    t.same(users.users.map((u) => u.name), ['ann'], `${name}: one entry for three devices`)
    const log = (await get(app, devices[1]!, `/rooms/${name}/history`)).json() as { events: Event[] }
    t.equal(log.events.filter((e) => e.type === 'join').length, 1, `${name}: one join line`)
  }
  for (const ws of sockets) ws.close()
})

t.test('invitations per hour are counted per person: past INVITES_PER_HOUR, 429', async (t) => {
  const app = await buildTestApp(t, { INVITES_PER_HOUR: '2' })
  const ann = await account(app, 'ann')
  for (const name of ['bob', 'cat', 'dan']) await account(app, name)
  await post(app, ann, '/rooms', { name: 'plans', visibility: 'private' })
  t.equal((await post(app, ann, '/rooms/plans/invite', { user: 'bob' })).statusCode, 200)
  t.equal((await post(app, ann, '/rooms/plans/invite', { user: 'cat' })).statusCode, 200)
  const third = await post(app, ann, '/rooms/plans/invite', { user: 'dan' })
  t.same([third.statusCode, third.json().message], [429, 'At most 2 invitations an hour.'])
  t.match(third.headers['retry-after'], /^\d+$/)
})
