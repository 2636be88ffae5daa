import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildTestApp, enter, signIn } from './helpers.js'

/** The refresh page's form as a browser without JavaScript sends it. */
const form = (app: FastifyInstance, cookie: string, fields: Record<string, string>) =>
  app.inject({
    method: 'POST',
    url: '/refresh/room',
    headers: { cookie, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(fields).toString(),
  })

t.test('strangers are sent to the welcome page', async (t) => {
  const app = await buildTestApp(t)
  for (const [method, url] of [['GET', '/refresh'], ['GET', '/refresh/room'], ['POST', '/refresh/room/leave']] as const) {
    const res = await app.inject({ method, url })
    t.equal(res.statusCode, 303, url)
    t.equal(res.headers.location, '/')
  }
  const post = await app.inject({ method: 'POST', url: '/refresh/room', payload: { message: 'hi' } })
  t.equal(post.statusCode, 303)
  t.equal(app.chatroom.lastId, 0, 'nothing was said')
  const thread = await app.inject({ method: 'GET', url: '/refresh/room/thread' })
  t.equal(thread.statusCode, 401)
})

t.test('GET /refresh joins, then the room shows the archive with "you" for the viewer', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const join = await app.inject({ method: 'GET', url: '/refresh', headers: { cookie: ann } })
  t.equal(join.statusCode, 303)
  t.equal(join.headers.location, '/refresh/room')
  await app.chatroom.join('bob')
  await app.chatroom.post('bob', 'hi ann')
  const said = await form(app, ann, { message: 'hello bob' })
  t.equal(said.statusCode, 303, 'post/redirect/get')
  t.equal(said.headers.location, '/refresh/room')
  await app.chatroom.left('bob')

  const room = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: ann } })
  t.equal(room.statusCode, 200)
  t.match(room.body, /class="whoami"[^>]*>ann<\/span>/)
  t.match(room.body, /<form class="signout" method="post" action="\/signout">[\s\S]*>Sign out<\/button>/, 'signing out says so (leaving a room is its own button)')
  t.match(room.body, /<span class="user">you<\/span> joined/)
  t.match(room.body, /<span class="user">bob<\/span> joined the room/)
  t.match(room.body, /<div class="message" data-id="\d+" data-user="bob"[^>]*>[\s\S]*?<span class="user">bob<\/span>[\s\S]*?<div class="text">hi ann<\/div>/)
  t.match(room.body, /<div class="message mine" [^>]*>[\s\S]*?<span class="user">you<\/span>[\s\S]*?<div class="text">hello bob<\/div>/)
  t.match(room.body, /<span class="user">bob<\/span> left the room/)
  t.match(room.body, /<div class="thread" id="thread" role="log"/, 'the thread is a log: new rows are announced, not the whole thread')
  t.match(room.body, /<noscript><meta http-equiv="refresh" content="5"><\/noscript>/, 'works without JavaScript')
  t.match(room.body, /data-interval="5"/)
  t.match(room.body, /<script type="module" src="\/public\/js\/page\/refresh.js">/)

  const thread = await app.inject({ method: 'GET', url: '/refresh/room/thread', headers: { cookie: ann } })
  t.equal(thread.statusCode, 200)
  t.notMatch(thread.body, /<html|id="say"/, 'just the thread (its rows with their React and Reply forms)')
  t.match(thread.body, /hello bob/)
  t.equal(thread.headers['cache-control'], 'no-store')
})

