import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, eventually, registerAccount as account, EventStream, RoomsClient, signIn as guest, SocketClient } from './helpers.js'

// Issue 29: each rule on each path that reaches it. These are the paths the other tests left
// out (see the table in docs/security.md#every-rule-on-every-path): mostly the connections of
// several rooms (/longpolling/messages, /sse/events, /websocket/socket), and the event
// stream's and the socket page's POSTs.

const PASSWORD = 'a long enough password'
const cookieOf = (res: { cookies: { name: string; value: string }[] }) => `chat_session=${res.cookies.find((c) => c.name === 'chat_session')!.value}`
const post = (app: FastifyInstance, cookie: string, url: string, payload: Record<string, unknown> = {}) =>
  app.inject({ method: 'POST', url, payload, headers: { cookie, 'content-type': 'application/json' } })
const get = (app: FastifyInstance, cookie: string, url: string) => app.inject({ url, headers: { cookie, accept: 'application/json' } })
const history = async (app: FastifyInstance, cookie: string, room: string) =>
  (await get(app, cookie, room === 'lobby' ? '/room/history' : `/rooms/${room}/history`)).json<{ events: Event[] }>().events
const texts = (events: Event[]) => events.filter((e) => e.type === 'message').map((e) => e.text)

/** An event stream of the app's, as a program opens it. */
const openStream = (base: string, cookie: string | undefined, path: string, headers: Record<string, string> = {}) => EventStream.open(base + path, { ...(cookie && { cookie }), ...headers })

/** ann (an account) with a private room `secret` holding one message of hers; the app listening. */
async function privateRoom(t: Test, env: Record<string, string> = {}) {
  const app = await buildTestApp(t, env)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await account(app, 'ann')
  t.equal((await post(app, ann, '/rooms', { name: 'secret', visibility: 'private' })).statusCode, 201)
  const said = await post(app, ann, '/longpolling/rooms/secret/messages', { text: 'the plan' })
  t.equal(said.statusCode, 201)
  return { app, base, ann, planId: said.json<Event>().id }
}

t.test('the connections of several rooms refuse strangers with 401, as the one-room ones do', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const poll = await app.inject({ url: '/longpolling/messages?cursor=lobby::' })
  t.same([poll.statusCode, poll.json().error], [401, 'Unauthorized'], 'GET /longpolling/messages: 401')
  const stream = await openStream(base, undefined, '/sse/events?cursor=lobby::')
  t.equal(stream.status, 401, 'GET /sse/events: 401')
  stream.close()
  await t.rejects(SocketClient.open(base, 'chat_session=forged.value', '', {}, '/websocket/socket'), /refused: 401/, 'the /websocket/socket upgrade: 401')
  t.equal(app.chatroom.lastId, 0, 'nobody entered')
})

