import t from 'tap'
import { WebSocket } from 'ws'
import { buildTestApp, enter, eventually, range, signIn, SocketClient } from './helpers.js'

t.test('flood control: one limit per user across every transport; others unaffected', async (t) => {
  const app = await buildTestApp(t, { RATE_LIMIT_MESSAGES: '3', RATE_LIMIT_WINDOW: '30' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  const bob = await signIn(app, 'bob')
  const socket = await SocketClient.open(base, ann)
  await enter(app, ann, 'refresh')

  const lp = (cookie: string, text: string) =>
    app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie }, payload: { text } })
  t.equal((await lp(ann, 'one')).statusCode, 201)
  t.equal((await lp(ann, 'two')).statusCode, 201)
  const formPost = (message: string) =>
    app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: ann, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, payload: `message=${message}` })
  const form = await formPost('three')
  t.equal(form.statusCode, 303)

  const fourth = await lp(ann, 'four')
  t.equal(fourth.statusCode, 429)
  t.match(fourth.json(), { error: 'Too Many Requests', message: /at most 3 messages per 30 s/ })
  t.ok(Number(fourth.headers['retry-after']) >= 1 && Number(fourth.headers['retry-after']) <= 30, 'Retry-After in seconds')

  const page = await formPost('five')
  t.equal(page.statusCode, 429)
  t.match(page.body, /class="flash error" id="flash" role="alert">Slow down/)
  t.match(page.body, />five<\/textarea>/, 'the draft is kept')
  t.ok(page.headers['retry-after'])

  socket.send({ text: 'six' })
  await socket.until(() => socket.errors.length > 0, 'an error event')
  t.match(socket.errors[0], { error: 'Too Many Requests', retryAfter: Number })
  t.equal(socket.closed, undefined, 'the socket stays open')

  t.equal((await lp(bob, 'bob is fine')).statusCode, 201, 'another user is not limited')
  const texts = app.chatroom.archive().filter((s) => s.event.type === 'message').map((s) => s.event.text)
  t.same(texts, ['one', 'two', 'three', 'bob is fine'], 'nothing over the limit was said')
  await socket.close()
})

t.test('sign-in attempts are rate limited per IP', async (t) => {
  const app = await buildTestApp(t, { SIGNIN_RATE_LIMIT: '3' })
  const codes: number[] = []
  for (let i = 0; i < 5; i++) {
    const res = await app.inject({ method: 'POST', url: '/signin', payload: { user: `u${i}`, transport: 'refresh' } })
    codes.push(res.statusCode)
  }
  t.same(codes, [303, 303, 303, 429, 429])
})

t.test('an oversized body gets 413 with a JSON error', async (t) => {
  const app = await buildTestApp(t, { MAX_MESSAGE_LENGTH: '100' })
  const ann = await signIn(app, 'ann')
  const res = await app.inject({
    method: 'POST',
    url: '/longpolling/room/messages',
    headers: { cookie: ann, 'content-type': 'application/json' },
    payload: JSON.stringify({ text: 'x'.repeat(100_000) }),
  })
  t.equal(res.statusCode, 413)
  t.match(res.json(), { error: 'Payload Too Large', message: String })
  const page = await app.inject({
    method: 'POST',
    url: '/refresh/room',
    headers: { cookie: ann, accept: 'text/html' },
    payload: { message: 'y'.repeat(100_000) },
  })
  t.equal(page.statusCode, 413)
  t.match(page.body, /413 — Payload Too Large/, 'a page for browsers')
})

