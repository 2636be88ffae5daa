import t from 'tap'
import { EventStream, registerAccount, RoomsClient, post, served, StreamPoller } from './helpers.js'

// The person's stream (`follow=me`): one connection carries every room the person belongs to,
// now and later, and their own events under a cursor of their own (`me`). A DM someone opens to
// them, an invitation, a room joined or left on another device: each reaches the open
// connection at once, and a resume delivers every room's missed events and the person's once.

/** A client of the long poll with follow=me, as a page would keep it (no page id: each poll enters its rooms); any answer but 200 fails the test. */
class FollowPoller extends StreamPoller {
  constructor(base: string, cookie: string) {
    super(base, cookie, { strict: true })
  }
}

t.test('long polling with follow=me: every room of the person without naming one, a DM opened by someone else, a room left on another device, and its own cursor', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  t.equal((await post(base, ann, '/rooms', { name: 'red' })).status, 201, 'ann makes red (and is its member)')
  t.equal((await post(base, bob, '/rooms', { name: 'blue' })).status, 201, 'bob makes blue (ann is not in it)')

  const poller = new FollowPoller(base, ann)
  const first = await poller.poll()
  t.same(Object.keys(first.rooms).sort(), ['lobby', 'me', 'red'], 'the first poll follows the lobby, red and her own events: no subscribe, no cursor')
  t.same(first.events.filter((e) => e.type === 'message'), [], 'from now: no backlog of history (her own arrival in the lobby at most)')

  await post(base, bob, '/longpolling/rooms/blue/messages', { text: 'in blue, without ann' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'hello red' })
  await post(base, bob, '/longpolling/room/messages', { text: 'hello lobby' })
  await poller.until(() => poller.texts('red').length === 1 && poller.texts('lobby').length === 1, 'red and lobby messages')
  t.same([poller.texts('red'), poller.texts('lobby'), poller.texts('blue')], [['hello red'], ['hello lobby'], []], "both of her rooms on one poll, nothing of a room she is not in")

  // bob opens a DM to ann while her poll waits: it answers with the news, and the DM's cursor.
  const waiting = poller.poll()
  await new Promise((resolve) => setTimeout(resolve, 200))
  const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
  const answered = await waiting
  const news = answered.events.find((e) => e.type === 'person')
  t.match(news, { type: 'person', kind: 'direct', room: opened.room, user: 'bob' }, 'the waiting poll answers at once: bob opened a DM to her')
  t.match(answered.rooms[opened.room], { lastId: 0 }, "with the DM's cursor, from its start")
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'psst' })
  await poller.until(() => poller.texts(opened.room).length === 1, 'the DM message')
  t.same(poller.texts(opened.room), ['psst'], "the DM's messages follow on the same poll")

  // On another device she leaves red: the poll says so, and red is no longer followed.
  t.equal((await post(base, ann, '/rooms/red/leave')).status, 200, 'she leaves red elsewhere')
  await poller.until(() => poller.got.some((e) => e.type === 'person' && e.kind === 'left' && e.room === 'red'), 'the left news')
  await post(base, bob, '/longpolling/room/messages', { text: 'still here' })
  const after = await poller.poll()
  t.notOk('red' in after.rooms, 'red is no longer followed')
  t.ok(after.events.some((e) => e.text === 'still here') || poller.texts('lobby').includes('still here'), 'the lobby goes on')

  // Her own events have ids of their own, consecutive, resumable.
  const mine = poller.got.filter((e) => e.type === 'person').map((e) => e.id)
  t.same(mine, mine.map((_, i) => mine[0]! + i), 'her own events are consecutive under their cursor')
})

/** What a connection carried of a room's messages, in order. */
const textsOf = (events: { type?: unknown; text?: unknown }[]) => events.filter((e) => e.type === 'message').map((e) => e.text)

