import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, eventually, registerAccount as account, EventStream, RoomsClient, signIn as guest, SocketClient } from './helpers.js'

// The rules that hold on every way in, checked on the ways that carry several rooms (and the
// one-room socket beside them): a private room one may not read is not found on the event
// stream of several rooms; only the sender edits or deletes, by frame too; the socket of several
// rooms ends with its session; and leaving a private room ends every live reader of it at once.

const post = (app: FastifyInstance, cookie: string, url: string, payload: Record<string, string> = {}) => app.inject({ method: 'POST', url, payload, headers: { cookie } })
const history = async (app: FastifyInstance, cookie: string, room: string) =>
  (await app.inject({ url: room === 'lobby' ? '/room/history' : `/rooms/${room}/history`, headers: { cookie, accept: 'application/json' } })).json<{ events: Event[] }>().events

/** Whether the promise settles within `ms` (a generous bound: a failure here means it never did). */
const settlesWithin = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true, () => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms).unref())])

/** An event stream of the app's, closed when the test ends. */
async function openStream(t: { teardown(fn: () => unknown): void }, url: string, headers: Record<string, string>): Promise<EventStream> {
  const stream = await EventStream.open(url, headers)
  t.teardown(() => stream.close())
  return stream
}

/** ann (an account) owns the private room `secret`, with a message in it, and the public room `dev`. */
async function setUp(t: Test, env: Record<string, string> = {}) {
  const app = await buildTestApp(t, env)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await account(app, 'ann')
  t.equal((await post(app, ann, '/rooms', { name: 'dev' })).statusCode, 201)
  t.equal((await post(app, ann, '/rooms', { name: 'secret', visibility: 'private' })).statusCode, 201)
  t.equal((await post(app, ann, '/longpolling/rooms/secret/messages', { message: 'the plan' })).statusCode, 201)
  return { app, base, ann }
}

t.test('the event stream of several rooms: a private room one is no member of is refused as not found, and none of its events come', async (t) => {
  const { app, base, ann } = await setUp(t)
  const eve = await account(app, 'eve')
  const refusal = /event: refused\ndata: (\{[^\n]*"room":"secret"[^\n]*\})\n/

  const stream = await openStream(t, `${base}/sse/events?cursor=dev::&cursor=secret::`, { cookie: eve })
  t.ok(await stream.until((s) => /event: hello\n/.test(s.text) && refusal.test(s.text)), 'the hello and a refusal')
  t.match(JSON.parse(refusal.exec(stream.text)?.[1] ?? '{}'), { room: 'secret', status: 404, error: 'Not Found', message: 'No such room.' }, 'secret: 404, as a room that does not exist')
  t.match(stream.text, /event: hello\ndata: \{"type":"hello","rooms":\{"dev":\{[^}]*\}\}\}\n/, 'the hello names dev alone')
  await post(app, ann, '/longpolling/rooms/secret/messages', { message: 'the plan, live' })
  await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'dev news' })
  t.ok(await stream.until((s) => s.text.includes('dev news')), 'dev goes on')
  t.notMatch(stream.text, /the plan/, 'nothing of secret: neither its window nor what is said in it now')
  t.notMatch(stream.text, /"room":"secret","id"/, 'no event of secret at all')
  stream.close()

  // Asking for secret alone: the refusal, and the stream ends.
  const alone = await openStream(t, `${base}/sse/events?cursor=secret::`, { cookie: eve })
  t.ok(await alone.until((s) => s.ended), 'the stream of secret alone ends')
  t.match(alone.text, refusal, 'saying secret is refused')
  t.match(JSON.parse(refusal.exec(alone.text)?.[1] ?? '{}'), { status: 404 })
  t.notMatch(alone.text, /event: hello|the plan/, 'with no hello and nothing of it')

  // A resume (Last-Event-ID, as the browser sends it) that names secret: the same refusal.
  const resumed = await openStream(t, `${base}/sse/events?cursor=dev::`, { cookie: eve, 'last-event-id': 'dev::1,secret::0' })
  t.ok(await resumed.until((s) => refusal.test(s.text) && /event: hello\n/.test(s.text)), 'a resume naming secret: refused too')
  t.match(JSON.parse(refusal.exec(resumed.text)?.[1] ?? '{}'), { status: 404 })
  await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'dev later' })
  t.ok(await resumed.until((s) => s.text.includes('dev later')), 'dev goes on')
  t.notMatch(resumed.text, /the plan/, 'nothing of secret from its cursor either')
  resumed.close()
})

