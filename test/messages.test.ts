import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, signIn as guest, SocketClient, registerAccount as account } from './helpers.js'

// Edits and deletions of one's own messages (every transport sees them; history shows the message
// as it stands; a deleted text is gone), and search across the rooms a person can read.


const post = (app: FastifyInstance, cookie: string, url: string, payload: Record<string, unknown> = {}) =>
  app.inject({ method: 'POST', url, payload, headers: { cookie, 'content-type': 'application/json' } })
const getJson = async <T>(app: FastifyInstance, cookie: string, url: string): Promise<T> =>
  (await app.inject({ url, headers: { cookie, accept: 'application/json' } })).json<T>()
const history = (app: FastifyInstance, cookie: string, room = '') =>
  getJson<{ events: Event[] }>(app, cookie, room ? `/rooms/${room}/history` : '/room/history').then((h) => h.events)

t.test('edit and delete over HTTP: only one\'s own message; every reader gets the events; history shows it as it stands', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')
  const bob = await guest(app, 'bob')
  const watcher = await SocketClient.open(base, bob)
  t.teardown(() => watcher.close())
  const said = (await post(app, ann, '/longpolling/room/messages', { text: 'teh plan', clientId: 'edit-test-1' })).json<Event>()
  const bobs = (await post(app, bob, '/sse/room/messages', { text: 'mine' })).json<Event>()

  const edited = await post(app, ann, `/room/messages/${said.id}/edit`, { text: 'the plan' })
  t.equal(edited.statusCode, 201, 'an edit: 201')
  t.match(edited.json(), { type: 'edit', ref: said.id, text: 'the plan', user: 'ann' })
  t.equal((await post(app, bob, `/room/messages/${said.id}/edit`, { text: 'hijacked' })).statusCode, 403, "someone else's message: 403")
  t.equal((await post(app, bob, `/room/messages/${said.id}/delete`)).statusCode, 403)
  t.match((await post(app, bob, `/room/messages/${said.id}/delete`)).json(), { message: /your own/ }, 'saying why')
  t.equal((await post(app, ann, '/room/messages/9999/edit', { text: 'x' })).statusCode, 404, 'no such message: 404')
  t.equal((await post(app, ann, `/room/messages/${bobs.id + 1}/edit`, { text: 'x' })).statusCode, 404, 'an edit event is not a message')
  t.equal((await post(app, ann, '/room/messages/abc/delete')).statusCode, 404)
  t.equal((await post(app, ann, `/room/messages/${said.id}/edit`, { text: '   ' })).statusCode, 400, 'an empty edit: 400')
  t.equal((await post(app, ann, `/room/messages/${said.id}/edit`, { text: 'x'.repeat(2001) })).statusCode, 400, 'too long: 400, never cut')

  let window = await history(app, ann)
  t.match(window.find((e) => e.id === said.id), { text: 'the plan', edited: Number }, 'history: the new text, marked edited')
  const deleted = await post(app, ann, `/room/messages/${said.id}/delete`)
  t.equal(deleted.statusCode, 201)
  t.match(deleted.json(), { type: 'delete', ref: said.id })
  t.equal((await post(app, ann, `/room/messages/${said.id}/delete`)).statusCode, 404, 'deleting it again: 404')
  t.equal((await post(app, ann, `/room/messages/${said.id}/edit`, { text: 'back' })).statusCode, 404, 'a deleted message cannot be edited')

  window = await history(app, ann)
  t.match(window.find((e) => e.id === said.id), { deleted: true }, 'history: deleted')
  t.notOk(JSON.stringify(window).includes('plan'), 'no text of it anywhere in the history, the edit either')
  await watcher.until(() => watcher.events.some((e) => e.type === 'delete'), 'the delete on a socket')
  t.same(
    watcher.events.filter((e) => e.type === 'edit' || e.type === 'delete').map((e) => [e.type, e.ref]),
    [
      ['edit', said.id],
      ['delete', said.id],
    ],
    'a reader gets the edit and the deletion as events',
  )
  const resend = await post(app, ann, '/longpolling/room/messages', { text: 'teh plan', clientId: 'edit-test-1' })
  t.equal(resend.statusCode, 200, 'a resend of the deleted message posts nothing')
  t.match(resend.json(), { id: said.id, deleted: true })

  // A fresh reader (a page load) gets the window as it stands.
  const fresh = await SocketClient.open(base, ann)
  t.teardown(() => fresh.close())
  await fresh.until(() => fresh.events.some((e) => e.id === said.id), 'the window')
  t.match(fresh.events.find((e) => e.id === said.id), { deleted: true })
  t.notOk(fresh.events.some((e) => e.text?.includes('plan')), 'the window holds no deleted text')
})