t.test('the socket with follow=me: subscribed to every room of the person at once, a DM opened by someone else added within a second, a room left elsewhere taken off', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'red' })
  const socket = await RoomsClient.open(base, ann, '?follow=me')
  t.teardown(() => socket.close())
  t.ok(await socket.until(() => ['me', 'lobby', 'red'].every((room) => socket.frames.some((f) => f.type === 'subscribed' && f.room === room))), 'subscribed to me, lobby and red')
  t.pass('subscribed to her own events, the lobby and red with no subscribe frame')
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby line' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red line' })
  t.ok(await socket.until(() => textsOf(socket.events('lobby')).length === 1 && textsOf(socket.events('red')).length === 1), 'both lines')

  const started = Date.now()
  const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
  t.ok(await socket.until(() => socket.frames.some((f) => f.type === 'subscribed' && f.room === opened.room), 1000), 'the DM subscribed')
  t.ok(Date.now() - started < 1000, `the DM bob opened is on her socket within a second (${Date.now() - started} ms)`)
  t.match(socket.events('me').at(-1), { type: 'person', kind: 'direct', room: opened.room, user: 'bob' }, 'with the news on her own events')
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'psst' })
  t.ok(await socket.until(() => textsOf(socket.events(opened.room)).length === 1), 'the DM message')
  t.same(textsOf(socket.events(opened.room)), ['psst'], "the DM's first message, once")

  t.equal((await post(base, ann, '/rooms/red/leave')).status, 200, 'she leaves red on another device')
  t.ok(await socket.until(() => socket.frames.some((f) => f.type === 'unsubscribed' && f.room === 'red')), 'red unsubscribed')
  t.match(socket.frames.find((f) => f.type === 'unsubscribed' && f.room === 'red'), { reason: 'left' }, 'red is taken off: left')
  await post(base, bob, '/rooms/red/join')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'after she left' })
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby again' })
  t.ok(await socket.until(() => textsOf(socket.events('lobby')).includes('lobby again')), 'the lobby line')
  t.notOk(textsOf(socket.events('red')).includes('after she left'), 'nothing of red after she left it')
})

/** The event stream with follow=me, resumed from `lastEventId` when given. */
async function followStream(base: string, cookie: string, lastEventId?: string): Promise<EventStream> {
  return EventStream.open(`${base}/sse/events?follow=me`, { cookie, ...(lastEventId !== undefined && { 'last-event-id': lastEventId }) })
}

/** A stream's messages of one room (events, not news). */
const streamTexts = (stream: EventStream, room: string) => textsOf(stream.messages().filter((m) => m.name === undefined && m.data.room === room).map((m) => m.data))
/** The stream's last `id:`, the cursors Last-Event-ID resumes from. */
const lastEventId = (stream: EventStream) => stream.messages().filter((m) => m.id !== undefined).at(-1)?.id