t.test("editing or deleting someone else's message by a frame: Forbidden on the one-room socket and the socket of several rooms; the message stays as it was", async (t) => {
  const { app, base, ann } = await setUp(t)
  const bob = await guest(app, 'bob')
  const said = async (room: string, text: string) => {
    const res = await post(app, ann, room === 'lobby' ? '/longpolling/room/messages' : `/longpolling/rooms/${room}/messages`, { message: text })
    t.equal(res.statusCode, 201)
    return res.json<Event>().id
  }
  const unchanged = async (room: string, id: number, text: string, where: string) => {
    const events = await history(app, ann, room)
    const message = events.find((e) => e.id === id)
    t.match(message, { type: 'message', user: 'ann', text }, `${where}: the message keeps its text`)
    t.notOk(message?.edited ?? message?.deleted, `${where}: neither edited nor deleted`)
    t.notOk(events.some((e) => (e.type === 'edit' || e.type === 'delete') && e.ref === id), `${where}: no edit or delete in the history`)
  }

  // The one-room socket, in the lobby and in a room.
  for (const [room, path] of [['lobby', '/websocket/room/socket'], ['dev', '/websocket/rooms/dev/socket']] as const) {
    const id = await said(room, `ann's words in ${room}`)
    const socket = await SocketClient.open(base, bob, '', {}, path)
    t.teardown(() => socket.close())
    await socket.until(() => socket.hello !== undefined, 'hello')
    socket.send({ type: 'edit', id, text: 'hijacked', ref: 'edit' })
    socket.send({ type: 'delete', id, ref: 'delete' })
    const answered = (ref: string) => socket.errors.some((e) => e.ref === ref) || socket.acks.some((a) => a.ref === ref)
    await socket.until(() => answered('edit') && answered('delete'), 'both frames answered')
    for (const ref of ['edit', 'delete']) {
      t.match(socket.errors.find((e) => e.ref === ref), { error: 'Forbidden', message: /your own/ }, `${path}: ${ref === 'edit' ? 'an edit' : 'a delete'} frame of someone else's message: an error frame, Forbidden`)
      t.notOk(socket.acks.some((a) => a.ref === ref), `${path}: the ${ref} is not acknowledged`)
    }
    t.equal(socket.closed, undefined, `${path}: the socket stays open`)
    await unchanged(room, id, `ann's words in ${room}`, path)
  }

  // The socket of several rooms.
  const id = await said('dev', 'ann in dev again')
  const multi = await RoomsClient.open(base, bob)
  t.teardown(() => multi.close())
  t.match(await multi.subscribe('dev'), { type: 'subscribed', room: 'dev' })
  multi.send({ type: 'edit', room: 'dev', id, text: 'hijacked', ref: 'edit' })
  multi.send({ type: 'delete', room: 'dev', id, ref: 'delete' })
  t.ok(await multi.until(() => ['edit', 'delete'].every((ref) => multi.find((f) => f.ref === ref))), 'both frames answered')
  for (const ref of ['edit', 'delete']) {
    t.match(multi.find((f) => f.ref === ref), { room: 'dev', error: 'Forbidden', message: /your own/ }, `/websocket/socket: ${ref === 'edit' ? 'an edit' : 'a delete'} frame of someone else's message: an error frame, Forbidden`)
  }
  t.notOk(multi.events('dev').some((e) => e.type === 'edit' || e.type === 'delete'), 'no edit or delete event reaches the room')
  await unchanged('dev', id, 'ann in dev again', '/websocket/socket')
})

