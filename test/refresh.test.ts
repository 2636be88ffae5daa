import t from 'tap'
import { buildTestApp, enter, signIn } from './helpers.js'

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
  const said = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: ann }, payload: { message: 'hello bob' } })
  t.equal(said.statusCode, 303, 'post/redirect/get')
  t.equal(said.headers.location, '/refresh/room')
  await app.chatroom.left('bob')

  const room = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: ann } })
  t.equal(room.statusCode, 200)
  t.match(room.body, /You are now chatting as <strong class="me">ann<\/strong>/)
  t.match(room.body, /<form class="leave" method="post" action="\/refresh\/room\/leave">/)
  t.match(room.body, /<span class="user">you<\/span> joined/)
  t.match(room.body, /<span class="user">bob<\/span> joined the room/)
  t.match(room.body, /<span class="user">bob<\/span>\s*<span class="text">hi ann<\/span>/)
  t.match(room.body, /<span class="user">you<\/span>\s*<span class="text">hello bob<\/span>/)
  t.match(room.body, /<span class="user">bob<\/span> left the room/)
  t.match(room.body, /<noscript><meta http-equiv="refresh" content="5"><\/noscript>/, 'works without JavaScript')
  t.match(room.body, /data-interval="5"/)
  t.match(room.body, /<script type="module" src="\/public\/js\/refresh.js">/)

  const thread = await app.inject({ method: 'GET', url: '/refresh/room/thread', headers: { cookie: ann } })
  t.equal(thread.statusCode, 200)
  t.notMatch(thread.body, /<html|<form/, 'just the thread')
  t.match(thread.body, /hello bob/)
  t.equal(thread.headers['cache-control'], 'no-store')
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
    const res = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: ann }, payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.match(res.body, /<p class="flash error" id="flash" role="alert">/)
    t.match(res.body, error)
  }
  const long = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: ann }, payload: { message: '<i>' + 'y'.repeat(20) } })
  t.match(long.body, /value="&lt;i&gt;y{20}"/, 'the draft is kept, escaped')
  t.equal(app.chatroom.archive().filter((s) => s.event.type === 'message').length, 0, 'nothing was said')
  const ok = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: ann }, payload: { message: '  ten chars ' } })
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