t.test("a private room's other routes are 404 to a stranger: its live pages, the event stream's and socket page's sends, typing, the read marker, edits, search", async (t) => {
  const { app, ann, planId } = await privateRoom(t)
  const eve = await account(app, 'eve')
  const visitor = await guest(app, 'visitor')
  for (const [who, cookie] of [['an account', eve], ['a guest', visitor]] as const) {
    const routes: [string, () => Promise<number>][] = [
      ['GET /sse/rooms/secret', async () => (await get(app, cookie, '/sse/rooms/secret')).statusCode],
      ['GET /websocket/rooms/secret', async () => (await get(app, cookie, '/websocket/rooms/secret')).statusCode],
      ['GET /longpolling/rooms/secret', async () => (await get(app, cookie, '/longpolling/rooms/secret')).statusCode],
      ['GET /auto/rooms/secret', async () => (await get(app, cookie, '/auto/rooms/secret')).statusCode],
      ['POST /sse/rooms/secret/messages', async () => (await post(app, cookie, '/sse/rooms/secret/messages', { text: 'let me in' })).statusCode],
      ['POST /sse/rooms/secret/typing', async () => (await post(app, cookie, '/sse/rooms/secret/typing')).statusCode],
      ['POST /websocket/rooms/secret/messages', async () => (await post(app, cookie, '/websocket/rooms/secret/messages', { text: 'let me in' })).statusCode],
      ['POST /refresh/rooms/secret/typing', async () => (await post(app, cookie, '/refresh/rooms/secret/typing')).statusCode],
      ['POST /rooms/secret/read', async () => (await post(app, cookie, '/rooms/secret/read', { id: 1 })).statusCode],
      ['POST /rooms/secret/messages/:id/edit', async () => (await post(app, cookie, `/rooms/secret/messages/${planId}/edit`, { text: 'mine now' })).statusCode],
      ['POST /rooms/secret/messages/:id/delete', async () => (await post(app, cookie, `/rooms/secret/messages/${planId}/delete`)).statusCode],
      ['POST /rooms/secret/leave', async () => (await post(app, cookie, '/rooms/secret/leave')).statusCode],
      ['GET /search?room=secret', async () => (await get(app, cookie, '/search?q=plan&room=secret')).statusCode],
    ]
    for (const [route, call] of routes) t.equal(await call(), 404, `${who}: ${route} is 404`)
  }
  const log = await history(app, ann, 'secret')
  t.same(texts(log), ['the plan'], 'nothing was said, edited or deleted there')
  t.same(log.filter((e) => e.type === 'join').map((e) => e.user), ['ann'], 'and nobody else entered')
})

t.test('a former member of a private room can no longer edit or delete what she said there', async (t) => {
  const { app, ann } = await privateRoom(t)
  const eve = await account(app, 'eve')
  t.equal((await post(app, ann, '/rooms/secret/invite', { user: 'eve' })).statusCode, 200)
  const mine = await post(app, eve, '/longpolling/rooms/secret/messages', { text: 'eve was here' })
  t.equal(mine.statusCode, 201, 'a member says something')
  const id = mine.json<Event>().id
  t.equal((await post(app, eve, '/rooms/secret/leave')).statusCode, 200, 'then leaves')
  t.equal((await post(app, eve, `/rooms/secret/messages/${id}/edit`, { text: 'rewritten from outside' })).statusCode, 404, 'an edit from outside: 404')
  t.equal((await post(app, eve, `/rooms/secret/messages/${id}/delete`)).statusCode, 404, 'a deletion from outside: 404')
  const log = await history(app, ann, 'secret')
  t.same(texts(log), ['the plan', 'eve was here'], 'her message stands as she left it')
  t.notOk(log.some((e) => e.type === 'edit' || e.type === 'delete'), 'no edit or deletion event')
})

t.test('a socket of several rooms sends nothing into a room it is not subscribed to: a private one it was refused, or one it never subscribed to', async (t) => {
  const { app, base, ann, planId } = await privateRoom(t)
  t.equal((await post(app, ann, '/rooms', { name: 'dev' })).statusCode, 201)
  const bob = await guest(app, 'bob')
  const multi = await RoomsClient.open(base, bob)
  t.teardown(() => multi.close())
  multi.send({ type: 'subscribe', room: 'secret' })
  t.match(await multi.next((f) => f.type === 'refused', 'the refusal'), { room: 'secret', status: 404 })
  multi.send({ type: 'say', room: 'secret', text: 'let me in', ref: 's1' })
  multi.send({ type: 'edit', room: 'secret', id: planId, text: 'mine now', ref: 'e1' })
  multi.send({ type: 'delete', room: 'secret', id: planId, ref: 'd1' })
  multi.send({ type: 'say', room: 'dev', text: 'never subscribed', ref: 's2' })
  multi.send({ type: 'typing', room: 'secret' })
  const answers = () => multi.frames.filter((f) => f.error !== undefined && f.type !== 'refused')
  await multi.next(() => answers().length >= 5, 'five answers')
  const errors = answers()
  t.ok(errors.every((f) => f.error === 'Bad Request' && /Subscribe to the room first/.test(String(f.message))), 'each refused: subscribe first')
  t.notOk(multi.find((f) => f.type === 'ack'), 'nothing acknowledged')
  t.same(texts(await history(app, ann, 'secret')), ['the plan'], 'secret: nothing said, edited or deleted')
  t.same(texts(await history(app, ann, 'dev')), [], 'dev: nothing said')
})