t.test('the event stream with follow=me: a DM opened by someone else joins the stream, a room left elsewhere leaves it, and Last-Event-ID resumes every room and her own events once', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'red' })
  const stream = await followStream(base, ann)
  await stream.expect(() => stream.messages().some((m) => m.name === 'hello'), 'hello')
  t.same(Object.keys((stream.messages()[0]!.data as unknown as { rooms: object }).rooms).sort(), ['lobby', 'me', 'red'], 'hello names the lobby, red and her own events')
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red 1' })
  await stream.expect(() => streamTexts(stream, 'red').length === 1, 'red 1')

  const started = Date.now()
  const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
  await stream.expect(() => stream.messages().some((m) => m.name === 'subscribed' && m.data.room === opened.room), 'the DM added', 1000)
  t.ok(Date.now() - started < 1000, `the DM is on her stream within a second (${Date.now() - started} ms)`)
  t.ok(stream.messages().some((m) => m.data.type === 'person' && m.data.kind === 'direct' && m.data.room === opened.room), 'with the news as her own event')
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'dm 1' })
  await stream.expect(() => streamTexts(stream, opened.room).length === 1, 'dm 1')
  t.match(lastEventId(stream), new RegExp(`(^|,)me:[^:]+:\\d+`), "the stream's id carries her own cursor beside the rooms'")
  t.match(lastEventId(stream), new RegExp(`(^|,)${opened.room}:[^:]+:\\d+`), "and the DM's")

  // Cut: while she is away, a message in each room, and she leaves red on another device.
  const resumeFrom = lastEventId(stream)!
  stream.close()
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby while away' })
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'dm while away' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red while away' })
  t.equal((await post(base, ann, '/rooms/red/leave')).status, 200, 'she leaves red elsewhere while away')
  const again = await followStream(base, ann, resumeFrom)
  t.teardown(() => again.close())
  await again.expect(() => streamTexts(again, 'lobby').includes('lobby while away') && streamTexts(again, opened.room).includes('dm while away'), 'the missed messages')
  await again.expect(() => again.messages().some((m) => m.data.type === 'person' && m.data.kind === 'left'), 'the missed left news')
  t.same(streamTexts(again, opened.room), ['dm while away'], 'the DM resumes after what she had: once')
  t.same(streamTexts(again, 'red'), ['red while away'], 'red resumes with what was said before she left it')
  const news = again.messages().filter((m) => m.data.type === 'person')
  t.same(news.map((m) => m.data.kind), ['left'], 'her own events resume after her cursor: only the leave')
  await post(base, bob, '/rooms/red/join')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'red after' })
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby after' })
  await again.expect(() => streamTexts(again, 'lobby').includes('lobby after'), 'lobby after')
  t.notOk(streamTexts(again, 'red').includes('red after'), 'red is dropped once she left it')
})

/**
 * What a person misses while cut off, the same on every transport: a line in the lobby and in
 * red, a DM bob opens to her with a message in it, and red left on another device after a line
 * in it. Returns the DM's name.
 */
async function whileAway(base: string, ann: string, bob: string): Promise<string> {
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby while away' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red while away' })
  const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'dm while away' })
  if ((await post(base, ann, '/rooms/red/leave')).status !== 200) throw new Error('could not leave red')
  return opened.room
}

t.test('the socket with follow=me resumes from its cursors: every room and her own events exactly once, a DM opened meanwhile included', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'red' })
  const first = await RoomsClient.open(base, ann, '?follow=me')
  t.ok(await first.until(() => ['me', 'lobby', 'red'].every((room) => first.frames.some((f) => f.type === 'subscribed' && f.room === room))), 'following me, lobby and red')
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby before' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red before' })
  t.ok(await first.until(() => textsOf(first.events('lobby')).includes('lobby before') && textsOf(first.events('red')).includes('red before')), 'both lines before the cut')
  // The cursor of each room as a client keeps it: the epoch it was subscribed with, the last id it got.
  const cursor = (room: string) => {
    const subscribed = first.frames.find((f) => f.type === 'subscribed' && f.room === room) as unknown as { epoch: string; lastId: number }
    const last = first.events(room).filter((e) => e.id !== undefined).at(-1)?.id ?? subscribed.lastId
    return `&cursor=${encodeURIComponent(`${room}:${subscribed.epoch}:${last}`)}`
  }
  const query = `?follow=me${cursor('me')}${cursor('lobby')}${cursor('red')}`
  first.close()
  await first.closedWithin()

  const dm = await whileAway(base, ann, bob)
  const again = await RoomsClient.open(base, ann, query)
  t.teardown(() => again.close())
  t.ok(await again.until(() => textsOf(again.events(dm)).includes('dm while away') && again.events('me').some((e) => e.kind === 'left')), 'the missed DM line and the leave')
  t.ok(await again.until(() => textsOf(again.events('lobby')).includes('lobby while away')), 'the missed lobby line')
  t.same(textsOf(again.events('lobby')), ['lobby while away'], 'the lobby resumes after what she had: once, nothing before')
  t.same(textsOf(again.events('red')), ['red while away'], 'red: what was said before she left it, once')
  t.same(textsOf(again.events(dm)), ['dm while away'], 'the DM opened while she was away: its message once')
  t.same(again.events('me').filter((e) => e.type === 'person').map((e) => e.kind), ['direct', 'left'], 'her own events after her cursor: the DM, then the leave, once each')
  t.ok(await again.until(() => again.frames.some((f) => f.type === 'unsubscribed' && f.room === 'red')), 'red is let go once she left it')
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby live' })
  t.ok(await again.until(() => textsOf(again.events('lobby')).includes('lobby live')), 'and it goes on live')
  t.same(textsOf(again.events('lobby')), ['lobby while away', 'lobby live'], 'with no repeat')
})

