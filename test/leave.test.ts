import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { buildTestApp, eventually, signIn, SocketClient } from './helpers.js'

/** A room page as a browser loads it: its page id (tab) comes with the HTML. */
async function openPage(app: FastifyInstance, cookie: string, transport: 'websocket' | 'longpolling' | 'refresh'): Promise<string> {
  const page = await app.inject({ method: 'GET', url: transport === 'refresh' ? '/refresh/room' : `/${transport}/room`, headers: { cookie } })
  const tab = /data-tab="([\w-]+)"/.exec(page.body)?.[1]
  if (page.statusCode !== 200 || !tab) throw new Error(`no room page: ${page.statusCode}`)
  return tab
}

/** What navigator.sendBeacon sends on pagehide. */
const beacon = (app: FastifyInstance, cookie: string, tab: string) =>
  app.inject({ method: 'POST', url: '/room/leave', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded;charset=UTF-8' }, payload: `tab=${tab}` })

const last = (app: FastifyInstance) => app.chatroom.archive().at(-1)?.event

// A grace of a minute: any leave seen within these tests was published at once, not after it.
const slowGrace = { PRESENCE_GRACE: '60' }

t.test('closing the last page leaves at once, whatever the transport; another page of the same user holds them', async (t) => {
  const app = await buildTestApp(t, slowGrace)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  const socketTab = await openPage(app, ann, 'websocket')
  const socket = await SocketClient.open(base, ann, `?tab=${socketTab}`)
  await socket.untilId(1)
  const pollTab = await openPage(app, ann, 'longpolling')
  const poll = app.inject({ method: 'GET', url: `/longpolling/room/messages?lastReceived=1&tab=${pollTab}`, headers: { cookie: ann } })
  await eventually(() => app.chatroom.waitingCount === 1, 'the poll to wait')

  // The socket's page goes: its socket is closed (4001, no reconnect), ann stays (her poll holds her).
  t.equal((await beacon(app, ann, socketTab)).statusCode, 204)
  t.match(await socket.untilClosed(), { code: 4001, reason: 'you left the room' })
  t.ok(app.chatroom.presence.isOnline('ann'), 'her other page still holds her')
  t.equal(last(app)?.type, 'join', 'no leave yet')

  // The poll's page goes: its wait answers, and the leave is published at once.
  t.equal((await beacon(app, ann, pollTab)).statusCode, 204)
  t.equal((await poll).statusCode, 200, 'the pending poll answered')
  t.match(last(app), { type: 'leave', user: 'ann' })
  t.notOk(app.chatroom.presence.isOnline('ann'))
})

t.test('a reload makes no noise: the new page holds the user before the old one says goodbye', async (t) => {
  const app = await buildTestApp(t, slowGrace)
  const ann = await signIn(app, 'ann')
  for (const transport of ['websocket', 'longpolling', 'refresh'] as const) {
    const old = await openPage(app, ann, transport)
    const lastBefore = app.chatroom.lastId
    // The browser fetches the new page, then the old one's pagehide sends its beacon.
    await openPage(app, ann, transport)
    await beacon(app, ann, old)
    t.equal(app.chatroom.lastId, lastBefore, `${transport}: no leave, no join`)
    t.ok(app.chatroom.presence.isOnline('ann'))
  }
})

t.test('signing out with a poll pending leaves at once (it no longer lingers for the lease)', async (t) => {
  const app = await buildTestApp(t, slowGrace)
  const ann = await signIn(app, 'ann', 'longpolling')
  const tab = await openPage(app, ann, 'longpolling')
  const poll = app.inject({ method: 'GET', url: `/longpolling/room/messages?lastReceived=1&tab=${tab}`, headers: { cookie: ann } })
  await eventually(() => app.chatroom.waitingCount === 1, 'the poll to wait')
  const out = await app.inject({ method: 'POST', url: '/signout', headers: { cookie: ann, accept: 'text/html' } })
  t.equal(out.statusCode, 303)
  t.match(last(app), { type: 'leave', user: 'ann' })
  await poll
  // The ended poll did not renew her lease: she stays gone.
  t.notOk(app.chatroom.presence.isOnline('ann'))
  t.equal(last(app)?.type, 'leave')
  // The welcome page says she left, with her name kept in the field.
  const form = out.cookies.find((c) => c.name === 'chat_signin')!
  const welcome = await app.inject({ method: 'GET', url: '/', headers: { cookie: `chat_signin=${form.value}` } })
  t.match(welcome.body, /class="flash info" role="status">You signed out/)
  t.match(welcome.body, /value="ann"/)
})

t.test('a transport\'s leave link without a page id leaves that transport at once', async (t) => {
  const app = await buildTestApp(t, slowGrace)
  const ann = await signIn(app, 'ann', 'refresh')
  await openPage(app, ann, 'refresh')
  const res = await app.inject({ method: 'POST', url: '/refresh/room/leave', headers: { cookie: ann } })
  t.equal(res.statusCode, 303)
  t.match(last(app), { type: 'leave', user: 'ann' })
})

t.test('a beacon without a valid page id is refused and leaves nobody', async (t) => {
  const app = await buildTestApp(t, slowGrace)
  const ann = await signIn(app, 'ann')
  await openPage(app, ann, 'longpolling')
  for (const tab of ['', 'short', '<script>', 'x'.repeat(41)]) {
    const res = await beacon(app, ann, encodeURIComponent(tab))
    t.equal(res.statusCode, 400, JSON.stringify(tab))
    t.match(res.json(), { error: 'Bad Request', message: /tab must be the page id/ })
  }
  t.ok(app.chatroom.presence.isOnline('ann'))
  t.equal((await app.inject({ method: 'POST', url: '/room/leave', payload: { tab: 'abcdefgh12' } })).statusCode, 401, 'a stranger gets 401')
})

t.test('one user cannot grow the server\'s lease table by making up page ids', async (t) => {
  const app = await buildTestApp(t, slowGrace)
  const ann = await signIn(app, 'ann', 'refresh')
  for (let i = 0; i < 100; i++) {
    const res = await app.inject({ method: 'GET', url: `/refresh/room/thread?tab=madeup${String(i).padStart(4, '0')}`, headers: { cookie: ann } })
    t.equal(res.statusCode, 200)
  }
  const leases = (app.chatroom.presence as unknown as { users: Map<string, { leases: Map<string, number> }> }).users
  const held = [...leases.values()][0]!.leases.size
  t.ok(held <= 17, `ann holds ${held} leases (at most 16 pages', then one shared)`)
})