t.test('edit and delete frames on a socket, and on a socket of several rooms', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await guest(app, 'ann')
  const socket = await SocketClient.open(base, ann)
  t.teardown(() => socket.close())
  await socket.until(() => socket.hello !== undefined, 'hello')
  socket.send({ text: 'first', clientId: 'frame-test-1', ref: 'a' })
  await socket.until(() => socket.acks.some((a) => a.ref === 'a'), 'ack')
  const id = socket.acks.find((a) => a.ref === 'a')!.id
  socket.send({ type: 'edit', id, text: 'first, fixed', ref: 'b' })
  socket.send({ type: 'delete', id: 9999, ref: 'c' })
  socket.send({ type: 'edit', id: 'x', text: 'no' })
  await socket.until(() => socket.acks.some((a) => a.ref === 'b') && socket.errors.length >= 2, 'answers')
  t.match(socket.errors.find((e) => e.ref === 'c'), { error: 'Not Found' }, 'a missing message: Not Found, with its ref')
  t.match(socket.errors.find((e) => e.ref === undefined), { error: 'Bad Request', message: /"type": "edit", "id"/ }, 'a frame with no message id: Bad Request, saying the frames')
  await socket.until(() => socket.events.some((e) => e.type === 'edit'), 'the edit event')
  t.match(socket.events.find((e) => e.type === 'edit'), { ref: id, text: 'first, fixed' })

  // The socket of several rooms: a room's frames.
  await post(app, ann, '/rooms', { name: 'dev' })
  const multi = await SocketClient.open(base, ann, '', {}, '/websocket/socket')
  t.teardown(() => multi.close())
  const frames: Record<string, unknown>[] = []
  multi.ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>))
  multi.send({ type: 'subscribe', room: 'dev' })
  await multi.until(() => frames.some((f) => f.type === 'subscribed'), 'subscribed')
  multi.send({ type: 'say', room: 'dev', text: 'in dev', clientId: 'multi-frame-1', ref: 's' })
  await multi.until(() => frames.some((f) => f.ref === 's'), 'ack')
  const devId = frames.find((f) => f.ref === 's')!.id as number
  multi.send({ type: 'say', room: 'dev', text: 'in dev', clientId: 'multi-frame-1', ref: 's2' })
  multi.send({ type: 'delete', room: 'dev', id: devId, ref: 'd' })
  await multi.until(() => frames.some((f) => f.ref === 'd'), 'ack of the delete')
  t.match(frames.find((f) => f.ref === 's2'), { type: 'ack', room: 'dev', id: devId, duplicate: true }, 'a resend on it answers the first id')
  t.match(frames.find((f) => f.ref === 'd'), { type: 'ack', room: 'dev' })
  const dev = await history(app, ann, 'dev')
  t.same(
    dev.filter((e) => e.type !== 'join').map((e) => [e.type, e.deleted ?? false]),
    [
      ['message', true],
      ['delete', false],
    ],
    "dev's log: the message (deleted) once, and its deletion",
  )
})

t.test('search: words, person and dates across the rooms one can read, never a room one cannot; linked in context', async (t) => {
  const app = await buildTestApp(t)
  const ann = await account(app, 'ann')
  const eve = await account(app, 'eve')
  await post(app, ann, '/longpolling/room/messages', { text: 'release notes for friday' })
  t.equal((await post(app, ann, '/rooms', { name: 'ops', visibility: 'private' })).statusCode, 201)
  t.equal((await post(app, ann, '/rooms', { name: 'open' })).statusCode, 201)
  await post(app, ann, '/longpolling/rooms/ops/messages', { text: 'release keys rotated' })
  await post(app, eve, '/longpolling/rooms/open/messages', { text: 'Release party!' })

  type Results = { results: { room: string; id: number; user: string; text: string; timestamp: number; link: string }[] }
  const search = (cookie: string, query: string) => app.inject({ url: `/search?${query}`, headers: { cookie, accept: 'application/json' } })
  const annSees = (await search(ann, 'q=release')).json<Results>().results
  t.same(annSees.map((r) => `${r.room}:${r.text}`), ['open:Release party!', 'ops:release keys rotated', 'lobby:release notes for friday'], 'newest first, in every room ann can read')
  t.match(annSees[1], { room: 'ops', user: 'ann', id: Number, timestamp: Number, link: /^\/refresh\/rooms\/ops\?before=\d+&epoch=[\w-]+#m\d+$/ })
  const eveSees = (await search(eve, 'q=release')).json<Results>().results
  t.same(eveSees.map((r) => r.room).sort(), ['lobby', 'open'], "eve never sees the private room's message")
  t.equal((await search(eve, 'q=keys&room=ops')).statusCode, 404, 'asking for a room one cannot read: 404, as if it did not exist')
  t.equal((await search(eve, 'q=keys&room=nowhere')).statusCode, 404)
  t.same((await search(ann, 'q=release&user=EVE')).json<Results>().results.map((r) => r.text), ['Release party!'], 'by person')
  t.same((await search(ann, 'q=release&room=lobby')).json<Results>().results.map((r) => r.text), ['release notes for friday'], 'in one room')
  t.same((await search(ann, 'q=release&before=2000-01-01')).json<Results>().results, [], 'by date')
  t.equal((await search(ann, 'q=release&after=2000-01-01')).json<Results>().results.length, 3)
  t.equal((await search(ann, 'q=release&after=yesterday-ish')).statusCode, 400, 'a date that is none: 400')
  t.match((await search(ann, `q=${'x'.repeat(201)}`)).json(), { error: 'Bad Request', message: /200/ })
  t.same((await search(ann, 'q=')).json(), { results: [] })
  // The link opens the room's page around the message.
  const page = await app.inject({ url: annSees[1]!.link.split('#')[0]!, headers: { cookie: ann, accept: 'text/html' } })
  t.equal(page.statusCode, 200)
  t.match(page.body, 'release keys rotated', 'the linked page shows the message')
  // A browser gets the search page, escaped.
  await post(app, ann, '/longpolling/room/messages', { text: 'release <img src=x onerror=alert(1)>' })
  const html = await app.inject({ url: '/search?q=release', headers: { cookie: ann, accept: 'text/html' } })
  t.equal(html.statusCode, 200)
  t.notMatch(html.body, '<img src=x', 'a message is never HTML on the search page')
  t.match(html.body, '&lt;img src=x')
})
