import t from 'tap'
import { buildTestApp, signIn } from './helpers.js'

t.test('the welcome page shows the sign-in form with the three transports', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /<form method="post" action="\/signin"/)
  t.match(res.body, /name="user"/)
  for (const [value, label] of [
    ['refresh', 'Ajax, active refresh'],
    ['longpolling', 'Ajax, long polling'],
    ['websocket', 'WebSocket'],
  ]) {
    t.match(res.body, `value="${value}"`)
    t.match(res.body, label)
  }
  t.match(res.body, '/public/css/chat.css')
  const css = await app.inject({ method: 'GET', url: '/public/css/chat.css' })
  t.equal(css.statusCode, 200, 'the stylesheet is served')
})

t.test('a valid sign-in sets a signed HttpOnly SameSite=Lax cookie and enters the chosen room', async (t) => {
  const app = await buildTestApp(t)
  const rooms = { refresh: '/refresh', longpolling: '/longpolling/room', websocket: '/websocket/room' }
  for (const [transport, location] of Object.entries(rooms)) {
    const res = await app.inject({ method: 'POST', url: '/signin', payload: { user: '  ann  ', transport } })
    t.equal(res.statusCode, 303, transport)
    t.equal(res.headers.location, location, `${transport} goes to ${location}`)
    const cookie = res.cookies.find((c) => c.name === 'chat_session')
    t.ok(cookie, 'session cookie set')
    t.equal(cookie?.httpOnly, true)
    t.equal(cookie?.sameSite, 'Lax')
    t.equal(cookie?.path, '/')
    t.match(cookie?.value, /\.[A-Za-z0-9+/]+={0,2}$/, 'carries a signature')
    const page = await app.inject({ method: 'GET', url: '/', headers: { cookie: `chat_session=${cookie!.value}` } })
    t.match(page.body, /Signed in as <strong>ann<\/strong>/, 'the trimmed name is who the session says')
  }
})

t.test('an email signs in as the part before @ and is not stored in the cookie', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({
    method: 'POST',
    url: '/signin',
    payload: { user: 'Gopher@Example.com', transport: 'longpolling' },
  })
  t.equal(res.statusCode, 303)
  const value = res.cookies.find((c) => c.name === 'chat_session')!.value
  const payload = Buffer.from(value.split('.')[0]!, 'base64url').toString()
  t.notMatch(payload.toLowerCase(), /example\.com/, 'no address in the cookie')
  t.match(JSON.parse(payload), { name: 'Gopher', emailHash: /^[0-9a-f]{32}$/ })
})

t.test('invalid input comes back to the form with a message saying what is wrong', async (t) => {
  const app = await buildTestApp(t)
  const cases: [Record<string, string>, RegExp][] = [
    [{ transport: 'websocket' }, /Please choose a nick name or enter your email/],
    [{ user: '', transport: 'websocket' }, /Please choose a nick name or enter your email/],
    [{ user: '    ', transport: 'refresh' }, /Please choose a nick name or enter your email/],
    [{ user: 'x'.repeat(33), transport: 'refresh' }, /at most 32 characters/],
    [{ user: 'bell\u0007', transport: 'refresh' }, /control or invisible characters/],
    [{ user: 'evil\u202Eman', transport: 'refresh' }, /control or invisible characters/],
    [{ user: 'not@an email', transport: 'refresh' }, /email address does not look right/],
    [{ user: 'ann' }, /Please pick a transport/],
    [{ user: 'ann', transport: 'carrier-pigeon' }, /Please pick a transport/],
    [{ user: 'y'.repeat(300), transport: 'refresh' }, /at most 254 characters/],
  ]
  for (const [payload, message] of cases) {
    const res = await app.inject({ method: 'POST', url: '/signin', payload })
    t.equal(res.statusCode, 400, JSON.stringify(payload))
    t.match(res.body, /class="flash error"/)
    t.match(res.body, message)
    t.notOk(res.cookies.some((c) => c.name === 'chat_session' && c.value), 'no session')
  }
  // 32 visible characters are fine, even when they are not ASCII.
  const ok = await app.inject({ method: 'POST', url: '/signin', payload: { user: '🐹'.repeat(32), transport: 'refresh' } })
  t.equal(ok.statusCode, 303)
})

t.test('what was typed is echoed back escaped', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({
    method: 'POST',
    url: '/signin',
    payload: { user: '"><script>alert(1)</script>' + 'x'.repeat(40), transport: 'refresh' },
  })
  t.equal(res.statusCode, 400)
  t.notMatch(res.body, /<script>alert/)
  t.match(res.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
  const named = await app.inject({ method: 'GET', url: '/', headers: { cookie: await signIn(app, '<b>bold</b>') } })
  t.match(named.body, /&lt;b&gt;bold&lt;\/b&gt;/)
  t.notMatch(named.body, /<b>bold<\/b>/)
})

t.test('a tampered, unsigned or expired cookie is treated as signed out', async (t) => {
  const app = await buildTestApp(t, { SESSION_MAX_AGE: '60' })
  const cookie = await signIn(app, 'ann')
  const [payload, signature] = cookie.slice('chat_session='.length).split('.')
  const forged = Buffer.from(
    JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), name: 'admin' }),
  ).toString('base64url')
  const attempts = {
    'payload swapped, old signature': `chat_session=${forged}.${signature}`,
    'no signature': `chat_session=${forged}`,
    'garbage': 'chat_session=%%%not-a-cookie',
    'signed but not our JSON': `chat_session=${app.signCookie('not json')}`,
    'signed but expired': `chat_session=${app.signCookie(
      Buffer.from(JSON.stringify({ name: 'ann', issuedAt: Math.floor(Date.now() / 1000) - 61 })).toString('base64url'),
    )}`,
  }
  for (const [what, header] of Object.entries(attempts)) {
    const res = await app.inject({ method: 'GET', url: '/', headers: { cookie: header } })
    t.equal(res.statusCode, 200, what)
    t.notMatch(res.body, /Signed in as/, `${what}: signed out`)
  }
  const genuine = await app.inject({ method: 'GET', url: '/', headers: { cookie } })
  t.match(genuine.body, /Signed in as <strong>ann<\/strong>/, 'the genuine cookie still works')
})

t.test('a cookie signed with another secret is refused', async (t) => {
  const other = await buildTestApp(t, { SESSION_SECRET: 'another-secret-another-secret-another-1' })
  const app = await buildTestApp(t)
  const cookie = await signIn(other, 'mallory')
  const res = await app.inject({ method: 'GET', url: '/', headers: { cookie } })
  t.notMatch(res.body, /Signed in as/)
})

t.test('sign-out clears the session', async (t) => {
  const app = await buildTestApp(t)
  const cookie = await signIn(app, 'ann')
  const res = await app.inject({ method: 'POST', url: '/signout', headers: { cookie } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/')
  const cleared = res.cookies.find((c) => c.name === 'chat_session')
  t.equal(cleared?.value, '', 'cookie emptied')
  t.ok(cleared?.expires && cleared.expires.getTime() < Date.now(), 'and expired')
})

t.test('unknown paths get 404 as a page or JSON by Accept', async (t) => {
  const app = await buildTestApp(t)
  const json = await app.inject({ method: 'GET', url: '/nope' })
  t.equal(json.statusCode, 404)
  t.same(json.json(), { error: 'Not Found', message: 'Nothing here: GET /nope' })
  const html = await app.inject({ method: 'GET', url: '/nope?<x>', headers: { accept: 'text/html' } })
  t.equal(html.statusCode, 404)
  t.match(html.body, /404 — Not Found/)
})
