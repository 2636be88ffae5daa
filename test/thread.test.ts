import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { joinLeaveWords, linkSegments, threadRows } from '../app/transport/thread.js'
import { buildTestApp, signIn, SocketClient } from './helpers.js'

const links = (text: string) => linkSegments(text).filter((p) => p.href)

t.test('links: http and https only, sentence punctuation left out, brackets kept when the URL opened them', async (t) => {
  t.same(linkSegments('see https://example.com/a?b=1#c now'), [
    { text: 'see ' },
    { text: 'https://example.com/a?b=1#c', href: 'https://example.com/a?b=1#c' },
    { text: ' now' },
  ])
  t.same(links('(https://en.wikipedia.org/wiki/Go_(game)).').map((p) => p.text), ['https://en.wikipedia.org/wiki/Go_(game)'])
  t.same(links('go to http://example.com.').map((p) => p.text), ['http://example.com'])
  t.same(links('a http://a.example, and https://b.example!').map((p) => p.href), ['http://a.example/', 'https://b.example/'])
  for (const text of ['javascript:alert(1)', 'data:text/html,<b>x</b>', 'ftp://example.com', 'xhttp://example.com', 'http://', 'https:// spaced', 'mailto:a@b.c']) {
    t.same(links(text), [], `${JSON.stringify(text)} is not a link`)
  }
  // The href is what URL made of it: quotes and angle brackets end a link, never reach an attribute.
  const [hostile] = links('http://x.example/"><img src=x onerror=alert(1)>')
  t.equal(hostile?.href, 'http://x.example/')
  t.same(linkSegments('no links here'), [{ text: 'no links here' }])
  t.same(linkSegments(''), [])
  // Every character of the text survives, in order.
  const text = 'one https://a.example/x two\nhttp://b.example) three'
  t.equal(linkSegments(text).map((p) => p.text).join(''), text)
})

t.test('the page gets the very functions the server renders with (client/render.ts, served as a module)', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/public/js/client/render.js' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /javascript/)
  const served = (await import(`data:text/javascript,${encodeURIComponent(res.body)}`)) as { linkSegments: typeof linkSegments; joinLeaveWords: typeof joinLeaveWords }
  for (const text of ['see https://example.com/(x)). and http://b.example', 'javascript:alert(1) http://ok.example/"x']) {
    t.same(served.linkSegments(text), linkSegments(text), JSON.stringify(text))
  }
  t.same(served.joinLeaveWords(['ann', 'bob', 'cy', 'dan'], ['eve'], 'bob'), joinLeaveWords(['ann', 'bob', 'cy', 'dan'], ['eve'], 'bob'))
  t.equal((await app.inject({ method: 'GET', url: '/public/js/linkify.js' })).statusCode, 404, 'no second copy of them is served')
})

t.test('rows: one sender\'s messages within five minutes group; a new day, another sender or a notice starts over', async (t) => {
  const day = Date.UTC(2026, 10, 27, 23, 50)
  let id = 0
  const ev = (type: Event['type'], user: string, at: number, text?: string): Event => ({ id: ++id, type, user, timestamp: at, ...(text && { text }) })
  const events = [
    ev('join', 'ann', day),
    ev('message', 'ann', day + 1000, 'one'),
    ev('message', 'ann', day + 60_000, 'two'),
    ev('message', 'bob', day + 61_000, 'three'),
    ev('message', 'bob', day + 61_000 + 5 * 60_000, 'four, five minutes on'),
    ev('message', 'bob', day + 10 * 60_000 + 30_000, 'five, within five minutes but after midnight UTC'),
    ev('leave', 'bob', day + 20 * 60_000),
    ev('message', 'bob', day + 20 * 60_000 + 1, 'six'),
  ]
  const rows = threadRows(events, 'ann')
  t.same(rows.map((r) => r.cont), [false, false, true, false, false, false, false, false])
  t.same(rows.map((r) => r.day), ['Fri, 27 Nov 2026', undefined, undefined, undefined, undefined, 'Sat, 28 Nov 2026', undefined, undefined])
  t.same(rows.map((r) => r.who), ['you', 'you', 'you', 'bob', 'bob', 'bob', 'bob', 'bob'])
  t.equal(rows[1]!.time, '23:50')
  // Continuing what the page shows: no date line when the day is the same.
  t.equal(threadRows(events.slice(2, 3), 'ann', events[1])[0]!.day, undefined)
})

