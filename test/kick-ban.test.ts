import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { EventStream, registerAccount, RoomsClient, SocketClient, post, served, signInAt, skipUnless, twoProcesses } from './helpers.js'
import { havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// Kicks and bans: a moderator puts a person out of a room. Every reader of theirs for that room
// ends at once, saying who did it and why (a one-room socket closes 4003 with the words as its
// reason, a socket of several rooms and the person's stream say `unsubscribed` / `removed`, an
// event stream's last event is `removed`, a waiting long poll answers 403 with them); a kicked
// person may come back, a banned one may neither read, rejoin nor send until the ban ends or is
// lifted, on any route and any process. A guest's ban holds when they take another name.

const moderate = (base: string, cookie: string, room: string, form: Record<string, string>) => post(base, cookie, room === 'lobby' ? '/room/moderation' : `/rooms/${room}/moderation`, form)
const say = (base: string, cookie: string, room: string, text: string) => post(base, cookie, room === 'lobby' ? '/longpolling/room/messages' : `/longpolling/rooms/${room}/messages`, { text })
const history = async (base: string, cookie: string, room: string) => {
  const res = await fetch(`${base}/rooms/${room}/history?limit=50`, { headers: { cookie } })
  return { status: res.status, body: (await res.json()) as { events?: Event[]; message?: string } }
}
const lastIdOf = async (base: string, cookie: string, room: string) => {
  const events = (await history(base, cookie, room)).body.events ?? []
  return events.at(-1)?.id ?? 0
}

/** Every kind of reader a person can hold on one room: a one-room socket, a socket of several rooms, their stream (follow=me), an event stream, a waiting poll of the room and one of several rooms. */
async function readers(t: Test, base: string, cookie: string, room: string) {
  const one = await SocketClient.open(base, cookie, '', {}, `/websocket/rooms/${room}/socket`)
  t.teardown(() => one.close())
  const several = await RoomsClient.open(base, cookie)
  t.teardown(() => several.close())
  several.send({ type: 'subscribe', room })
  const following = await RoomsClient.open(base, cookie, '?follow=me')
  t.teardown(() => following.close())
  const stream = await EventStream.open(`${base}/sse/events?cursor=${room}::`, { cookie })
  t.teardown(() => stream.close())
  await one.until(() => one.hello !== undefined, 'the one-room socket greeted')
  await several.next((f) => f.type === 'subscribed' && f.room === room, 'subscribed on the socket of several rooms')
  await following.next((f) => f.type === 'subscribed' && f.room === room, 'followed on the person stream')
  await stream.until((s) => s.named('hello').length > 0)
  const last = await lastIdOf(base, cookie, room)
  const poll = fetch(`${base}/longpolling/rooms/${room}/messages?lastReceived=${last}`, { headers: { cookie } })
  const polls = fetch(`${base}/longpolling/messages?cursor=${room}::${last}`, { headers: { cookie } })
  // Both polls are waiting once the server holds them (nothing newer to answer at once).
  await new Promise((resolve) => setTimeout(resolve, 150))
  return { one, several, following, stream, poll, polls }
}

/** Each reader ends saying `words`, all within a second of `since`. */
async function putOut(t: Test, r: Awaited<ReturnType<typeof readers>>, room: string, words: RegExp, since: number, where: string) {
  const closed = await r.one.untilClosed()
  t.equal(closed.code, 4003, `${where}: the one-room socket is closed 4003`)
  t.match(closed.reason, words, `${where}: its reason says who and why`)
  const gone = (c: RoomsClient) => c.frames.find((f) => f.type === 'unsubscribed' && f.room === room)
  t.ok(await r.several.until(() => gone(r.several) !== undefined), `${where}: the socket of several rooms lets go of the room`)
  t.match(gone(r.several), { reason: 'removed', message: words }, `${where}: saying who and why`)
  t.ok(await r.following.until(() => gone(r.following) !== undefined), `${where}: the person's stream lets go of it`)
  t.match(gone(r.following), { reason: 'removed', message: words })
  t.ok(await r.stream.until((s) => s.named('removed').length > 0), `${where}: the event stream says removed`)
  t.match(r.stream.named('removed')[0], { room, message: words })
  const poll = await r.poll
  t.equal(poll.status, 403, `${where}: the waiting poll answers 403`)
  t.match(await poll.json(), { error: 'Forbidden', message: words })
  const polls = (await (await r.polls).json()) as { refused: { room: string; message: string }[] }
  t.match(polls.refused, [{ room, error: 'Forbidden', message: words }], `${where}: the poll of several rooms refuses the room, saying why`)
  t.ok(Date.now() - since < 1000, `${where}: all within a second (${Date.now() - since} ms)`)
}

async function dev(t: Test, visibility: 'public' | 'private', env: Record<string, string> = {}) {
  const { app, base } = await served(t, { RATE_LIMIT_MESSAGES: '1000', ...env })
  const [ann, bob, cat] = await Promise.all(['ann', 'bob', 'cat'].map((name) => registerAccount(app, name)))
  await post(base, ann!, '/rooms', { name: 'dev', visibility })
  for (const cookie of [bob!, cat!]) {
    if (visibility === 'private') await post(base, ann!, '/rooms/dev/invite', { user: cookie === bob ? 'bob' : 'cat' })
    else await post(base, cookie, '/rooms/dev/join')
  }
  return { app, base, ann: ann!, bob: bob!, cat: cat! }
}

t.test('a ban in a private room ends every reader of theirs at once, saying who and why; they may not read, rejoin or send until it is lifted', async (t) => {
  const { base, ann, bob, cat } = await dev(t, 'private')
  t.equal((await moderate(base, ann, 'dev', { action: 'promote', user: 'cat' })).status, 200)
  const r = await readers(t, base, bob, 'dev')
  const since = Date.now()
  const banned = await moderate(base, cat, 'dev', { action: 'ban', user: 'bob', minutes: '60', reason: 'spam links' })
  t.equal(banned.status, 200, 'a moderator bans bob for an hour')
  t.match(await banned.json(), { type: 'moderation', action: 'ban', user: 'cat', target: 'bob', reason: 'spam links' })
  const words = /^cat banned you from this room until \d{4}-\d\d-\d\d \d\d:\d\d UTC: spam links$/
  await putOut(t, r, 'dev', words, since, 'banned')

  const read = await history(base, bob, 'dev')
  t.equal(read.status, 403, 'his history: 403')
  t.match(read.body.message, words, 'saying who, until when and why')
  const sent = await say(base, bob, 'dev', 'let me back')
  t.equal(sent.status, 403, 'his send: 403')
  const socket = await SocketClient.open(base, bob, '', {}, '/websocket/rooms/dev/socket').catch((error: Error) => error)
  t.match(String(socket), /403/, 'a new one-room socket is refused before the upgrade')
  const several = await RoomsClient.open(base, bob)
  t.teardown(() => several.close())
  several.send({ type: 'subscribe', room: 'dev' })
  t.match(await several.next((f) => f.room === 'dev', 'answered'), { type: 'refused', status: 403, message: words }, 'subscribing again on a socket of several rooms: refused 403')
  const invited = await post(base, ann, '/rooms/dev/invite', { user: 'bob' })
  t.equal(invited.status, 403, 'the owner cannot invite him back while banned')
  t.match(await invited.json(), { message: /bob is banned from this room/ })
  t.notOk((await (await fetch(`${base}/rooms`, { headers: { cookie: bob } })).text()).includes('"dev"'), 'dev is no longer in his list of rooms')
  t.equal((await history(base, ann, 'dev')).body.events!.filter((e) => e.type === 'message' && e.text === 'let me back').length, 0, 'nothing of his was stored')

  t.equal((await moderate(base, cat, 'dev', { action: 'unban', user: 'bob' })).status, 200, 'the ban is lifted')
  t.equal((await history(base, bob, 'dev')).status, 404, 'lifted, he is not a member again by itself: the private room is not his to read')
  t.equal((await post(base, ann, '/rooms/dev/invite', { user: 'bob' })).status, 200, 'invited back')
  t.equal((await say(base, bob, 'dev', 'thanks')).status, 201, 'he writes again')
  const lines = (await history(base, ann, 'dev')).body.events!.filter((e) => e.type === 'moderation').map((e) => `${e.user} ${e.action} ${e.target}`)
  t.same(lines, ['ann promote cat', 'cat ban bob', 'cat unban bob'], 'the log says each')
})

t.test('a kick from a public room ends their readers; they may join again at once', async (t) => {
  const { base, ann, bob } = await dev(t, 'public')
  const r = await readers(t, base, bob, 'dev')
  const since = Date.now()
  t.equal((await moderate(base, ann, 'dev', { action: 'kick', user: 'bob', reason: 'cool off' })).status, 200, 'the owner kicks bob')
  await putOut(t, r, 'dev', /^ann removed you from this room: cool off You may join it again\.$/, since, 'kicked')
  t.equal((await post(base, bob, '/rooms/dev/join')).status, 200, 'he joins again')
  t.equal((await say(base, bob, 'dev', 'back')).status, 201, 'and writes')
  t.equal((await moderate(base, ann, 'lobby', { action: 'kick', user: 'bob' })).status, 403, 'the lobby is not the owner’s')
})

t.test('a guest is banned by their session: another guest name from the same browser is still banned; others go on', async (t) => {
  const { app, base, ann } = await dev(t, 'public', { OPERATORS: 'root' })
  const root = await registerAccount(app, 'root')
  const gus = await signInAt(base, 'gus', 'longpolling')
  const reads = await RoomsClient.open(base, gus)
  t.teardown(() => reads.close())
  reads.send({ type: 'subscribe', room: 'lobby' })
  await reads.next((f) => f.type === 'subscribed' && f.room === 'lobby', 'gus reads the lobby')
  t.equal((await say(base, gus, 'lobby', 'buy now')).status, 201)
  t.equal((await moderate(base, ann, 'lobby', { action: 'ban', user: 'gus' })).status, 403, "a room's owner cannot ban in the lobby")
  t.equal((await moderate(base, root, 'lobby', { action: 'ban', user: 'gus', reason: 'spam' })).status, 200, 'an operator bans gus from the lobby, for good')
  t.ok(await reads.until(() => reads.frames.some((f) => f.type === 'unsubscribed' && f.room === 'lobby' && f.reason === 'removed')), 'his reader ends')
  t.equal((await say(base, gus, 'lobby', 'again')).status, 403, 'his send: 403')
  // Signs in again from the same browser (its session cookie) under another name.
  const renamed = await fetch(`${base}/signin`, { method: 'POST', body: new URLSearchParams({ user: 'gus2', transport: 'longpolling' }), headers: { cookie: gus }, redirect: 'manual' })
  const gus2 = renamed.headers.getSetCookie().find((c) => c.startsWith('chat_session='))!.split(';')[0]!
  const refused = await say(base, gus2, 'lobby', 'new name, same spam')
  t.equal(refused.status, 403, 'under another name, still banned')
  t.match(await refused.json(), { message: /^root banned you from this room: spam$/ })
  t.equal((await fetch(`${base}/room/history?limit=5`, { headers: { cookie: gus2 } })).status, 403, 'nor may he read it')
  const other = await signInAt(base, 'hal', 'longpolling')
  t.equal((await say(base, other, 'lobby', 'hello')).status, 201, 'another guest writes on')
  // Another guest who later goes by a banned guest's name (another session) is not banned for it.
  const devRoom = await app.chatroom.room('dev')
  await app.chatroom.roomStore.restrict('dev', { person: 'session-of-zed', name: 'zed', kind: 'ban', until: undefined, by: 'root', reason: '', at: Date.now() })
  await devRoom.moderation({ name: 'root' }, 'ban', 'zed', '')
  t.match(await devRoom.say({ id: 'session-of-zed', name: 'zed' }, 'me again'), { outcome: 'forbidden' }, 'the banned guest is refused')
  let otherZed = await devRoom.say({ id: 'another-session', name: 'zed' }, 'a different zed')
  for (let i = 0; i < 40 && otherZed.outcome !== 'ok'; i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    otherZed = await devRoom.say({ id: 'another-session', name: 'zed' }, 'a different zed')
  }
  t.equal(otherZed.outcome, 'ok', 'someone else by that name (another session) writes, once the room has the ban from the store')
  t.equal((await moderate(base, root, 'lobby', { action: 'unban', user: 'gus' })).status, 200, 'a banned guest not present is found by the ban')
  t.equal((await say(base, gus2, 'lobby', 'sorry')).status, 201, 'lifted: he writes again')
})

t.test('rights and bad input: a member cannot kick or ban; nobody moderates a DM but operators; a moderator cannot ban the owner', async (t) => {
  const { base, ann, bob } = await dev(t, 'public')
  const refused = await moderate(base, bob, 'dev', { action: 'ban', user: 'cat' })
  t.equal(refused.status, 403)
  t.match(await refused.json(), { message: "Only the room's moderators can do that." })
  t.equal((await moderate(base, bob, 'dev', { action: 'kick', user: 'cat' })).status, 403)
  await moderate(base, ann, 'dev', { action: 'promote', user: 'bob' })
  t.equal((await moderate(base, bob, 'dev', { action: 'ban', user: 'ann' })).status, 403, 'a moderator cannot ban the owner')
  t.equal((await moderate(base, bob, 'dev', { action: 'ban', user: 'cat', minutes: '0' })).status, 400, 'minutes 0: 400')
  t.equal((await moderate(base, bob, 'dev', { action: 'unban', user: 'nobody' })).status, 404, 'nobody by that name: 404')
  const dm = (await (await post(base, ann, '/direct', { user: 'bob' })).json()) as { room: string }
  const inDm = await moderate(base, ann, dm.room, { action: 'ban', user: 'bob' })
  t.equal(inDm.status, 403, 'the opener of a DM cannot ban its other person')
  t.match(await inDm.json(), { message: 'A direct room has no moderators.' })
})

t.test('the one-room socket takes moderation frames too: acknowledged, or refused with status and why', async (t) => {
  const { base, ann, bob, cat } = await dev(t, 'public')
  const anns = await SocketClient.open(base, ann, '', {}, '/websocket/rooms/dev/socket')
  t.teardown(() => anns.close())
  await anns.until(() => anns.hello !== undefined, 'greeted')
  const cats = await SocketClient.open(base, cat, '', {}, '/websocket/rooms/dev/socket')
  t.teardown(() => cats.close())
  await cats.until(() => cats.hello !== undefined, 'greeted')
  anns.ws.send(JSON.stringify({ type: 'moderation', action: 'kick', user: 'cat', reason: 'test', ref: 'k1' }))
  await anns.until(() => anns.acks.some((a) => a.ref === 'k1'), 'the kick is acknowledged')
  t.equal((await cats.untilClosed()).code, 4003, "cat's socket is closed 4003")
  const bobs = await SocketClient.open(base, bob, '', {}, '/websocket/rooms/dev/socket')
  t.teardown(() => bobs.close())
  await bobs.until(() => bobs.hello !== undefined, 'greeted')
  bobs.ws.send(JSON.stringify({ type: 'moderation', action: 'ban', user: 'ann', ref: 'b1' }))
  await bobs.until(() => bobs.errors.some((e) => e.ref === 'b1'), 'refused')
  t.match(bobs.errors.find((e) => e.ref === 'b1'), { error: 'Forbidden', status: 403, message: "Only the room's moderators can do that." })
})

const shared = skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing')

t.test('two processes on PostgreSQL + Redis: a ban on A ends every reader of his on B within a second, and B refuses his next send; a kick too', { skip: shared }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const ann = await registerAccount(a.app, 'ann')
  const bob = await registerAccount(a.app, 'bob')
  await post(a.base, ann, '/rooms', { name: 'ops', visibility: 'private' })
  await post(a.base, ann, '/rooms/ops/invite', { user: 'bob' })
  const r = await readers(t, b.base, bob, 'ops')
  const since = Date.now()
  t.equal((await moderate(a.base, ann, 'ops', { action: 'ban', user: 'bob', reason: 'leaks' })).status, 200, 'banned on A')
  await putOut(t, r, 'ops', /^ann banned you from this room: leaks$/, since, 'banned on A, read on B')
  t.equal((await say(b.base, bob, 'ops', 'from B')).status, 403, 'his next send on B: refused')
  t.equal((await history(b.base, bob, 'ops')).status, 403, 'his history on B: refused')

  await post(a.base, ann, '/rooms', { name: 'pub' })
  await post(b.base, bob, '/rooms/pub/join')
  const k = await readers(t, b.base, bob, 'pub')
  const kicked = Date.now()
  t.equal((await moderate(a.base, ann, 'pub', { action: 'kick', user: 'bob' })).status, 200, 'kicked on A')
  await putOut(t, k, 'pub', /^ann removed you from this room\. You may join it again\.$/, kicked, 'kicked on A, read on B')
})

