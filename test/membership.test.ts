import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { EventStream, registerAccount, RoomsClient, SocketClient, post, served, skipUnless, twoProcesses } from './helpers.js'
import { havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// Membership is one fact on every process: a private room's or a DM's leave is a line in its log,
// and every process that reads the room applies it to its open connections at once (a one-room
// socket, a socket of several rooms, the person's stream, an event stream) and to every send,
// checked at the send. A DM left can be opened again, by either of its two people.

const history = async (base: string, cookie: string, room: string) => {
  const res = await fetch(`${base}/rooms/${room}/history?limit=50`, { headers: { cookie } })
  return { status: res.status, events: res.ok ? ((await res.json()) as { events: Event[] }).events : [] }
}

/** bob's connections to private room `ops` on `base`: a one-room socket, a socket of several rooms, his stream (follow=me) and an event stream of several rooms. */
async function bobsConnections(t: { teardown(fn: () => unknown): void }, base: string, bob: string) {
  const one = await SocketClient.open(base, bob, '', {}, '/websocket/rooms/ops/socket')
  t.teardown(() => one.close())
  const several = await RoomsClient.open(base, bob)
  t.teardown(() => several.close())
  several.send({ type: 'subscribe', room: 'ops' })
  const following = await RoomsClient.open(base, bob, '?follow=me')
  t.teardown(() => following.close())
  const stream = await EventStream.open(`${base}/sse/events?cursor=ops::`, { cookie: bob })
  t.teardown(() => stream.close())
  await one.until(() => one.hello !== undefined, 'the one-room socket greeted')
  await several.next((f) => f.type === 'subscribed' && f.room === 'ops', 'ops on the socket of several rooms')
  await following.next((f) => f.type === 'subscribed' && f.room === 'ops', 'ops on his stream')
  await stream.until((s) => s.named('hello').length > 0)
  return { one, several, following, stream }
}

/** What each of bob's connections has of ops's messages. */
const texts = (c: Awaited<ReturnType<typeof bobsConnections>>) => ({
  one: c.one.events.filter((e) => e.type === 'message').map((e) => e.text),
  several: c.several.events('ops').filter((e) => e.type === 'message').map((e) => e.text),
  following: c.following.events('ops').filter((e) => e.type === 'message').map((e) => e.text),
  stream: c.stream
    .messages()
    .filter((m) => m.data.type === 'message' && m.data.room === 'ops')
    .map((m) => m.data.text),
})

async function endedEverywhere(t: Test, c: Awaited<ReturnType<typeof bobsConnections>>, where: string) {
  const started = Date.now()
  t.same(await c.one.untilClosed(), { code: 4001, reason: 'you left the room' }, `${where}: the one-room socket is closed, saying he left`)
  t.ok(await c.several.until(() => c.several.frames.some((f) => f.type === 'unsubscribed' && f.room === 'ops' && f.reason === 'left')), `${where}: the socket of several rooms lets go of ops (left)`)
  t.ok(await c.following.until(() => c.following.frames.some((f) => f.type === 'unsubscribed' && f.room === 'ops' && f.reason === 'left')), `${where}: his stream lets go of ops (left)`)
  t.ok(await c.stream.until((s) => s.named('left').length > 0 || s.named('unsubscribed').length > 0), `${where}: the event stream says he left`)
  t.ok(Date.now() - started < 1000, `${where}: all within a second (${Date.now() - started} ms)`)
}

t.test('one process: a member who leaves a private room loses it on every connection, and a send of theirs is refused at the send', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'ops', visibility: 'private' })
  await post(base, ann, '/rooms/ops/invite', { user: 'bob' })
  const c = await bobsConnections(t, base, bob)
  await post(base, ann, '/longpolling/rooms/ops/messages', { text: 'before' })
  await c.one.until(() => texts(c).one.includes('before'), 'the line before')
  t.equal((await post(base, bob, '/rooms/ops/leave')).status, 200, 'bob leaves')
  await endedEverywhere(t, c, 'one process')
  // The room as this process holds it: a write of his is refused there, whatever route reached it.
  const ops = await app.chatroom.room('ops')
  t.match(await ops.say({ id: 'x', name: 'bob' }, 'still here?'), { outcome: 'missing', message: 'No such room.' }, 'a say of his is refused at the send')
  t.match(await ops.say({ id: 'x', name: 'ann' }, 'ann stays'), { outcome: 'ok' }, "the owner's goes through")
  t.equal((await post(base, bob, '/longpolling/rooms/ops/messages', { text: 'by HTTP' })).status, 404, 'his HTTP send: no such room')
  t.equal((await history(base, bob, 'ops')).status, 404, 'his history: no such room')
})