t.test('the long poll with follow=me resumes from its cursors: every room and her own events exactly once, a DM opened meanwhile included', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'red' })
  const poller = new FollowPoller(base, ann)
  await poller.poll()
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby before' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red before' })
  await poller.until(() => poller.texts('lobby').length === 1 && poller.texts('red').length === 1, 'both lines before the cut')
  const before = poller.got.length

  // No poll for a while (the page was closed, the network cut): the next one resumes.
  const dm = await whileAway(base, ann, bob)
  await poller.until(() => poller.texts(dm).includes('dm while away') && poller.texts('lobby').includes('lobby while away') && poller.got.some((e) => e.kind === 'left'), 'everything missed')
  const resumed = poller.got.slice(before)
  const texts = (room: string) => resumed.filter((e) => e.room === room && e.type === 'message').map((e) => e.text)
  t.same(texts('lobby'), ['lobby while away'], 'the lobby: once, nothing before')
  t.same(texts('red'), ['red while away'], 'red: what was said before she left it, once')
  t.same(texts(dm), ['dm while away'], 'the DM opened while she was away: its message once')
  t.same(resumed.filter((e) => e.type === 'person').map((e) => e.kind), ['direct', 'left'], 'her own events after her cursor: the DM, then the leave, once each')
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby live' })
  await poller.until(() => poller.texts('lobby').includes('lobby live'), 'lobby live')
  t.same(poller.texts('lobby'), ['lobby before', 'lobby while away', 'lobby live'], 'the lobby all told: each line once')
  t.notOk(poller.cursors.has('red'), 'red no longer polled once she left it')
})

t.test('a person in more rooms than MAX_ROOMS_PER_CONNECTION resumes every one of them (the cap is for rooms named one by one)', async (t) => {
  const { base, app } = await served(t, { MAX_ROOMS_PER_CONNECTION: '2', ROOMS_PER_CREATOR: '10' })
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  const rooms = ['r1', 'r2', 'r3', 'r4']
  for (const room of rooms) await post(base, ann, '/rooms', { name: room })
  const poller = new FollowPoller(base, ann)
  await poller.poll()
  t.equal(poller.cursors.size, 6, 'her own cursor, the lobby and four rooms')
  for (const room of rooms) await post(base, bob, `/rooms/${room}/join`)
  for (const room of rooms) await post(base, bob, `/longpolling/rooms/${room}/messages`, { text: `in ${room}` })
  await poller.until(() => rooms.every((room) => poller.texts(room).length === 1), 'a line in each room, resumed with six cursors')
  t.same(
    rooms.map((room) => poller.texts(room)),
    rooms.map((room) => [`in ${room}`]),
  )
  const sockets = await RoomsClient.open(base, ann, `?follow=me&${[...poller.cursors].map(([room, c]) => `cursor=${encodeURIComponent(`${room}:${c.epoch}:${c.last}`)}`).join('&')}`)
  t.teardown(() => sockets.close())
  await post(base, bob, '/longpolling/rooms/r4/messages', { text: 'r4 again' })
  t.ok(await sockets.until(() => sockets.events('r4').some((e) => e.text === 'r4 again')), 'the socket resumed with six cursors too')
  t.same(sockets.events('r4').map((e) => e.text), ['r4 again'], 'from her cursor: nothing twice')
  const named = await fetch(`${base}/longpolling/messages?cursor=r1::&cursor=r2::&cursor=r3::`, { headers: { cookie: ann } })
  t.equal(named.status, 400, 'three rooms named one by one, with no follow: past the cap')
})