t.test('two processes, the bus down while he is banned: B learns it from the log and ends his socket there all the same; his send on B is refused', { skip: shared }, async (t) => {
  const { a, b, redis } = await twoProcesses(t, { ownRedis: true })
  const ann = await registerAccount(a.app, 'ann')
  const bob = await registerAccount(a.app, 'bob')
  await post(a.base, ann, '/rooms', { name: 'pub' })
  await post(a.base, bob, '/rooms/pub/join')
  const one = await SocketClient.open(b.base, bob, '', {}, '/websocket/rooms/pub/socket')
  t.teardown(() => one.close())
  await one.until(() => one.hello !== undefined, 'greeted on B')
  // Redis killed (SIGKILL): what A publishes now never reaches B by the bus.
  await redis.stop!()
  t.equal((await moderate(a.base, ann, 'pub', { action: 'ban', user: 'bob', reason: 'raid' })).status, 200, 'banned on A while the bus is down')
  const started = Date.now()
  const closed = await one.untilClosed()
  t.equal(closed.code, 4003, 'his socket on B is closed all the same')
  t.match(closed.reason, /^ann banned you from this room: raid$/)
  t.comment(`B learned it from the log in ${Date.now() - started} ms`)
  const sent = await say(b.base, bob, 'pub', 'still here')
  t.equal(sent.status, 403, 'his send on B is refused')
  await redis.start!()
})

