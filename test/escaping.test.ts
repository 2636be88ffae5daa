import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, enter, refusedSignIn, signIn, SocketClient } from './helpers.js'

// Escaping without a browser: what a hostile name or message becomes in every HTML page and
// fragment, and that every JSON answer carries it back byte for byte, as JSON.
const NAME = '<img src=x onerror=alert(1)>"\''
const TEXT = '<script>alert("t")</script><b onclick=\'x\'>&amp;</b>'

/** What eta's autoEscape makes of a string (&, <, >, " and '). */
function escaped(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;')
}

/** The body holds the escaped form and not one raw tag from the input. */
function assertEscaped(t: Test, body: string, raw: string, where: string) {
  t.ok(body.includes(escaped(raw)), `${where}: shows ${JSON.stringify(raw)} escaped`)
  for (const tag of raw.match(/<[a-z][^>]*>?/gi) ?? []) t.notOk(body.includes(tag), `${where}: no raw ${tag}`)
}

t.test('a hostile name and message come back escaped in every page, fragment and online list', async (t) => {
  const app = await buildTestApp(t)
  const mallory = await signIn(app, NAME, 'refresh')
  const ann = await signIn(app, 'ann', 'refresh')
  await enter(app, mallory, 'refresh')
  const said = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: mallory }, payload: { message: TEXT } })
  t.equal(said.statusCode, 201, 'a program posting to the refresh form gets long polling\'s answer')

  for (const [who, cookie] of [['another reader', ann], ['the hostile user', mallory]] as const) {
    const room = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie } })
    assertEscaped(t, room.body, TEXT, `/refresh/room for ${who}: message`)
    const thread = await app.inject({ method: 'GET', url: '/refresh/room/thread', headers: { cookie } })
    assertEscaped(t, thread.body, TEXT, `thread fragment for ${who}: message`)
    assertEscaped(t, thread.body, NAME, `thread fragment for ${who}: online list and join`)
    t.match(thread.body, `data-name="${escaped(NAME)}"`, `${who}: the online list's attribute is escaped too`)
  }
  // The hostile user's own pages carry the name in the header, the room's data attribute and the list.
  for (const url of ['/refresh/room', '/longpolling/room', '/websocket/room']) {
    const own = await app.inject({ method: 'GET', url, headers: { cookie: mallory } })
    assertEscaped(t, own.body, NAME, `${url} for the hostile user`)
    t.match(own.body, `data-user="${escaped(NAME)}"`, `${url}: data-user escaped`)
    const other = await app.inject({ method: 'GET', url, headers: { cookie: ann } })
    assertEscaped(t, other.body, NAME, `${url} online list for another reader`)
  }
  // The welcome page echoes a refused name back into its field, escaped.
  const { page: refused } = await refusedSignIn(app, { user: `${NAME}${'x'.repeat(40)}`, transport: 'refresh' })
  assertEscaped(t, refused.body, NAME, 'the welcome form after an error')
})

t.test('every JSON answer carries the hostile strings exactly, as JSON', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const mallory = await signIn(app, NAME, 'longpolling')
  const ann = await signIn(app, 'ann')
  const socket = await SocketClient.open(base, mallory)
  await socket.untilId(1)

  const json = (res: { headers: Record<string, unknown> }, where: string) => {
    t.match(String(res.headers['content-type']), /^application\/json/, `${where}: served as JSON`)
    t.equal(res.headers['x-content-type-options'], 'nosniff', `${where}: never sniffed as HTML`)
  }
  const posted = await app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: mallory }, payload: { text: TEXT } })
  t.equal(posted.statusCode, 201)
  json(posted, 'POST /longpolling/room/messages')
  t.match(posted.json(), { user: NAME, text: TEXT })

  const polled = await app.inject({ method: 'GET', url: '/longpolling/room/messages?lastReceived=0', headers: { cookie: ann } })
  json(polled, 'GET /longpolling/room/messages')
  const events = polled.json() as Event[]
  t.same(events.slice(0, 2).map((e) => [e.type, e.user, e.text]), [['join', NAME, undefined], ['message', NAME, TEXT]])

  const users = await app.inject({ method: 'GET', url: '/room/users', headers: { cookie: ann } })
  json(users, 'GET /room/users')
  t.ok(users.json().users.some((u: { name: string }) => u.name === NAME), 'the online list has the name as it was typed')

  await socket.untilId(2)
  t.same(socket.events.slice(0, 2).map((e) => [e.user, e.text]), [[NAME, undefined], [NAME, TEXT]], 'WebSocket frames carry the same strings')
  // A refused frame's error is JSON too, and does not echo the hostile input back.
  socket.send({ text: `${TEXT}\u0007` })
  await socket.until(() => socket.errors.length > 0, 'an error frame')
  t.notMatch(JSON.stringify(socket.errors), /<script>/, 'errors do not echo input')
  await socket.close()
})
