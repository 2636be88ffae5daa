import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, enter, eventually, range, signIn } from './helpers.js'

const poll = (url: string, cookie: string, init: RequestInit = {}) =>
  fetch(url, { ...init, headers: { cookie, ...(init.headers as Record<string, string>) } })

t.test('answers at once with the events after the cursor', async (t) => {
  const app = await buildTestApp(t)
  const bob = await signIn(app, 'bob', 'longpolling')
  const page = await app.inject({ method: 'GET', url: '/longpolling/room', headers: { cookie: bob } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /class="whoami"[^>]*>bob<\/span>/)
  t.match(page.body, /\/public\/js\/page\/longpolling.js/)
  for (let i = 1; i <= 4; i++) await app.chatroom.post('ann', `m${i}`)

  const all = await app.inject({ method: 'GET', url: '/longpolling/room/messages', headers: { cookie: bob } })
  t.equal(all.statusCode, 200)
  t.match(all.headers['content-type'], /application\/json/)
  t.same((all.json() as Event[]).map((e) => e.id), [1, 2, 3, 4, 5], 'no cursor: the archive (join + 4)')
  const after = await app.inject({ method: 'GET', url: '/longpolling/room/messages?lastReceived=3', headers: { cookie: bob } })
  t.same(after.json(), app.chatroom.archive(3).map((s) => s.event))
  t.equal(app.chatroom.subscriberCount, 0, 'released after answering')
})

t.test('waits for the next event, and answers [] after the timeout', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '0.3' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  await app.chatroom.post('ann', 'old')

  const waiting = poll(`${base}/longpolling/room/messages?lastReceived=2`, bob)
  await eventually(() => app.chatroom.subscriberCount === 1, 'the poll to wait')
  await app.chatroom.post('ann', 'new')
  const res = await waiting
  t.same(((await res.json()) as Event[]).map((e) => [e.id, e.text]), [[3, 'new']])

  const started = Date.now()
  const idle = await poll(`${base}/longpolling/room/messages?lastReceived=3`, bob)
  t.equal(idle.status, 200)
  t.same(await idle.json(), [])
  t.ok(Date.now() - started >= 250, 'it waited for the timeout first')
  t.equal(app.chatroom.subscriberCount, 0)
})

t.test('a client that goes away releases its wait at once', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '30' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  const controllers = Array.from({ length: 5 }, () => new AbortController())
  const polls = controllers.map((c) => poll(`${base}/longpolling/room/messages?lastReceived=1`, bob, { signal: c.signal }).catch(() => 'aborted'))
  await eventually(() => app.chatroom.subscriberCount === 5, 'five waiting polls')
  for (const c of controllers) c.abort()
  await Promise.all(polls)
  await eventually(() => app.chatroom.subscriberCount === 0, 'released without waiting 30 s', 2000)
  t.equal(app.chatroom.waitingCount, 0, 'none counted as waiting')
})

t.test('closing the app answers pending polls with [] instead of hanging', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '30' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  const pending = poll(`${base}/longpolling/room/messages?lastReceived=1`, bob)
  await eventually(() => app.chatroom.subscriberCount === 1, 'a waiting poll')
  const started = Date.now()
  await app.close()
  t.ok(Date.now() - started < 2000, 'closed promptly')
  const res = await pending
  t.same(await res.json(), [])
})

t.test('bad cursors and strangers get clear JSON errors', async (t) => {
  const app = await buildTestApp(t)
  const bob = await signIn(app, 'bob')
  await app.chatroom.post('ann', 'one')
  for (const bad of ['abc', '-1', '1.5', '', '1e3', '99999999999999999999']) {
    const res = await app.inject({ method: 'GET', url: `/longpolling/room/messages?lastReceived=${bad}`, headers: { cookie: bob } })
    t.equal(res.statusCode, 400, `lastReceived=${bad}`)
    t.match(res.json(), { error: 'Bad Request', message: /lastReceived must be a non-negative whole number/ })
  }
  const ahead = await app.inject({ method: 'GET', url: '/longpolling/room/messages?lastReceived=50', headers: { cookie: bob } })
  t.equal(ahead.statusCode, 409, 'a cursor from before a restart')
  t.match(ahead.json(), { error: 'Conflict', reason: 'ahead', epoch: app.chatroom.epoch, lastId: 1, message: /start over/ })
  const stranger = await app.inject({ method: 'GET', url: '/longpolling/room/messages' })
  t.equal(stranger.statusCode, 401)
  t.match(stranger.json(), { error: 'Unauthorized' })
  t.equal(app.chatroom.subscriberCount, 0)
})

t.test('POST says a form field or JSON text and answers 201 with the event', async (t) => {
  const app = await buildTestApp(t, { MAX_MESSAGE_LENGTH: '20' })
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  const form = await app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: bob }, payload: { message: 'by form' } })
  t.equal(form.statusCode, 201)
  t.match(form.json(), { id: 2, type: 'message', user: 'bob', text: 'by form' })
  const json = await app.inject({
    method: 'POST',
    url: '/longpolling/room/messages?user=mallory',
    headers: { cookie: bob, 'content-type': 'application/json' },
    payload: JSON.stringify({ text: 'by json', user: 'mallory' }),
  })
  t.equal(json.statusCode, 201)
  t.match(json.json(), { id: 3, user: 'bob', text: 'by json' }, 'the session decides who speaks')

  for (const [payload, message] of [
    [{ text: '' }, /empty/],
    [{ text: 42 }, /must be text/],
    [{ text: 'z'.repeat(21) }, /at most 20/],
    [{}, /must be text/],
  ] as const) {
    const res = await app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: bob }, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.match(res.json(), { error: 'Bad Request', message })
  }
  const stranger = await app.inject({ method: 'POST', url: '/longpolling/room/messages', payload: { text: 'hi' } })
  t.equal(stranger.statusCode, 401)
  t.same(app.chatroom.archive().map((s) => s.event.id), [1, 2, 3], 'nothing else was said (a join, two messages)')
})

t.test('polling from each answer\'s last id sees every event exactly once', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '2' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  const TOTAL = 301
  const seen: number[] = []
  const reader = (async () => {
    let last = 0
    for (let i = 0; i < TOTAL && last < TOTAL; i++) {
      const res = await poll(`${base}/longpolling/room/messages?lastReceived=${last}`, bob)
      for (const e of (await res.json()) as Event[]) {
        seen.push(e.id)
        last = e.id
      }
    }
  })()
  for (let i = 1; i < TOTAL; i++) {
    await app.chatroom.post('ann', `n${i}`)
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1))
  }
  await reader
  t.same(seen, range(1, TOTAL), 'bob\'s join, then 300 messages')
})

t.test('leave publishes a leave and returns to the welcome page', async (t) => {
  const app = await buildTestApp(t)
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  const res = await app.inject({ method: 'POST', url: '/longpolling/room/leave', headers: { cookie: bob } })
  t.equal(res.headers.location, '/')
  t.match(app.chatroom.archive().at(-1)?.event, { type: 'leave', user: 'bob' })
})