/** Signs in with the account's password (the welcome form): the response. */
const passwordSignIn = (base: string, user: string) =>
  fetch(`${base}/signin`, { method: 'POST', body: new URLSearchParams({ user, password: 'a long enough password', transport: 'websocket' }), headers: { accept: 'application/json' }, redirect: 'manual' })

t.test('an operator suspends an account: every session of theirs ends, no sign-in is let through, saying why, until it is lifted; nobody else may', async (t) => {
  const { app, base, ann, bob } = await dev(t, 'public', { OPERATORS: 'root' })
  const root = await registerAccount(app, 'root')
  const socket = await SocketClient.open(base, bob, '', {}, '/websocket/rooms/dev/socket')
  t.teardown(() => socket.close())
  await socket.until(() => socket.hello !== undefined, 'bob reads dev')
  const refused = await moderate(base, ann, 'lobby', { action: 'suspend', user: 'bob' })
  t.equal(refused.status, 403, "a room's owner cannot suspend anyone")
  t.equal((await moderate(base, ann, 'dev', { action: 'suspend', user: 'bob' })).status, 403, 'nor in her own room')
  const suspended = await moderate(base, root, 'lobby', { action: 'suspend', user: 'bob', minutes: '1440', reason: 'fraud' })
  t.equal(suspended.status, 200, 'an operator suspends bob for a day')
  t.match(await suspended.json(), { type: 'moderation', action: 'suspend', user: 'root', target: 'bob', reason: 'fraud' })
  t.equal((await socket.untilClosed()).code, 4401, 'his open socket is closed: signed out')
  t.equal((await say(base, bob, 'dev', 'still me?')).status, 401, 'his old session is gone')
  const again = await passwordSignIn(base, 'bob')
  t.equal(again.status, 403, 'signing in again with his password: 403')
  t.match(await again.text(), /This account is suspended until \d{4}-\d\d-\d\d \d\d:\d\d UTC by root: fraud/, 'saying until when, by whom and why')
  t.equal(again.headers.getSetCookie().length, 0, 'and no session')
  t.equal((await moderate(base, root, 'lobby', { action: 'suspend', user: 'root' })).status, 403, 'an operator cannot suspend an operator')
  t.equal((await moderate(base, root, 'lobby', { action: 'unsuspend', user: 'bob' })).status, 200, 'lifted')
  t.equal((await passwordSignIn(base, 'bob')).status, 303, 'he signs in again')
})