t.test('a stalled socket following the person lags in the busy room alone: told so, its other rooms go on, and it resumes that room from its cursor once', async (t) => {
  const { base, app } = await served(t, { SUBSCRIBER_QUEUE: '64', SOCKET_BUFFER_LIMIT: '65536', ARCHIVE_SIZE: '5000' })
  const ann = await registerAccount(app, 'ann')
  for (const room of ['busy', 'quiet']) await post(base, ann, '/rooms', { name: room })
  const socket = await RoomsClient.open(base, ann, '?follow=me')
  t.teardown(() => socket.close())
  t.ok(await socket.until(() => ['busy', 'quiet'].every((room) => socket.find((f) => f.type === 'subscribed' && f.room === room)), 10_000), 'both rooms followed')
  const busy = await app.chatroom.room('busy')
  const quiet = await app.chatroom.room('quiet')
  const start = busy.lastId
  // Stop reading at the TCP level, as a stuck client does.
  ;(socket.ws as unknown as { _socket: { pause(): void } })._socket.pause()
  const text = 'x'.repeat(2000)
  let published = 0
  while (busy.subscriberCount > 0 && published < 5000) {
    await busy.post('bob', text)
    if (++published % 25 === 0) await new Promise((r) => setImmediate(r))
  }
  t.equal(busy.subscriberCount, 0, `the busy room let go of the stalled socket after ${published} events`)
  t.equal(quiet.subscriberCount, 1, 'the quiet room still has it')
  await quiet.post('bob', 'quiet line')
  ;(socket.ws as unknown as { _socket: { resume(): void } })._socket.resume()
  t.ok(await socket.until(() => socket.events('quiet').some((e) => e.text === 'quiet line')), 'the quiet room goes on')
  t.match(socket.find((f) => f.type === 'unsubscribed' && f.room === 'busy'), { reason: 'lagged' }, 'told the busy room lagged')
  t.equal(socket.closed, undefined, 'the socket stays open')
  const had = socket.events('busy').map((e) => e.id)
  const last = had.at(-1) ?? start
  t.same(had, Array.from({ length: had.length }, (_, i) => start + 1 + i), 'what it had of the busy room: in order, no gap')
  socket.send({ type: 'subscribe', room: 'busy', epoch: busy.epoch, lastReceived: last })
  const end = busy.lastId
  t.ok(await socket.until(() => socket.events('busy').at(-1)?.id === end, 10_000), 'resumed from its cursor to the newest')
  const ids = socket.events('busy').map((e) => e.id)
  t.same(ids, Array.from({ length: end - start }, (_, i) => start + 1 + i), 'every event of the busy room once, in order')
})

t.test("renamed: the owner's new title or topic reaches every member's stream; anyone else is refused", async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  const cat = await registerAccount(app, 'cat')
  await post(base, ann, '/rooms', { name: 'red', topic: 'colours' })
  await post(base, bob, '/rooms/red/join')
  const socket = await RoomsClient.open(base, bob, '?follow=me')
  t.teardown(() => socket.close())
  await socket.next((f) => f.type === 'subscribed' && f.room === 'red', 'red followed')

  t.equal((await post(base, bob, '/rooms/red/describe', { topic: 'mine now' })).status, 403, 'a member who is not the owner: 403')
  t.equal((await post(base, cat, '/rooms/nowhere/describe', { topic: 'x' })).status, 404, 'no such room: 404')
  t.equal((await post(base, ann, '/rooms/red/describe', { title: 'x'.repeat(81) })).status, 400, 'a title past 80 characters: 400')
  const res = await post(base, ann, '/rooms/red/describe', { title: 'Red room', topic: 'reds and pinks' })
  t.same(await res.json(), { name: 'red', title: 'Red room', topic: 'reds and pinks', visibility: 'public' }, 'the owner changes both')
  t.ok(await socket.until(() => socket.events('me').some((e) => e.kind === 'renamed' && e.room === 'red')), "bob's stream hears it")
  t.match(socket.events('me').find((e) => e.kind === 'renamed'), { type: 'person', kind: 'renamed', room: 'red', user: 'ann' })
  const listed = (await (await fetch(`${base}/rooms`, { headers: { cookie: bob } })).json()) as { rooms: { name: string; title: string; topic: string }[] }
  t.match(listed.rooms.find((r) => r.name === 'red'), { title: 'Red room', topic: 'reds and pinks' }, 'and GET /rooms says it')
})