t.test('leaving a private room answers a waiting one-room long poll at once; the next poll is 404', async (t) => {
  const { app, ann } = await privateRoom(t, { LONGPOLL_TIMEOUT: '55' })
  const eve = await account(app, 'eve')
  await post(app, ann, '/rooms/secret/invite', { user: 'eve' })
  const first = await get(app, eve, '/longpolling/rooms/secret/messages')
  t.equal(first.statusCode, 200)
  const last = first.json<Event[]>().at(-1)!.id
  const waiting = get(app, eve, `/longpolling/rooms/secret/messages?lastReceived=${last}&epoch=${String(first.headers['x-room-epoch'])}`)
  await eventually(() => app.chatroom.waitingCount === 1, 'the poll to wait')
  t.equal((await post(app, eve, '/rooms/secret/leave')).statusCode, 200)
  let timer: ReturnType<typeof setTimeout> | undefined
  const answered = await Promise.race([
    waiting,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 20_000)
    }),
  ])
  clearTimeout(timer)
  t.ok(answered, 'the waiting poll answered on leaving, not after LONGPOLL_TIMEOUT (55 s)')
  t.equal(answered?.statusCode, 200)
  t.equal((await get(app, eve, `/longpolling/rooms/secret/messages?lastReceived=${last}`)).statusCode, 404, 'the next poll: 404')
  if (!answered) await waiting
})

t.test('the long poll and the event stream of several rooms end when their session is ended from another device', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '30' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const one = await account(app, 'alice')
  const two = cookieOf(await app.inject({ method: 'POST', url: '/signin', payload: { user: 'alice', password: PASSWORD, transport: 'websocket' } }))
  const stream = await openStream(base, one, '/sse/events?cursor=lobby::')
  t.teardown(() => stream.close())
  await stream.expect(() => stream.named('hello').length === 1, 'hello')
  const first = (await get(app, one, '/longpolling/messages?cursor=lobby::')).json<{ rooms: Record<string, { epoch: string; lastId: number }> }>()
  const { epoch, lastId } = first.rooms.lobby!
  const began = Date.now()
  const waiting = get(app, one, `/longpolling/messages?cursor=lobby:${epoch}:${lastId}`)
  await eventually(() => app.chatroom.waitingCount === 1, 'the poll to wait')
  const list = (await get(app, two, '/account/sessions')).json<{ sessions: { id: string; current: boolean }[] }>()
  const ended = await post(app, two, '/account/sessions/end', { id: list.sessions.find((s) => !s.current)!.id })
  t.same(ended.json(), { ended: 1 })
  const answered = await waiting
  t.same([answered.statusCode, answered.json().error], [401, 'Unauthorized'], 'the waiting poll of several rooms: 401')
  t.ok(Date.now() - began < 20_000, 'at once, not after its 30 s wait')
  await stream.expect(() => stream.ended, 'the stream to end')
  t.same(stream.named('signedout'), [{ reason: 'signed out' }], 'the stream of several rooms ended with event: signedout')
})