t.test('two processes on PostgreSQL + Redis: a suspension on A closes his socket on B and B refuses his sign-in', { skip: shared }, async (t) => {
  const { a, b } = await twoProcesses(t, { env: { OPERATORS: 'root' } })
  const root = await registerAccount(a.app, 'root')
  const bob = await registerAccount(a.app, 'bob')
  const socket = await SocketClient.open(b.base, bob, '', {}, '/websocket/room/socket')
  t.teardown(() => socket.close())
  await socket.until(() => socket.hello !== undefined, 'bob reads the lobby on B')
  t.equal((await moderate(a.base, root, 'lobby', { action: 'suspend', user: 'bob', reason: 'fraud' })).status, 200, 'suspended on A')
  t.equal((await socket.untilClosed()).code, 4401, 'his socket on B is closed')
  t.equal((await passwordSignIn(b.base, 'bob')).status, 403, 'B refuses his sign-in')
})

/** Sends as fast as answers come, `inFlight` at a time, until `stop()`; every acknowledged id. */
function spam(base: string, cookie: string, room: string, inFlight = 8) {
  let stopped = false
  const acked: number[] = []
  let n = 0
  const one = async (): Promise<void> => {
    while (!stopped && n < 2000) {
      const res = await say(base, cookie, room, `spam ${n++}`)
      if (res.status === 201) acked.push(((await res.json()) as Event).id)
      else await res.body?.cancel()
    }
  }
  const running = Promise.all(Array.from({ length: inFlight }, one))
  return {
    acked,
    stop: async () => {
      stopped = true
      await running
    },
  }
}