t.test("the store not answering while a person's stream opens: the socket is told to come back (1013), the long poll answers 503 and the event stream says it and ends, nothing is left subscribed, the process goes on", async (t) => {
  const { app, base } = await served(t)
  const ann = await registerAccount(app, 'ann')
  t.equal((await post(base, ann, '/rooms', { name: 'dev' })).status, 201)
  const chatroom = app.chatroom as unknown as { following: (...a: unknown[]) => Promise<string[]>; access: (name: string, ...a: unknown[]) => Promise<unknown> }
  const { following, access } = chatroom
  const timeout = () => Object.assign(new Error('timeout exceeded when trying to connect'), { code: undefined })
  const before = app.chatroom.subscriberCount

  // Her rooms cannot be listed: the socket closes with 1013 and a reason.
  chatroom.following = async () => {
    throw timeout()
  }
  const socket = await RoomsClient.open(base, ann, '?follow=me')
  t.ok(await socket.until(() => socket.closed !== undefined), 'the socket is closed')
  t.same(socket.closed, { code: 1013, reason: 'The chat is unavailable right now; reconnect shortly.' })
  chatroom.following = following

  // One of her rooms cannot be read: the lobby's entry, made already, is let go with the rest.
  chatroom.access = async (name: string, ...rest: unknown[]) => {
    if (name === 'dev') throw timeout()
    return access.call(app.chatroom, name, ...rest)
  }
  const poll = await fetch(`${base}/longpolling/messages?follow=me`, { headers: { cookie: ann } })
  t.equal(poll.status, 503, 'the long poll: 503')
  t.match(await poll.json(), { error: 'Service Unavailable' })
  const stream = await fetch(`${base}/sse/events?follow=me`, { headers: { cookie: ann, accept: 'text/event-stream' }, signal: AbortSignal.timeout(5000) })
  // The stream was open before its rooms were entered: it says 503 and ends (the browser comes back by itself).
  t.match(await stream.text(), /event: refused\ndata: \{"status":503,"error":"Service Unavailable"/, 'the event stream: refused with 503, and ended')
  chatroom.access = access
  t.equal(app.chatroom.subscriberCount, before, 'no subscription was left behind')

  // And all is well once the store answers.
  const again = await RoomsClient.open(base, ann, '?follow=me')
  await again.next((f) => f.type === 'subscribed' && f.room === 'dev', 'dev subscribed')
  t.equal((await fetch(`${base}/healthz`)).status, 200)

  // A room she is invited to while the store does not answer for it: the socket is told to come back, so its resume takes the room in.
  chatroom.access = async (name: string, ...rest: unknown[]) => {
    if (name === 'ops' && (rest[0] as { name?: string }).name === 'ann') throw timeout()
    return access.call(app.chatroom, name, ...rest)
  }
  const bob = await registerAccount(app, 'bob')
  t.equal((await post(base, bob, '/rooms', { name: 'ops', visibility: 'private' })).status, 201)
  t.equal((await post(base, bob, '/rooms/ops/invite', { user: 'ann' })).status, 200, 'bob invites her to his room')
  t.ok(await again.until(() => again.closed !== undefined), 'the socket is closed')
  t.same(again.closed, { code: 1013, reason: 'The chat is unavailable right now; reconnect shortly.' }, 'rather than following her rooms without the new one')
  chatroom.access = access
  const resumed = await RoomsClient.open(base, ann, '?follow=me')
  await resumed.next((f) => f.type === 'subscribed' && f.room === 'ops', 'ops subscribed on the next connection')
  resumed.ws.close()
})