t.test('cross-origin upgrades and POSTs are refused; our own origin and the allow-list pass', async (t) => {
  const app = await buildTestApp(t, { ALLOWED_ORIGINS: 'https://friend.example' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  await t.rejects(SocketClient.open(base, ann, '', { origin: 'https://evil.example' }), /refused: 403/)
  const own = await SocketClient.open(base, ann, '', { origin: base })
  const friend = await SocketClient.open(base, ann, '', { origin: 'https://friend.example' })
  await own.close()
  await friend.close()

  const posts: [string, Record<string, string>][] = [
    ['/signin', { user: 'mallory', transport: 'refresh' }],
    ['/longpolling/room/messages', { text: 'forged' }],
    ['/refresh/room', { message: 'forged' }],
    ['/signout', {}],
  ]
  for (const [url, payload] of posts) {
    for (const headers of [{ origin: 'https://evil.example' }, { 'sec-fetch-site': 'cross-site' }, { origin: 'null', 'sec-fetch-site': 'cross-site' }]) {
      const res = await app.inject({ method: 'POST', url, payload, headers: { cookie: ann, ...headers } })
      t.equal(res.statusCode, 403, `${url} ${JSON.stringify(headers)}`)
      t.match(res.json(), { error: 'Forbidden', message: /Cross-origin/ })
    }
  }
  t.same(app.chatroom.archive().filter((s) => s.event.type === 'message').map((s) => s.event.text), [], 'nothing forged was said')
  const same = await fetch(`${base}/longpolling/room/messages`, {
    method: 'POST',
    headers: { cookie: ann, origin: base, 'sec-fetch-site': 'same-origin', 'content-type': 'application/json' },
    body: JSON.stringify({ text: 'mine' }),
  })
  t.equal(same.status, 201, 'our own page may post')
})

t.test('security headers and a CSP with no inline script', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/' })
  const csp = String(res.headers['content-security-policy'])
  t.match(csp, /script-src 'self'/)
  t.notMatch(csp, /unsafe-inline|unsafe-eval/)
  t.match(csp, /frame-ancestors 'none'/)
  t.equal(res.headers['x-content-type-options'], 'nosniff')
  t.equal(res.headers['referrer-policy'], 'same-origin')
  t.notMatch(res.body, /<script(?![^>]*\bsrc=)/, 'every script is a file')
  t.notMatch(res.body, /\son[a-z]+=/, 'no inline event handlers')
  for (const [url, what] of [['/no/such/page', 'a page saying not found'], ['/signin', 'a redirect']] as const) {
    const other = await app.inject({ method: url === '/signin' ? 'POST' : 'GET', url, headers: { accept: 'text/html' }, payload: url === '/signin' ? { user: 'ann', transport: 'websocket' } : undefined })
    t.match(other.headers['content-security-policy'], /frame-ancestors 'none'/, `${what}: the CSP`)
    t.equal(other.headers['x-frame-options'], 'SAMEORIGIN', `${what}: not framed`)
  }
  // JSON is never run as a page: what protects any response, not the document headers (a long poll answers with 3, not 12).
  const bob = await signIn(app, 'bob', 'longpolling')
  const json = await app.inject({ method: 'GET', url: '/longpolling/room/messages', headers: { cookie: bob } })
  t.match(json.headers['content-type'], /^application\/json/)
  t.equal(json.headers['x-content-type-options'], 'nosniff', 'JSON: not sniffed as something else')
  t.equal(json.headers['cross-origin-resource-policy'], 'same-origin', 'JSON: not readable by another site')
  t.equal(json.headers['content-security-policy'], undefined, 'JSON: no CSP, which only a page obeys')
  t.equal(json.headers['x-frame-options'], undefined)
  const refused = await app.inject({ method: 'GET', url: '/longpolling/room/messages?lastReceived=x', headers: { cookie: bob } })
  t.equal(refused.statusCode, 400)
  t.equal(refused.headers['x-content-type-options'], 'nosniff', 'a JSON error too')
})

t.test('a forged cookie and ?user= are ignored everywhere', async (t) => {
  const app = await buildTestApp(t)
  const forged = 'chat_session=' + Buffer.from(JSON.stringify({ name: 'admin', issuedAt: Math.floor(Date.now() / 1000) })).toString('base64url') + '.AAAA'
  for (const [method, url] of [['GET', '/longpolling/room/messages?user=admin'], ['POST', '/longpolling/room/messages?user=admin'], ['GET', '/room/users?user=admin']] as const) {
    const res = await app.inject({ method, url, headers: { cookie: forged }, payload: method === 'POST' ? { text: 'hi', user: 'admin' } : undefined })
    t.equal(res.statusCode, 401, `${method} ${url}`)
  }
  const page = await app.inject({ method: 'GET', url: '/refresh/room?user=admin', headers: { cookie: forged } })
  t.equal(page.statusCode, 303, 'pages send you to sign in')
  t.equal(app.chatroom.lastId, 0)
})

t.test('keepalive: a socket that never answers pings is closed; a live one stays', async (t) => {
  const app = await buildTestApp(t, { PING_INTERVAL: '0.1', PONG_TIMEOUT: '0.35' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const live = await SocketClient.open(base, await signIn(app, 'live'))
  const cookie = await signIn(app, 'dead')
  const dead = new WebSocket(base.replace('http', 'ws') + '/websocket/room/socket', { headers: { cookie }, autoPong: false })
  let pings = 0
  dead.on('ping', () => pings++)
  const closed = new Promise<number>((resolve) => dead.on('close', (code) => resolve(code)))
  const started = Date.now()
  const code = await closed
  t.equal(code, 1006, 'cut off without a close frame')
  t.ok(pings >= 2, `it was pinged (${pings} times) first`)
  t.ok(Date.now() - started < 3000, 'within a few ping intervals')
  // Past another PONG_TIMEOUT, counted in pings the live client answered.
  let livePings = 0
  live.ws.on('ping', () => livePings++)
  await eventually(() => livePings >= 5 || live.closed !== undefined, 'five more pings to the live client')
  t.equal(live.closed, undefined, 'the client that answers pings is still connected')
  await live.close()
})

t.test('a paused socket is dropped while 100 others receive every event', async (t) => {
  // 101 people from one test address: more sessions than SESSIONS_PER_ADDRESS allows by default.
  const app = await buildTestApp(t, { SUBSCRIBER_QUEUE: '64', SOCKET_BUFFER_LIMIT: '65536', ARCHIVE_SIZE: '10', SESSIONS_PER_ADDRESS: '200' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const others = await Promise.all(range(1, 100).map(async (i) => SocketClient.open(base, await signIn(app, `reader${i}`))))
  const slowCookie = await signIn(app, 'slow')
  const slow = await SocketClient.open(base, slowCookie)
  await eventually(() => app.chatroom.subscriberCount === 101, '101 subscribers')
  const start = app.chatroom.lastId
  await slow.untilId(start)
  // Stop reading at the TCP level, as a stuck client does (ws has no public pause).
  ;(slow.ws as unknown as { _socket: { pause(): void } })._socket.pause()

  const text = 'x'.repeat(2000)
  let published = 0
  while (app.chatroom.subscriberCount > 100 && published < 10_000) {
    await app.chatroom.post('publisher', text)
    if (++published % 25 === 0) await new Promise((r) => setImmediate(r))
  }
  t.equal(app.chatroom.subscriberCount, 100, `the paused socket was dropped after ${published} events`)
  // It reads again: behind what was buffered comes the close that says why.
  ;(slow.ws as unknown as { _socket: { resume(): void } })._socket.resume()
  const closed = await slow.untilClosed()
  t.same(closed, { code: 4000, reason: 'too far behind: reconnect with lastReceived' }, 'the slow one is told it lagged (4000)')
  for (let i = 0; i < 50; i++) await app.chatroom.post('publisher', `after ${i}`)
  const last = app.chatroom.lastId
  await Promise.all(others.map((o) => o.untilId(last)))
  const complete = others.filter((o) => {
    const ids = o.ids().filter((id) => id > start)
    return ids.length === last - start && ids.every((id, k) => id === start + 1 + k)
  })
  t.equal(complete.length, 100, 'every other reader got every event, in order')

  // Reconnecting with a cursor resumes right after it.
  const again = await SocketClient.open(base, slowCookie, `?lastReceived=${last - 3}`)
  await again.until(() => again.events.length >= 3, 'the three events after the cursor')
  t.same(again.ids().slice(0, 3), [last - 2, last - 1, last], 'it resumes from its cursor')
  await Promise.all([...others, again].map((o) => o.close()))
})