t.test('a ban raced with a flood of sends: none of theirs follows the ban in the log (one process, 20 runs)', async (t) => {
  const { base, ann, bob } = await dev(t, 'public')
  for (let run = 1; run <= 20; run++) {
    const flood = spam(base, bob, 'dev')
    await new Promise((resolve) => setTimeout(resolve, 30 + run * 3))
    const banned = (await (await moderate(base, ann, 'dev', { action: 'ban', user: 'bob' })).json()) as Event
    await new Promise((resolve) => setTimeout(resolve, 50))
    await flood.stop()
    const after = flood.acked.filter((id) => id > banned.id)
    if (after.length > 0 || run === 20) t.same(after, [], `run ${run}: ${flood.acked.length} of his sends acknowledged before the ban (event ${banned.id}), none after`)
    t.equal((await moderate(base, ann, 'dev', { action: 'unban', user: 'bob' })).status, 200)
  }
})

t.test('two processes: a ban on A raced with his flood on B: his sends on B stop within the bus delay (counted), and none is taken after B learns it', { skip: shared }, async (t) => {
  const { a, b } = await twoProcesses(t, { env: { RATE_LIMIT_MESSAGES: '100000' } })
  const ann = await registerAccount(a.app, 'ann')
  const bob = await registerAccount(a.app, 'bob')
  await post(a.base, ann, '/rooms', { name: 'pub' })
  await post(b.base, bob, '/rooms/pub/join')
  const late: number[] = []
  for (let run = 1; run <= 5; run++) {
    const flood = spam(b.base, bob, 'pub')
    await new Promise((resolve) => setTimeout(resolve, 50))
    const banned = (await (await moderate(a.base, ann, 'pub', { action: 'ban', user: 'bob' })).json()) as Event
    await new Promise((resolve) => setTimeout(resolve, 300))
    const before = flood.acked.length
    await new Promise((resolve) => setTimeout(resolve, 300))
    t.equal(flood.acked.length, before, `run ${run}: nothing of his is taken on B once it has the ban`)
    await flood.stop()
    late.push(flood.acked.filter((id) => id > banned.id).length)
    t.equal((await moderate(a.base, ann, 'pub', { action: 'unban', user: 'bob' })).status, 200)
  }
  t.comment(`sends of his acknowledged on B after the ban's event, per run: ${late.join(', ')}`)
})