t.test('the pages draw links the same way the scripts do, escaped', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  await app.chatroom.post('bob', 'read https://example.com/a?x=1&y=<2> or javascript:alert(1)')
  const room = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: ann } })
  t.match(
    room.body,
    '<div class="text">read <a href="https://example.com/a?x=1&amp;y=" rel="noopener noreferrer nofollow" target="_blank" tabindex="-1">https://example.com/a?x=1&amp;y=</a>&lt;2&gt; or javascript:alert(1)</div>',
  )
})

t.test('a WebSocket message with a ref is acknowledged with its id, or refused with the same ref', async (t) => {
  const app = await buildTestApp(t, { MAX_MESSAGE_LENGTH: '10', RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '60' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const socket = await SocketClient.open(base, await signIn(app, 'ann'))
  socket.send({ text: 'hello', ref: 'a1' })
  await socket.until(() => socket.acks.length === 1, 'the ack')
  const said = socket.events.find((e) => e.text === 'hello')
  t.ok(said, 'the event itself came before its ack')
  t.same(socket.acks, [{ type: 'ack', ref: 'a1', id: said!.id }])
  socket.send({ text: 'far too long for this', ref: 'a2' })
  await socket.until(() => socket.errors.length === 1, 'the refusal')
  t.match(socket.errors[0], { error: 'Bad Request', ref: 'a2', message: /at most 10 characters/ })
  socket.send({ text: 'two', ref: 'a3' })
  socket.send({ text: 'three', ref: 'a4' })
  await socket.until(() => socket.errors.length === 2, 'the flood refusal')
  t.match(socket.errors[1], { error: 'Too Many Requests', ref: 'a4', retryAfter: Number })
  t.same(socket.acks.map((a) => a.ref), ['a1', 'a3'])
  socket.send({ text: 'x', ref: 'r'.repeat(41) })
  await socket.until(() => socket.errors.length === 3, 'a bad ref refused')
  t.match(socket.errors[2], { error: 'Bad Request', message: /"ref"/ })
  socket.send({ text: 'no ref is fine too' })
  await socket.until(() => socket.errors.length === 4, 'the flood refusal, without a ref')
  t.notOk('ref' in socket.errors[3]!)
  await socket.close()
})

t.test('events from the bus are checked by hand like the schema would', async (t) => {
  const { eventSchema, readEvent } = await import('../app/chatroom/event.js')
  const good = [
    { id: 1, type: 'join', user: 'ann', timestamp: 5 },
    { id: 2, type: 'message', user: 'ann', timestamp: 5, text: 'hi', avatar: '/avatars/x.svg', via: 'Facebook' },
  ]
  const bad: unknown[] = [
    null, 'x', [], { id: 0, type: 'join', user: 'a', timestamp: 1 }, { id: 1.5, type: 'join', user: 'a', timestamp: 1 },
    { id: 1, type: 'shout', user: 'a', timestamp: 1 }, { id: 1, type: 'join', user: 5, timestamp: 1 },
    { id: 1, type: 'join', user: 'a', timestamp: '1' }, { id: 1, type: 'message', user: 'a', timestamp: 1, text: 7 },
    { id: 1, type: 'join', user: 'a', timestamp: 1, avatar: {} }, { id: 1, type: 'join', user: 'a', timestamp: 1, via: [] },
  ]
  for (const e of good) t.same(readEvent(e), eventSchema.parse(e), JSON.stringify(e))
  for (const e of bad) {
    t.equal(readEvent(e), undefined, JSON.stringify(e))
    t.notOk(eventSchema.safeParse(e).success, 'and the schema agrees')
  }
})