t.test('a name someone else now holds is refused on the event stream, the refresh thread and the connections of several rooms', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const alice = await guest(app, 'alice')
  const socket = await SocketClient.open(base, alice)
  await socket.until(() => socket.hello !== undefined, 'hello')
  await socket.close()
  await eventually(() => !app.chatroom.presence.isOnline('alice'), 'alice to leave')
  const other = await app.inject({ method: 'POST', url: '/signin', payload: { user: 'alice', transport: 'websocket' } })
  t.equal(other.statusCode, 303, 'someone else takes the name once she left')
  const taker = cookieOf(other)
  const held = await SocketClient.open(base, taker)
  t.teardown(() => held.close())
  await held.until(() => held.hello !== undefined, 'the new alice is here')

  const stream = await openStream(base, alice, '/sse/room/events')
  await stream.expect(() => stream.ended, 'the one-room stream to end')
  t.match(stream.named('refused'), [{ status: 409, reason: 'name' }], 'GET /sse/room/events: refused, name')
  const thread = await get(app, alice, '/refresh/room/thread')
  t.match([thread.statusCode, thread.statusCode === 409 ? thread.json() : thread.body], [409, { reason: 'name' }], 'GET /refresh/room/thread: 409, name')
  const poll = await get(app, alice, '/longpolling/messages?cursor=lobby::')
  t.match(poll.json(), { events: [], refused: [{ room: 'lobby', reason: 'name' }] }, 'GET /longpolling/messages: the room refused, name')
  const streams = await openStream(base, alice, '/sse/events?cursor=lobby::')
  await streams.expect(() => streams.ended, 'the stream of several rooms to end')
  t.match(streams.named('refused'), [{ room: 'lobby', status: 409, reason: 'name' }], 'GET /sse/events: refused, name')
  const multi = await RoomsClient.open(base, alice)
  t.teardown(() => multi.close())
  multi.send({ type: 'subscribe', room: 'lobby' })
  t.match(await multi.next((f) => f.type === 'refused', 'the refusal'), { room: 'lobby', status: 409, reason: 'name' }, '/websocket/socket: refused, name')
  t.equal(app.chatroom.presence.isOnline('alice'), true)
  t.equal((await history(app, taker, 'lobby')).filter((e) => e.type === 'join' && e.user === 'alice').length, 2, 'two joins: the first alice and the new one, none for the refused connections')
})