t.test('a ban holds on the side routes too: search, the list of rooms, the person stream; a banned owner moderates no more; a DM has no reports; a private room bans only its members', async (t) => {
  const { app, base, ann, bob, cat } = await dev(t, 'public', { OPERATORS: 'root' })
  const root = await registerAccount(app, 'root')
  await say(base, ann, 'dev', 'the secret plan')
  t.equal((await moderate(base, ann, 'dev', { action: 'ban', user: 'bob' })).status, 200)
  const search = async (cookie: string) => ((await (await fetch(`${base}/search?q=secret`, { headers: { cookie, accept: 'application/json' } })).json()) as { results: { room: string }[] }).results
  t.equal((await search(cat)).filter((h) => h.room === 'dev').length, 1, 'search finds the line for a member')
  t.same((await search(bob)).filter((h) => h.room === 'dev'), [], 'but finds nothing for him in the room he is banned from')
  t.equal((await fetch(`${base}/search?q=secret&room=dev`, { headers: { cookie: bob, accept: 'application/json' } })).status, 404, 'nor when he names it')
  const listed = (await (await fetch(`${base}/rooms`, { headers: { cookie: bob } })).json()) as { rooms: { name: string }[] }
  t.notOk(listed.rooms.some((r) => r.name === 'dev'), 'the room is not in his list')
  const poll = (await (await fetch(`${base}/longpolling/messages?follow=me`, { headers: { cookie: bob } })).json()) as { rooms: Record<string, unknown>; refused: unknown[] }
  t.notOk('dev' in poll.rooms, 'his stream does not follow it')
  t.same(poll.refused, [], 'nor is it refused at every poll')

  // An operator bans the owner of her own room: she moderates it no more.
  t.equal((await moderate(base, root, 'dev', { action: 'ban', user: 'ann', reason: 'abuse' })).status, 200)
  const refused = await moderate(base, ann, 'dev', { action: 'kick', user: 'cat' })
  t.equal(refused.status, 403, 'the banned owner cannot kick')
  t.match(await refused.json(), { message: /root banned you from this room: abuse/ })

  // A DM: nobody to report to.
  const dm = (await (await post(base, bob, '/direct', { user: 'cat' })).json()) as { room: string }
  const line = (await (await say(base, bob, dm.room, 'hi')).json()) as Event
  const report = await post(base, cat, `/rooms/${dm.room}/messages/${line.id}/report`, { reason: 'x' })
  t.equal(report.status, 403, 'a report in a DM is refused')
  t.match(await report.json(), { message: 'A direct room has no moderators to report to.' })

  // A private room: a ban of someone not in it is refused (it would tell them the room exists).
  await post(base, root, '/rooms', { name: 'ops', visibility: 'private' })
  const outsider = await moderate(base, root, 'ops', { action: 'ban', user: 'cat' })
  t.equal(outsider.status, 400)
  t.equal((await history(base, cat, 'ops')).status, 404, 'so the room still does not exist for her')
})

