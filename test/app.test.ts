import { createHash } from 'node:crypto'
import t from 'tap'
import { buildTestApp, refusedSignIn, signIn } from './helpers.js'

/** The name the top bar says the visitor is signed in as. */
const signedInAs = (name: string) => new RegExp(`class="whoami"[^>]*>${name}</span>`)

t.test('the welcome page shows the sign-in form with the three ways in, in plain words', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /text\/html/)
  t.match(res.body, /<form method="post" action="\/signin"/)
  t.match(res.body, /name="user"/)
  for (const [value, label] of [
    ['refresh', 'Reloads every few seconds'],
    ['longpolling', 'Live, for strict networks (long polling)'],
    ['websocket', 'Live (WebSocket)'],
    ['sse', 'Live, one-way stream (Server-Sent Events)'],
    ['auto', 'Automatic (recommended)'],
  ]) {
    t.match(res.body, `value="${value}"`)
    t.match(res.body, label)
  }
  t.match(res.body, /maxlength="254"[^>]*data-name-max="32"/, 'the field takes an email; its script holds a bare name to 32')
  t.match(res.body, /A name: up to 32 characters/, 'the limits are in the hint')
  t.notMatch(res.body, /Ajax|Transport/, 'no jargon')
  t.match(res.body, '/public/css/chat.css')
  const css = await app.inject({ method: 'GET', url: '/public/css/chat.css' })
  t.equal(css.statusCode, 200, 'the stylesheet is served')
  t.notMatch(res.body, /Continue as/, 'nobody signed in: nothing to continue')

  // Signed in already: the page offers to go on as them, before the form.
  const cookie = await signIn(app, 'gopher')
  const again = await app.inject({ method: 'GET', url: '/', headers: { cookie } })
  t.match(again.body, /You are signed in as <strong>gopher<\/strong>/, 'a signed-in person is told who they are')
  t.match(again.body, /<a class="button" href="\/auto\/room">Continue as gopher<\/a>/, 'and offered "Continue as gopher"')
  t.ok(again.body.indexOf('Continue as') < again.body.indexOf('action="/signin"'), 'before the sign-in form')
})

t.test('a valid sign-in sets a signed HttpOnly SameSite=Lax cookie and enters the chosen room', async (t) => {
  const app = await buildTestApp(t)
  const rooms = { refresh: '/refresh', longpolling: '/longpolling/room', websocket: '/websocket/room', sse: '/sse/room', auto: '/auto/room' }
  for (const [transport, location] of Object.entries(rooms)) {
    // A name each: a name is claimed at sign-in.
    const res = await app.inject({ method: 'POST', url: '/signin', payload: { user: `  ann-${transport}  `, transport } })
    t.equal(res.statusCode, 303, transport)
    t.equal(res.headers.location, location, `${transport} goes to ${location}`)
    const cookie = res.cookies.find((c) => c.name === 'chat_session')
    t.ok(cookie, 'session cookie set')
    t.equal(cookie?.httpOnly, true)
    t.equal(cookie?.sameSite, 'Lax')
    t.equal(cookie?.path, '/')
    t.match(cookie?.value, /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9+/]+={0,2}$/, 'a random session id and a signature, nothing else')
    const page = await app.inject({ method: 'GET', url: '/', headers: { cookie: `chat_session=${cookie!.value}` } })
    t.match(page.body, signedInAs(`ann-${transport}`), 'the trimmed name is who the session says')
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
  t.notMatch(Buffer.from(value.split('.')[0]!, 'base64url').toString('latin1').toLowerCase(), /gopher|example/, 'the cookie says nothing about the user')
  const page = await app.inject({ method: 'GET', url: '/', headers: { cookie: `chat_session=${value}` } })
  t.match(page.body, signedInAs('Gopher'))
})