t.test('a DM left can be opened again by either person: both in it, its history readable, on their streams again', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  const opened = (await (await post(base, ann, '/direct', { user: 'bob' })).json()) as { room: string }
  await post(base, ann, `/longpolling/rooms/${opened.room}/messages`, { text: 'hi bob' })
  const bobs = await RoomsClient.open(base, bob, '?follow=me')
  t.teardown(() => bobs.close())
  await bobs.next((f) => f.type === 'subscribed' && f.room === opened.room, 'the DM on his stream')
  t.equal((await post(base, bob, `/rooms/${opened.room}/leave`)).status, 200, 'bob leaves the DM')
  t.ok(await bobs.until(() => bobs.frames.some((f) => f.type === 'unsubscribed' && f.room === opened.room)), 'taken off his stream')
  t.equal((await post(base, ann, `/longpolling/rooms/${opened.room}/messages`, { text: 'are you there?' })).status, 201, 'ann can still write to it')
  t.equal((await history(base, bob, opened.room)).status, 404, 'bob reads it no more')
  const annSees = (await history(base, ann, opened.room)).events
  t.same(
    annSees.filter((e) => e.type === 'leave').map((e) => e.user),
    ['bob'],
    'ann sees that bob left (a line, once)',
  )

  // bob opens it again: the same room, and he is in it.
  const again = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
  t.equal(again.room, opened.room, 'the same DM')
  const read = await history(base, bob, opened.room)
  t.equal(read.status, 200, 'his history again')
  t.same(
    read.events.filter((e) => e.type === 'message').map((e) => e.text),
    ['hi bob', 'are you there?'],
    'all of it, what ann wrote meanwhile included',
  )
  t.ok(await bobs.until(() => bobs.frames.filter((f) => f.type === 'subscribed' && f.room === opened.room).length === 2), 'on his stream again')
  t.equal((await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'back' })).status, 201, 'and he writes in it')

  // ann leaves; ann opens it again (the one who left, this time).
  await post(base, ann, `/rooms/${opened.room}/leave`)
  t.equal((await history(base, ann, opened.room)).status, 404)
  await post(base, ann, '/direct', { user: 'bob' })
  t.equal((await history(base, ann, opened.room)).status, 200, 'the one who left opens it again')
})

const shared = skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing')

t.test('two processes on PostgreSQL + Redis: a leave on A ends his one-room socket, socket of several rooms, stream and event stream on B within a second, and his sends on B are refused', { skip: shared }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const ann = await registerAccount(a.app, 'ann')
  const bob = await registerAccount(a.app, 'bob')
  await post(a.base, ann, '/rooms', { name: 'ops', visibility: 'private' })
  await post(a.base, ann, '/rooms/ops/invite', { user: 'bob' })
  const c = await bobsConnections(t, b.base, bob)
  await post(a.base, ann, '/longpolling/rooms/ops/messages', { text: 'before' })
  await c.one.until(() => texts(c).one.includes('before'), 'the line said on A, on B')

  t.equal((await post(a.base, bob, '/rooms/ops/leave')).status, 200, 'bob leaves on A')
  await endedEverywhere(t, c, 'on B')
  await post(a.base, ann, '/longpolling/rooms/ops/messages', { text: 'after he left' })
  // Bob's sends on B: over his socket of several rooms (refused: not subscribed), and by HTTP.
  c.several.send({ type: 'say', room: 'ops', text: 'sent on B', ref: 'r1' })
  t.ok(await c.several.until(() => c.several.frames.some((f) => f.error !== undefined && f.room === 'ops')), 'his frame on B is refused')
  t.equal((await post(b.base, bob, '/longpolling/rooms/ops/messages', { text: 'by HTTP on B' })).status, 404, 'his HTTP send on B: no such room')
  // The room as B holds it refuses him at the send too, whatever reached it.
  const onB = await b.app.chatroom.room('ops')
  t.match(await onB.say({ id: 'x', name: 'bob' }, 'raced'), { outcome: 'missing' }, "B's room refuses a say of his")
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(texts(c), { one: ['before'], several: ['before'], following: ['before'], stream: ['before'] }, 'none of his connections on B got what was said after he left')
  const stored = (await history(a.base, ann, 'ops')).events.filter((e) => e.type === 'message').map((e) => e.text)
  t.same(stored, ['before', 'after he left'], 'nothing of his was stored after he left')
})

t.test('two processes, the bus down while he leaves: B learns it from the log (not the bus) and ends his connections there all the same', { skip: shared }, async (t) => {
  const { a, b, redis } = await twoProcesses(t, { ownRedis: true })
  const ann = await registerAccount(a.app, 'ann')
  const bob = await registerAccount(a.app, 'bob')
  await post(a.base, ann, '/rooms', { name: 'ops', visibility: 'private' })
  await post(a.base, ann, '/rooms/ops/invite', { user: 'bob' })
  const one = await SocketClient.open(b.base, bob, '', {}, '/websocket/rooms/ops/socket')
  t.teardown(() => one.close())
  await one.until(() => one.hello !== undefined, 'greeted on B')
  // Redis killed: what A publishes now never reaches B by the bus.
  await redis.stop!()
  t.equal((await post(a.base, bob, '/rooms/ops/leave')).status, 200, 'bob leaves on A while the bus is down')
  const started = Date.now()
  t.same(await one.untilClosed(), { code: 4001, reason: 'you left the room' }, 'his socket on B is closed all the same')
  t.comment(`B learned it from the log in ${Date.now() - started} ms`)
  const onB = await b.app.chatroom.room('ops')
  t.match(await onB.say({ id: 'x', name: 'bob' }, 'still?'), { outcome: 'missing' }, 'and refuses a send of his')
  await redis.start!()
})