t.test('per-user caps reach the connections of several rooms: a stream, a poll and a socket subscription past the cap are refused (429)', async (t) => {
  const app = await buildTestApp(t, { MAX_SOCKETS_PER_USER: '1', MAX_POLLS_PER_USER: '1', LONGPOLL_TIMEOUT: '30' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')

  const socket = await SocketClient.open(base, ann)
  t.teardown(() => socket.close())
  await socket.until(() => socket.hello !== undefined, 'hello')
  const multi = await RoomsClient.open(base, ann)
  t.teardown(() => multi.close())
  multi.send({ type: 'subscribe', room: 'lobby' })
  t.match(await multi.next((f) => f.type === 'refused', 'the refusal'), { room: 'lobby', status: 429, reason: 'tooMany' }, '/websocket/socket: a subscription past MAX_SOCKETS_PER_USER')

  const stream = await openStream(base, ann, '/sse/room/events')
  t.teardown(() => stream.close())
  await stream.expect(() => stream.named('hello').length === 1, 'hello')
  const streams = await openStream(base, ann, '/sse/events?cursor=lobby::')
  await streams.expect(() => streams.ended, 'the stream of several rooms to end')
  t.match(streams.named('refused'), [{ room: 'lobby', status: 429, reason: 'tooMany' }], '/sse/events: past MAX_SOCKETS_PER_USER')

  const waiting = get(app, ann, `/longpolling/room/messages?lastReceived=${app.chatroom.lastId}&epoch=${app.chatroom.epoch}`)
  await eventually(() => app.chatroom.waitingCount === 1, 'one waiting poll')
  const polls = await get(app, ann, '/longpolling/messages?cursor=lobby::')
  t.match(polls.json(), { events: [], refused: [{ room: 'lobby', reason: 'tooMany' }] }, '/longpolling/messages: past MAX_POLLS_PER_USER')
  await post(app, ann, '/longpolling/room/messages', { text: 'done' })
  await waiting
})

t.test('a poll or an event stream of several rooms names at most MAX_ROOMS_PER_CONNECTION rooms', async (t) => {
  const app = await buildTestApp(t, { MAX_ROOMS_PER_CONNECTION: '2' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')
  for (const name of ['dev', 'ops']) await post(app, ann, '/rooms', { name })
  const three = 'cursor=lobby::&cursor=dev::&cursor=ops::'
  const poll = await get(app, ann, `/longpolling/messages?${three}`)
  t.match([poll.statusCode, poll.json()], [400, { message: 'At most 2 rooms on one connection.' }], 'GET /longpolling/messages: 400')
  const stream = await openStream(base, ann, `/sse/events?${three}`)
  t.equal(stream.status, 400, 'GET /sse/events: 400')
  stream.close()
  const resumed = await openStream(base, ann, '/sse/events?cursor=lobby::', { 'last-event-id': 'lobby::1,dev::1,ops::1' })
  t.equal(resumed.status, 400, 'GET /sse/events resumed with three rooms in Last-Event-ID: 400')
  resumed.close()
  t.equal(app.chatroom.subscriberCount, 0, 'nothing entered')
})

t.test("the flood limit counts the event stream's POSTs and a socket of several rooms' frames, across rooms", async (t) => {
  const app = await buildTestApp(t, { RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '60' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')
  t.equal((await post(app, ann, '/rooms', { name: 'dev' })).statusCode, 201)
  t.equal((await post(app, ann, '/sse/room/messages', { text: 'one' })).statusCode, 201, 'the lobby, by the event stream\'s POST')
  const multi = await RoomsClient.open(base, ann)
  t.teardown(() => multi.close())
  multi.send({ type: 'subscribe', room: 'dev' })
  await multi.next((f) => f.type === 'subscribed', 'subscribed')
  multi.send({ type: 'say', room: 'dev', text: 'two', ref: 'a' })
  const two = await multi.next((f) => f.ref === 'a', 'the ack')
  t.match(two, { type: 'ack', room: 'dev' }, 'dev, by a frame on the socket of several rooms')

  const third = await post(app, ann, '/sse/rooms/dev/messages', { text: 'three' })
  t.same([third.statusCode, third.json().error], [429, 'Too Many Requests'], 'the third, by POST in dev: 429')
  t.match(third.headers['retry-after'], /^\d+$/)
  multi.send({ type: 'say', room: 'dev', text: 'four', ref: 'b' })
  multi.send({ type: 'edit', room: 'dev', id: two.id, text: 'two, edited', ref: 'c' })
  t.match(await multi.next((f) => f.ref === 'b', 'the refusal'), { room: 'dev', error: 'Too Many Requests', retryAfter: Number }, 'a say frame: refused')
  t.match(await multi.next((f) => f.ref === 'c', 'the refusal'), { room: 'dev', error: 'Too Many Requests' }, 'an edit frame counts too')
  t.same(texts(await history(app, ann, 'lobby')), ['one'])
  const dev = await history(app, ann, 'dev')
  t.same(texts(dev), ['two'], 'nothing over the limit was said')
  t.notOk(dev.some((e) => e.type === 'edit'), 'nor edited')
})

t.test("message text on the event stream's and the socket page's POSTs and on a socket of several rooms: at most MAX_MESSAGE_LENGTH, well-formed", async (t) => {
  const app = await buildTestApp(t, { MAX_MESSAGE_LENGTH: '10' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')
  t.equal((await post(app, ann, '/rooms', { name: 'dev' })).statusCode, 201)
  for (const url of ['/sse/room/messages', '/websocket/room/messages', '/sse/rooms/dev/messages', '/websocket/rooms/dev/messages']) {
    const res = await post(app, ann, url, { text: 'x'.repeat(11) })
    t.match([res.statusCode, res.json()], [400, { error: 'Bad Request', message: /at most 10/ }], `POST ${url}: 400`)
  }
  const multi = await RoomsClient.open(base, ann)
  t.teardown(() => multi.close())
  multi.send({ type: 'subscribe', room: 'dev' })
  await multi.next((f) => f.type === 'subscribed', 'subscribed')
  multi.send({ type: 'say', room: 'dev', text: 'short', ref: 'ok' })
  const ok = await multi.next((f) => f.ref === 'ok', 'the ack')
  multi.send({ type: 'say', room: 'dev', text: 'x'.repeat(11), ref: 'long' })
  multi.send({ type: 'edit', room: 'dev', id: ok.id, text: 'y'.repeat(11), ref: 'longer' })
  multi.send('{"type":"say","room":"dev","text":"a\\ud800b","ref":"lone"}')
  t.match(await multi.next((f) => f.ref === 'long', 'the refusal'), { room: 'dev', error: 'Bad Request', message: /at most 10/ }, 'a say frame too long')
  t.match(await multi.next((f) => f.ref === 'longer', 'the refusal'), { room: 'dev', error: 'Bad Request', message: /at most 10/ }, 'an edit frame too long')
  t.match(await multi.next((f) => f.ref === 'lone', 'the refusal'), { room: 'dev', error: 'Bad Request', message: /well-formed/ }, 'a lone surrogate')
  const dev = await history(app, ann, 'dev')
  t.same(texts(dev), ['short'], 'only the short one was said')
  t.notOk(dev.some((e) => e.type === 'edit'), 'and not edited')
  t.same(texts(await history(app, ann, 'lobby')), [])
})

t.test('cursors on the connections of several rooms, the one-room event stream and the refresh thread: another epoch, ahead, too far behind: 409 with where the room stands', async (t) => {
  const app = await buildTestApp(t, { ARCHIVE_SIZE: '5', RESUME_MAX_EVENTS: '10' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')
  t.equal((await post(app, ann, '/rooms', { name: 'dev' })).statusCode, 201)
  const dev = await app.chatroom.room('dev')
  for (let i = 0; i < 20; i++) await dev.post('bob', `n${i}`)
  // Her join line (she made the room), then the twenty.
  const { epoch, lastId } = dev
  t.equal(lastId, 21)
  const cases: [string, string, Record<string, unknown>][] = [
    ['another epoch', `dev:elsewhere:1`, { reason: 'epoch', epoch, lastId }],
    ['ahead', `dev:${epoch}:500`, { reason: 'ahead', epoch, lastId }],
    ['too far behind', `dev:${epoch}:3`, { reason: 'behind', epoch, lastId }],
  ]
  const multi = await RoomsClient.open(base, ann)
  t.teardown(() => multi.close())
  for (const [what, cursor, refusal] of cases) {
    const poll = await get(app, ann, `/longpolling/messages?cursor=${cursor}`)
    t.match(poll.json(), { events: [], refused: [{ room: 'dev', error: 'Conflict', ...refusal }] }, `GET /longpolling/messages, ${what}`)
    const stream = await openStream(base, ann, `/sse/events?cursor=${cursor}`)
    await stream.expect(() => stream.ended, 'the stream to end')
    t.match(stream.named('refused'), [{ room: 'dev', status: 409, ...refusal }], `GET /sse/events, ${what}`)
    // The messages' texts, quoted (an epoch is random letters and digits: "n2" may be in it).
    t.notMatch(stream.text, /"text":"n\d/, `GET /sse/events, ${what}: no event`)
    const [, frameEpoch, id] = cursor.split(':')
    multi.send({ type: 'subscribe', room: 'dev', epoch: frameEpoch, lastReceived: Number(id) })
    t.match(await multi.next((f) => f.type === 'refused' || f.type === 'subscribed', 'an answer'), { type: 'refused', room: 'dev', status: 409, ...refusal }, `/websocket/socket, ${what}`)
    multi.frames.length = 0
  }

  // The one-room paths the other tests leave out: the event stream ahead; the refresh page's thread ahead and too far behind.
  for (let i = 0; i < 20; i++) await app.chatroom.post('bob', `l${i}`)
  const lobby = { epoch: app.chatroom.epoch, lastId: app.chatroom.lastId }
  const stream = await openStream(base, ann, `/sse/room/events?lastReceived=500&epoch=${lobby.epoch}`)
  await stream.expect(() => stream.ended, 'the stream to end')
  t.match(stream.named('refused'), [{ status: 409, reason: 'ahead', ...lobby }], 'GET /sse/room/events, ahead')
  for (const [what, id] of [['ahead', 500], ['behind', 3]] as const) {
    const thread = await get(app, ann, `/refresh/room/thread?lastReceived=${id}&epoch=${lobby.epoch}`)
    t.match([thread.statusCode, thread.statusCode === 409 ? thread.json() : thread.body], [409, { reason: what, ...lobby }], `GET /refresh/room/thread, ${what}`)
  }
  t.equal(app.chatroom.subscriberCount, 0, 'no reader left behind')
})

t.test('a socket of several rooms closes after five invalid frames in a row (1007), and on an oversized frame (1009)', async (t) => {
  const app = await buildTestApp(t, { MAX_MESSAGE_LENGTH: '10' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')
  const garbage = await RoomsClient.open(base, ann)
  for (let i = 0; i < 10; i++) garbage.send('garbage')
  t.match(await garbage.untilClosed(), { code: 1007, reason: 'too many invalid frames' })
  t.equal(garbage.frames.filter((f) => f.error === 'Bad Request').length, 4, 'four errors, then the close')
  const big = await RoomsClient.open(base, ann)
  big.send({ type: 'say', room: 'lobby', text: 'x'.repeat(10_000) })
  t.equal((await big.untilClosed()).code, 1009)
  t.same(texts(await history(app, ann, 'lobby')), [])
})

t.test("read markers: a marker past the room's last id is held at it, a bad id is 400", async (t) => {
  const app = await buildTestApp(t)
  const ann = await account(app, 'ann')
  const bob = await account(app, 'bob')
  await post(app, ann, '/rooms', { name: 'dev' })
  await post(app, bob, '/rooms/dev/join')
  for (const text of ['one', 'two']) await post(app, ann, '/longpolling/rooms/dev/messages', { text })
  for (const id of ['abc', '-1', '1.5', 'Infinity']) t.equal((await post(app, bob, '/rooms/dev/read', { id })).statusCode, 400, `id ${JSON.stringify(id)}: 400`)
  t.equal((await post(app, bob, '/rooms/dev/read', { id: 1_000_000 })).statusCode, 204, 'far past the last id: taken as the last id')
  await post(app, ann, '/longpolling/rooms/dev/messages', { text: 'three' })
  const dev = (await get(app, bob, '/rooms')).json<{ rooms: { name: string; unread: number }[] }>().rooms.find((r) => r.name === 'dev')!
  t.equal(dev.unread, 1, 'the next message is unread: the marker did not run ahead of the room')
})

t.test('a message belongs to its sender\'s id, not the name: someone signing in later with the same name cannot edit or delete it', async (t) => {
  const app = await buildTestApp(t)
  const first = await guest(app, 'ann', 'longpolling')
  const said = await post(app, first, '/longpolling/room/messages', { text: 'the first ann' })
  t.equal(said.statusCode, 201)
  const id = said.json<Event>().id
  t.equal((await app.inject({ method: 'POST', url: '/signout', headers: { cookie: first } })).statusCode, 303)
  let again = await app.inject({ method: 'POST', url: '/signin', payload: { user: 'ann', transport: 'longpolling' } })
  for (let i = 0; i < 50 && again.statusCode !== 303; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    again = await app.inject({ method: 'POST', url: '/signin', payload: { user: 'ann', transport: 'longpolling' } })
  }
  t.equal(again.statusCode, 303, 'another person signs in as ann once the first one left')
  const second = cookieOf(again)
  t.equal((await post(app, second, `/room/messages/${id}/edit`, { text: 'the second ann' })).statusCode, 403, 'an edit: 403')
  t.equal((await post(app, second, `/room/messages/${id}/delete`)).statusCode, 403, 'a deletion: 403')
  t.same(texts(await history(app, second, 'lobby')), ['the first ann'])
})