t.test('the page script gets only what is new after its cursor, who is here, and who is typing', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const room = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: ann } })
  const lastId = Number(/data-last-id="(\d+)"/.exec(room.body)![1])
  const tab = /data-tab="([\w-]+)"/.exec(room.body)![1]!
  t.ok(lastId >= 1 && tab.length >= 8, 'the page knows its cursor and its id')
  await app.chatroom.join('bob')
  await app.chatroom.post('bob', 'news')
  app.chatroom.typing({ name: 'bob' })
  const url = `/refresh/room/thread?lastReceived=${lastId}&epoch=${app.chatroom.epoch}&tab=${tab}`
  const fresh = await app.inject({ method: 'GET', url, headers: { cookie: ann } })
  t.equal(fresh.statusCode, 200)
  const ids = [...fresh.body.matchAll(/data-id="(\d+)"/g)].map((m) => Number(m[1]))
  t.same(ids, [lastId + 1, lastId + 2], 'only the join and the message that came after the cursor')
  t.match(fresh.body, `data-last-id="${lastId + 2}"`)
  t.match(fresh.body, /<p id="typing">bob is typing…<\/p>/, 'the refresh page sees typing too')
  t.match(fresh.body, /<ul id="users" data-count="2">/)
  await app.chatroom.post('bob', 'sent, so no longer typing')
  const after = await app.inject({ method: 'GET', url, headers: { cookie: ann } })
  t.match(after.body, /<p id="typing"><\/p>/)
  // A cursor from another log: 409, as long polling answers (the page reloads).
  const stale = await app.inject({ method: 'GET', url: `/refresh/room/thread?lastReceived=1&epoch=elsewhere&tab=${tab}`, headers: { cookie: ann } })
  t.equal(stale.statusCode, 409)
  t.match(stale.json(), { reason: 'epoch', epoch: app.chatroom.epoch })
  const bad = await app.inject({ method: 'GET', url: '/refresh/room/thread?tab=<x>', headers: { cookie: ann } })
  t.equal(bad.statusCode, 400)
  t.match(bad.json(), { message: /tab must be the page id/ })
  // Its typing signal reaches the others.
  const typed = await app.inject({ method: 'POST', url: '/refresh/room/typing', headers: { cookie: ann } })
  t.equal(typed.statusCode, 204)
  t.same(app.chatroom.typingNow('bob'), ['ann'])
  // Its say gets JSON back (the page keeps the draft on a refusal).
  const said = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: ann, accept: 'application/json' }, payload: { message: '' } })
  t.equal(said.statusCode, 400)
  t.match(said.json(), { error: 'Bad Request', message: /cannot be empty/ })
})

t.test('the refresh interval is configurable', async (t) => {
  const app = await buildTestApp(t, { REFRESH_INTERVAL: '2' })
  const room = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: await signIn(app, 'ann') } })
  t.match(room.body, /content="2"/)
  t.match(room.body, /data-interval="2"/)
})

t.test('an empty or over-long message comes back with a visible error and the draft', async (t) => {
  const app = await buildTestApp(t, { MAX_MESSAGE_LENGTH: '10' })
  const ann = await signIn(app, 'ann', 'refresh')
  const cases: [Record<string, string>, RegExp][] = [
    [{ message: '' }, /A message cannot be empty/],
    [{ message: '   \n ' }, /A message cannot be empty/],
    [{}, /A message must be text/],
    [{ message: 'x'.repeat(11) }, /at most 10 characters/],
    [{ message: 'bell\u0007' }, /control characters/],
  ]
  for (const [payload, error] of cases) {
    const res = await form(app, ann, payload)
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.match(res.body, /<p class="flash error" id="flash" role="alert">/)
    t.match(res.body, error)
  }
  const long = await form(app, ann, { message: '<i>' + 'y'.repeat(20) })
  t.match(long.body, />&lt;i&gt;y{20}<\/textarea>/, 'the draft is kept, escaped')
  t.equal(app.chatroom.archive().filter((s) => s.event.type === 'message').length, 0, 'nothing was said')
  const ok = await form(app, ann, { message: '  ten chars ' })
  t.equal(ok.statusCode, 303, 'trimmed to 9 characters, fine')
  t.equal(app.chatroom.archive().at(-1)?.event.text, 'ten chars')
})

t.test('the name comes from the session, never from ?user=', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  await app.inject({ method: 'POST', url: '/refresh/room?user=bob', headers: { cookie: ann }, payload: { message: 'who am I', user: 'bob' } })
  t.equal(app.chatroom.archive().at(-1)?.event.user, 'ann')
})

t.test('leave publishes a leave and returns to the welcome page', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  await enter(app, ann, 'refresh')
  const res = await app.inject({ method: 'POST', url: '/refresh/room/leave', headers: { cookie: ann } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/')
  t.match(app.chatroom.archive().at(-1)?.event, { type: 'leave', user: 'ann' })
})
