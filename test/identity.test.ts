import t from 'tap'
import { skeleton, unreadable } from '../app/identity.js'
import { buildTestApp, enter, eventually, refusedSignIn, signIn, SocketClient } from './helpers.js'

const signInAs = (app: Awaited<ReturnType<typeof buildTestApp>>, user: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url: '/signin', headers, payload: { user, transport: 'websocket' } })

t.test('a name someone present holds is refused, with a suggestion; the same person keeps it in another tab', async (t) => {
  const app = await buildTestApp(t, { RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '60' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const erin = await signIn(app, 'erin')
  const socket = await SocketClient.open(base, erin)
  await socket.untilId(1)

  const impostor = await signInAs(app, 'erin')
  t.equal(impostor.statusCode, 409, 'a second person asking for erin is refused')
  t.match(impostor.json(), { error: 'Conflict', message: /Someone in the room goes by "erin".*Try "erin2"/ }, 'a clear message and a suggestion')
  const { page } = await refusedSignIn(app, { user: 'erin', transport: 'longpolling' })
  t.match(page.body, /Someone in the room goes by &quot;erin&quot;.*Try &quot;erin2&quot;/, 'a browser gets the welcome page again, saying so')
  t.notOk(impostor.cookies.some((c) => c.name === 'chat_session' && c.value), 'and not signed in')
  for (const lookAlike of ['ERIN', 'еrin', 'ｅｒｉｎ', 'er1n', 'Erin ']) {
    const res = await signInAs(app, lookAlike)
    t.equal(res.statusCode, 409, `${JSON.stringify(lookAlike)} looks like erin: refused`)
  }

  // The same person, a second tab on another transport: the session is theirs, so is the name.
  await enter(app, erin, 'longpolling')
  const again = await signInAs(app, 'erin', { cookie: erin })
  t.equal(again.statusCode, 303, 'erin signing in again from her own browser keeps her name')
  const joins = socket.events.filter((e) => e.type === 'join' && e.user === 'erin')
  t.equal(joins.length, 1, 'one join for erin, however many tabs')

  // erin's flood budget is hers alone: nobody else can spend it.
  const bob = await signIn(app, 'bob')
  for (const text of ['one', 'two', 'three']) await app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: bob }, payload: { text } })
  const erinNow = `chat_session=${again.cookies.find((c) => c.name === 'chat_session')!.value}`
  const erinSays = await app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: erinNow }, payload: { text: 'mine' } })
  t.equal(erinSays.statusCode, 201, 'erin is not limited by what others sent')
  await socket.close()
})

t.test('a name is released when its holder leaves, and only then', async (t) => {
  const app = await buildTestApp(t, { PRESENCE_GRACE: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const alice = await signIn(app, 'alice')
  const socket = await SocketClient.open(base, alice)
  await socket.untilId(1)
  t.equal((await signInAs(app, 'alice')).statusCode, 409, 'taken while she is here')
  await socket.close()
  t.equal((await signInAs(app, 'alice')).statusCode, 409, 'still hers within the grace period (a reload)')
  await eventually(() => !app.chatroom.presence.isOnline('alice'), 'alice to leave')
  const other = await signInAs(app, 'alice')
  t.equal(other.statusCode, 303, 'free once she has left')
  // The first alice comes back with her old session: someone else holds the name now.
  const back = await SocketClient.open(base, alice)
  t.match(await back.untilClosed(), { code: 4403, reason: /someone else now goes by your name/ })
  const poll = await app.inject({ method: 'GET', url: '/longpolling/room/messages', headers: { cookie: alice } })
  t.equal(poll.statusCode, 409)
  t.match(poll.json(), { reason: 'name', message: /Someone else in the room now goes by your name/ })
})

t.test('names people can read: invisible characters, piles of accents and names with no letter are refused, saying why', async (t) => {
  const refused: [string, RegExp][] = [
    ['ali\u200Dce', /invisible characters \(U\+200D/],
    ['ali\u200Cce', /U\+200C/],
    ['al\u00ADice', /U\+00AD/],
    ['a\u034Flice', /U\+034F/],
    ['a\u2062lice', /U\+2062/],
    ['a\u180Elice', /U\+180E/],
    ['a\u061Clice', /U\+061C/],
    ['alice\u{E0041}', /U\+E0041/],
    ['ali\uFE0Fce', /U\+FE0F/],
    ['\u3164\u3164', /invisible/],
    ['\u2800\u2800', /at least one letter or digit/],
    ['z\u0301\u0302\u0303algo', /at most 2 accents/],
    ['you', /a word the chat uses itself/],
    ['YOU', /a word the chat uses itself/],
  ]
  for (const [name, why] of refused) {
    t.match(unreadable(name) ?? (skeleton(name) === 'you' ? 'a word the chat uses itself' : ''), why, JSON.stringify(name))
  }
  const app = await buildTestApp(t)
  for (const [name, why] of refused) {
    const res = await signInAs(app, name)
    t.equal(res.statusCode, 400, `${JSON.stringify(name)} refused at sign-in`)
    t.match(res.body, why)
  }
  for (const name of ['José', '李小龍', 'bob😀', '❤️bob', 'Zoë', 'Ωmega7', 'ann-marie']) {
    t.equal(unreadable(name), undefined, `${name} is fine`)
    t.equal((await signInAs(app, name)).statusCode, 303, `${name} signs in`)
  }
  t.equal(skeleton('аlice'), skeleton('ALICE'), 'Cyrillic а and case fold meet')
  t.equal(skeleton('ａｌｉｃｅ'), skeleton('alice'), 'fullwidth meets')
  t.not(skeleton('alice'), skeleton('bob'))
})

t.test('no cross-site side effects: entering and leaving need our own origin, and leaving is a POST', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  for (const url of ['/refresh', '/refresh/room', '/longpolling/room', '/longpolling/room/messages', '/refresh/room/thread']) {
    const res = await app.inject({ method: 'GET', url, headers: { cookie: ann, 'sec-fetch-site': 'cross-site' } })
    t.equal(res.statusCode, 403, `a cross-site navigation to ${url} is refused`)
  }
  t.equal(app.chatroom.lastId, 0, 'nobody joined')
  t.equal((await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: ann, 'sec-fetch-site': 'same-origin' } })).statusCode, 200, 'our own pages may')
  t.equal((await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: ann, 'sec-fetch-site': 'none' } })).statusCode, 200, 'a typed address may')
  t.equal(app.chatroom.roster().users.length, 1)
  for (const transport of ['refresh', 'longpolling', 'websocket']) {
    t.equal((await app.inject({ method: 'GET', url: `/${transport}/room/leave`, headers: { cookie: ann } })).statusCode, 404, `GET /${transport}/room/leave does nothing`)
    const forged = await app.inject({ method: 'POST', url: `/${transport}/room/leave`, headers: { cookie: ann, 'sec-fetch-site': 'cross-site' } })
    t.equal(forged.statusCode, 403, `a cross-site POST to /${transport}/room/leave is refused`)
  }
  t.equal(app.chatroom.roster().users.length, 1, 'still here')
  const left = await app.inject({ method: 'POST', url: '/refresh/room/leave', headers: { cookie: ann, 'sec-fetch-site': 'same-origin' } })
  t.equal(left.statusCode, 303)
  t.same(app.chatroom.roster().users, [], 'our own form leaves')
})