t.test('the socket of several rooms is bound to its session: signing out closes it (4401)', async (t) => {
  const { app, base } = await setUp(t)
  const bob = await guest(app, 'bob')
  const client = await RoomsClient.open(base, bob)
  t.teardown(() => client.close())
  t.match(await client.subscribe('lobby'), { type: 'subscribed' })
  t.match(await client.subscribe('dev'), { type: 'subscribed' })
  const out = await app.inject({ method: 'POST', url: '/signout', headers: { cookie: bob, accept: 'text/html' } })
  t.equal(out.statusCode, 303)
  t.same(await client.closedWithin(), { code: 4401, reason: 'signed out' }, 'the socket closes, as the one-room socket does')
  t.equal((await app.inject({ url: '/room/users', headers: { cookie: bob } })).statusCode, 401, 'and the cookie no longer works')
})

t.test('the socket of several rooms is bound to its session: an account ending that session from another device closes it (4401)', async (t) => {
  const { app, base } = await setUp(t)
  const one = await account(app, 'alice')
  const signedIn = await app.inject({ method: 'POST', url: '/signin', payload: { user: 'alice', password: 'a long enough password', transport: 'websocket' } })
  t.equal(signedIn.statusCode, 303)
  const two = `chat_session=${signedIn.cookies.find((c) => c.name === 'chat_session')!.value}`
  const client = await RoomsClient.open(base, one)
  t.teardown(() => client.close())
  t.match(await client.subscribe('dev'), { type: 'subscribed' })
  const list = (await app.inject({ url: '/account/sessions', headers: { cookie: two } })).json<{ sessions: { id: string; current: boolean }[] }>()
  const ended = await post(app, two, '/account/sessions/end', { id: list.sessions.find((s) => !s.current)!.id })
  t.same(ended.json(), { ended: 1 })
  t.same(await client.closedWithin(), { code: 4401, reason: 'signed out' }, 'the ended session\'s socket of several rooms closes')
  t.equal((await app.inject({ url: '/rooms', headers: { cookie: one } })).statusCode, 401, 'its cookie is signed out')
})