t.test('invalid input comes back to the form (at a reload-safe address) with the typed text and a message saying what is wrong', async (t) => {
  const app = await buildTestApp(t)
  const cases: [Record<string, string>, RegExp][] = [
    [{ transport: 'websocket' }, /Please choose a nick name or enter your email/],
    [{ user: '', transport: 'websocket' }, /Please choose a nick name or enter your email/],
    [{ user: '    ', transport: 'refresh' }, /Please choose a nick name or enter your email/],
    [{ user: 'x'.repeat(33), transport: 'refresh' }, /at most 32 characters/],
    [{ user: 'bell\u0007', transport: 'refresh' }, /invisible characters \(U\+0007/],
    [{ user: 'evil\u202Eman', transport: 'refresh' }, /invisible characters \(U\+202E/],
    [{ user: 'not@an email', transport: 'longpolling' }, /email address does not look right/],
    [{ user: 'y'.repeat(300), transport: 'refresh' }, /at most 254 characters/],
  ]
  for (const [payload, message] of cases) {
    const { page } = await refusedSignIn(app, payload)
    t.equal(page.statusCode, 200, JSON.stringify(payload))
    t.match(page.body, /class="flash error"/)
    t.match(page.body, message)
    if (payload.user?.trim() && payload.user.length < 254) t.match(page.body, `value="${payload.user}"`, 'what was typed is in the field again')
    if (payload.transport) t.match(page.body, new RegExp(`value="${payload.transport}" checked`), 'and the way in that was picked')
  }
  // Read once: the same address reloaded is a plain welcome page.
  const { res } = await refusedSignIn(app, { user: '', transport: 'refresh' })
  const reloaded = await app.inject({ method: 'GET', url: '/' })
  t.notMatch(reloaded.body, /flash error/)
  t.match(res.headers['set-cookie'], /chat_signin=.*HttpOnly/)
  // A missing or unknown way in is the default one, not an error.
  for (const transport of [undefined, 'carrier-pigeon']) {
    const res = await app.inject({ method: 'POST', url: '/signin', payload: { user: `ann${transport ? 1 : 2}`, ...(transport && { transport }) } })
    t.equal(res.headers.location, '/auto/room')
  }
  // 32 visible characters are fine, even when they are not ASCII.
  const ok = await app.inject({ method: 'POST', url: '/signin', payload: { user: '🐹'.repeat(16) + 'ж'.repeat(16), transport: 'refresh' } })
  t.equal(ok.statusCode, 303)
})

t.test('what was typed is echoed back escaped', async (t) => {
  const app = await buildTestApp(t)
  const { page } = await refusedSignIn(app, { user: '"><script>alert(1)</script>' + 'x'.repeat(40), transport: 'refresh' })
  t.notMatch(page.body, /<script>alert/)
  t.match(page.body, /&lt;script&gt;alert\(1\)&lt;\/script&gt;/)
  const named = await app.inject({ method: 'GET', url: '/', headers: { cookie: await signIn(app, '<b>bold</b>') } })
  t.match(named.body, /&lt;b&gt;bold&lt;\/b&gt;/)
  t.notMatch(named.body, /<b>bold<\/b>/)
  // A form cookie made up by hand is checked like the form itself.
  const forged = await app.inject({ method: 'GET', url: '/', headers: { cookie: `chat_signin=${encodeURIComponent('{"user":"<i>x","transport":"nope","problem":"invalid"}')}` } })
  t.equal(forged.statusCode, 200)
  t.notMatch(forged.body, /<i>x/)
})

t.test('a tampered, unsigned, unknown or expired session cookie is treated as signed out', async (t) => {
  const app = await buildTestApp(t, { SESSION_MAX_AGE: '60' })
  const cookie = await signIn(app, 'ann')
  const [id, signature] = cookie.slice('chat_session='.length).split('.')
  const attempts = {
    'id changed, old signature': `chat_session=${id!.slice(0, -1)}${id!.endsWith('A') ? 'B' : 'A'}.${signature}`,
    'no signature': `chat_session=${id}`,
    'garbage': 'chat_session=%%%not-a-cookie',
    'signed but no such session': `chat_session=${app.signCookie('x'.repeat(43))}`,
  }
  for (const [what, header] of Object.entries(attempts)) {
    const res = await app.inject({ method: 'GET', url: '/', headers: { cookie: header } })
    t.equal(res.statusCode, 200, what)
    t.notMatch(res.body, /class="whoami"/, `${what}: signed out`)
  }
  const genuine = await app.inject({ method: 'GET', url: '/', headers: { cookie } })
  t.match(genuine.body, signedInAs('ann'), 'the genuine cookie still works')
})

t.test('sessions end after SESSION_IDLE unused and SESSION_MAX_AGE in all; the id changes at every sign-in', async (t) => {
  const app = await buildTestApp(t, { SESSION_IDLE: '60', SESSION_MAX_AGE: '120' })
  const signedIn = async (cookie: string) => /class="whoami"/.test((await app.inject({ method: 'GET', url: '/', headers: { cookie } })).body)
  const idOf = (cookie: string) => cookie.split('=')[1]!.split('.')[0]!
  const hashOf = (cookie: string) => createHash('sha256').update(idOf(cookie)).digest('base64url')
  const sessions = app.chatroom.sessions
  // Age the stored sessions as time would (before any request reads them, so no process cache holds them).
  const age = async (cookie: string, by: { seen?: number; created?: number }) => {
    const record = (await sessions.read(hashOf(cookie)))!
    await sessions.delete(hashOf(cookie))
    await sessions.create(hashOf(cookie), { ...record, seenAt: record.seenAt - (by.seen ?? 0), createdAt: record.createdAt - (by.created ?? 0) })
  }
  const idle = await signIn(app, 'idle')
  const old = await signIn(app, 'old')
  await age(idle, { seen: 61_000 })
  await age(old, { created: 121_000 })
  t.equal(await signedIn(idle), false, 'unused for longer than SESSION_IDLE: ended')
  t.equal(await signedIn(old), false, 'older than SESSION_MAX_AGE: ended')
  t.equal(await sessions.read(hashOf(idle)), undefined, 'and deleted from the store')

  const first = await signIn(app, 'rotates')
  const again = await app.inject({ method: 'POST', url: '/signin', headers: { cookie: first }, payload: { user: 'rotates', transport: 'refresh' } })
  t.equal(again.statusCode, 303, 'the same person signs in again: the name is still theirs')
  const second = `chat_session=${again.cookies.find((c) => c.name === 'chat_session')!.value}`
  t.not(idOf(second), idOf(first), 'a new session id at sign-in')
  t.equal(await signedIn(first), false, 'the old id no longer works')
  t.equal(await signedIn(second), true)
})

t.test('a cookie signed with another secret is refused', async (t) => {
  const other = await buildTestApp(t, { SESSION_SECRET: 'another-secret-another-secret-another-1' })
  const app = await buildTestApp(t)
  const cookie = await signIn(other, 'mallory')
  const res = await app.inject({ method: 'GET', url: '/', headers: { cookie } })
  t.notMatch(res.body, /class="whoami"/)
})

t.test('sign-out ends the session on the server at once: the old cookie stops working', async (t) => {
  const app = await buildTestApp(t)
  const cookie = await signIn(app, 'ann')
  t.equal((await app.inject({ method: 'GET', url: '/room/users', headers: { cookie } })).statusCode, 200)
  const res = await app.inject({ method: 'POST', url: '/signout', headers: { cookie } })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/')
  const cleared = res.cookies.find((c) => c.name === 'chat_session')
  t.equal(cleared?.value, '', 'cookie emptied')
  t.ok(cleared?.expires && cleared.expires.getTime() < Date.now(), 'and expired')
  const replay = await app.inject({ method: 'GET', url: '/room/users', headers: { cookie } })
  t.equal(replay.statusCode, 401, 'the cookie kept from before sign-out is refused')
  const said = await app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie }, payload: { text: 'still me?' } })
  t.equal(said.statusCode, 401)
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