t.test('the store away while a moderator acts: 503 on the route and on a frame, and the process goes on', async (t) => {
  const { app, base, ann } = await dev(t, 'public')
  const restrict = app.chatroom.roomStore.restrict
  app.chatroom.roomStore.restrict = () => Promise.reject(new Error('the store is away'))
  t.teardown(() => {
    app.chatroom.roomStore.restrict = restrict
  })
  const route = await moderate(base, ann, 'dev', { action: 'ban', user: 'bob' })
  t.equal(route.status, 503, 'the route: 503')
  t.match(await route.json(), { message: /unavailable right now; nothing was done/ })
  const socket = await SocketClient.open(base, ann, '', {}, '/websocket/rooms/dev/socket')
  t.teardown(() => socket.close())
  await socket.until(() => socket.hello !== undefined, 'greeted')
  socket.ws.send(JSON.stringify({ type: 'moderation', action: 'mute', user: 'bob', ref: 'm1' }))
  await socket.until(() => socket.errors.some((e) => e.ref === 'm1'), 'answered')
  t.match(socket.errors.find((e) => e.ref === 'm1'), { status: 503 }, 'the frame: 503')
  app.chatroom.roomStore.restrict = restrict
  t.equal((await moderate(base, ann, 'dev', { action: 'mute', user: 'bob' })).status, 200, 'back: it works, the process went on')
})