t.test('leaving a private room ends every live reader of it at once: sockets, event streams and a waiting long poll; nothing said after reaches them, and a send is refused', async (t) => {
  const { app, base, ann } = await setUp(t, { LONGPOLL_TIMEOUT: '50' })
  const eve = await account(app, 'eve')
  t.match((await post(app, ann, '/rooms/secret/invite', { user: 'eve' })).json(), { ok: true, added: true })

  const socket = await SocketClient.open(base, eve, '', {}, '/websocket/rooms/secret/socket')
  t.teardown(() => socket.close())
  await socket.until(() => socket.events.some((e) => e.text === 'the plan'), 'the one-room socket reads secret')
  const multi = await RoomsClient.open(base, eve)
  t.teardown(() => multi.close())
  t.match(await multi.subscribe('secret'), { type: 'subscribed' })
  t.match(await multi.subscribe('dev'), { type: 'subscribed' })
  t.ok(await multi.until(() => multi.events('secret').some((e) => e.text === 'the plan')), 'the socket of several rooms reads secret')
  const stream = await openStream(t, `${base}/sse/rooms/secret/events`, { cookie: eve })
  t.ok(await stream.until((s) => s.text.includes('the plan')), 'the one-room stream reads secret')
  const streams = await openStream(t, `${base}/sse/events?cursor=secret::&cursor=dev::`, { cookie: eve })
  t.ok(await streams.until((s) => s.text.includes('the plan')), 'the stream of several rooms reads secret')
  const first = (await app.inject({ url: '/longpolling/messages?cursor=secret::&cursor=dev::', headers: { cookie: eve } })).json<{ rooms: Record<string, { epoch: string; lastId: number }> }>()
  const cursors = Object.entries(first.rooms).map(([room, { epoch, lastId }]) => `cursor=${room}:${epoch}:${lastId}`).join('&')
  t.match(cursors, /secret:.*dev:/, 'the poll reads both')
  const waitingBefore = app.chatroom.waitingCount
  const poll = app.inject({ url: `/longpolling/messages?${cursors}`, headers: { cookie: eve } })
  await eventually(() => app.chatroom.waitingCount >= waitingBefore + 2, 'the long poll to wait on both rooms')

  t.equal((await post(app, eve, '/rooms/secret/leave')).statusCode, 200, 'eve leaves secret')

  t.match(await socket.untilClosed().catch(() => undefined), { code: 4001, reason: 'you left the room' }, 'the one-room socket: closed, 4001')
  t.ok(await multi.until(() => multi.find((f) => f.type === 'unsubscribed' && f.room === 'secret') !== undefined), 'the socket of several rooms drops secret')
  t.match(multi.find((f) => f.type === 'unsubscribed' && f.room === 'secret'), { reason: 'left' })
  t.equal(multi.closed, undefined, 'and stays open for dev')
  t.ok(await stream.until((s) => s.ended), 'the one-room stream ends')
  t.match(stream.text, /event: left\n/, 'saying she left')
  t.ok(await streams.until((s) => s.ended), 'the stream of several rooms ends')
  t.match(streams.text, /event: left\n/, 'saying she left')
  t.ok(await settlesWithin(poll, 10_000), 'the waiting long poll answers at once, not after LONGPOLL_TIMEOUT')

  // What is said in secret from now on reaches none of them.
  await post(app, ann, '/longpolling/rooms/secret/messages', { message: 'after she left' })
  await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'dev after' })
  t.ok(await multi.until(() => multi.events('dev').some((e) => e.text === 'dev after')), 'dev goes on on the socket of several rooms')
  const answered = (await poll).json<{ events: (Event & { room: string })[] }>()
  t.notOk(answered.events.some((e) => e.room === 'secret'), 'the poll answered with nothing of secret')
  for (const [what, texts] of [
    ['the one-room socket', socket.events.map((e) => e.text)],
    ['the socket of several rooms', multi.frames.flatMap((f) => f.events ?? []).map((e) => e.text)],
    ['the one-room stream', [stream.text]],
    ['the stream of several rooms', [streams.text]],
  ] as const) {
    t.notOk(texts.some((text) => text?.includes('after she left')), `${what}: nothing said after she left`)
  }
  const next = (await app.inject({ url: `/longpolling/messages?${cursors}`, headers: { cookie: eve } })).json<{ events: (Event & { room: string })[]; refused: { room: string; error: string }[] }>()
  t.match(next.refused, [{ room: 'secret', error: 'Not Found' }], 'the next poll: secret no longer exists for her')
  t.notOk(next.events.some((e) => e.room === 'secret'), 'and nothing of it')
  t.match(await multi.subscribe('secret'), { type: 'refused', status: 404 }, 'subscribing again: 404')

  // A send after leaving is refused, and nothing of hers is added.
  t.equal((await post(app, eve, '/longpolling/rooms/secret/messages', { message: 'still here?' })).statusCode, 404, 'a send over HTTP: 404')
  t.equal((await post(app, eve, '/websocket/rooms/secret/messages', { message: 'still here?' })).statusCode, 404, 'the socket page\'s form: 404')
  multi.send({ type: 'say', room: 'secret', text: 'still here?', ref: 'late' })
  const late = () => multi.find((f) => f.ref === 'late' || (f.room === 'secret' && f.message === 'Subscribe to the room first.'))
  t.ok(await multi.until(() => late() !== undefined), 'the frame is answered')
  t.match(late(), { room: 'secret', error: 'Bad Request' }, 'a say frame to secret is refused, not acknowledged')
  t.notOk((await history(app, ann, 'secret')).some((e) => e.text === 'still here?'), 'nothing of hers in secret')
})
