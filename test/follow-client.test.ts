import t, { type Test } from 'tap'
import { WebSocket } from 'ws'
import { ChatClient, type FollowStream, type Item, type PersonEvent, type Transport } from '../client/index.js'
import { openStreams } from '../app/transport/sse-writer.js'
import { buildTestApp, eventually, registerAccount, RoomsClient, post } from './helpers.js'

// The client library's person's stream (ChatClient.follow): one connection, on each way in, that
// follows every room of the person now and later and their own events, hands each event on once,
// and resumes every room from the cursors it gives to save.

const ways: Transport[] = ['websocket', 'sse', 'longpolling']
/** Everything a stream says, as it comes. */
function record(stream: FollowStream) {
  const log = { rooms: new Map<string, Item[]>(), person: [] as PersonEvent[], presence: [] as string[], lists: [] as string[][] }
  stream.on('room', (room, items) => log.rooms.set(room, [...(log.rooms.get(room) ?? []), ...items]))
  stream.on('person', (event) => log.person.push(event))
  stream.on('presence', (signal) => log.presence.push(`${signal.user} ${signal.presence}`))
  stream.on('rooms', (names) => log.lists.push(names))
  return {
    ...log,
    texts: (room: string) => (log.rooms.get(room) ?? []).flatMap((i) => (i.type === 'message' && i.text !== undefined ? [i.text] : [])),
    live: () => eventually(() => stream.connectionState.state === 'live', 'the stream live', 10_000),
  }
}

for (const way of ways) {
  t.test(`${way}: one stream follows every room of hers, a DM opened to her, a room she leaves elsewhere, presence, and resumes exactly once`, async (t: Test) => {
    const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '2' })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const ann = await registerAccount(app, 'ann')
    const bob = await registerAccount(app, 'bob')
    await post(base, ann, '/rooms', { name: 'red' })
    const chat = new ChatClient({ base, cookie: ann, WebSocket, transports: [way] })
    t.teardown(() => chat.close())
    const stream = chat.follow()
    const log = record(stream)
    await log.live()
    await eventually(() => ['lobby', 'red'].every((r) => stream.rooms.includes(r)), 'lobby and red followed')
    t.same(stream.rooms.sort(), ['lobby', 'red'], 'the lobby and red, with no room named')

    await post(base, bob, '/longpolling/room/messages', { text: 'lobby 1' })
    await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red 1' })
    await eventually(() => log.texts('lobby').includes('lobby 1') && log.texts('red').includes('red 1'), 'both lines')

    const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
    await eventually(() => stream.rooms.includes(opened.room), 'the DM followed')
    t.match(log.person.at(-1), { kind: 'direct', room: opened.room, user: 'bob' }, 'her own event: bob opened a DM')
    await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'dm 1' })
    await eventually(() => log.texts(opened.room).includes('dm 1'), 'the DM line')

    const bobs = await RoomsClient.open(base, bob, '?follow=me')
    t.teardown(() => bobs.close())
    await eventually(() => log.presence.includes('bob online'), "bob's presence")
    t.pass('bob online: told on her stream')

    // Sent through the stream, exactly once: the same client id twice is one message.
    const sent = await stream.send('red', 'from the stream', 'same-client-id-000001')
    const again = await stream.send('red', 'from the stream', 'same-client-id-000001')
    t.equal(again.id, sent.id, 'a resend answers the first id')
    t.ok(again.duplicate, 'and says so')
    await eventually(() => log.texts('red').includes('from the stream'), 'her own line comes back')

    // Cut: the cursors saved; while she is away, lines in every room and red left elsewhere.
    const cursors = stream.cursors
    t.ok(cursors.me && cursors.lobby && cursors.red && cursors[opened.room], 'a cursor for each room and her own')
    stream.close()
    await post(base, bob, '/longpolling/room/messages', { text: 'lobby away' })
    await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red away' })
    await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'dm away' })
    t.equal((await post(base, ann, '/rooms/red/leave')).status, 200, 'she leaves red elsewhere')

    const resumed = chat.follow({ cursors })
    const after = record(resumed)
    await eventually(
      () => after.texts('lobby').includes('lobby away') && after.texts(opened.room).includes('dm away') && after.person.some((e) => e.kind === 'left'),
      `${way}: everything missed`,
    )
    t.same(after.texts('lobby'), ['lobby away'], 'the lobby resumes once, after what she had')
    t.same(after.texts(opened.room), ['dm away'], 'the DM once')
    t.same(after.texts('red'), ['red away'], 'red: what was said before she left it, once')
    t.same(after.person.map((e) => e.kind), ['left'], 'her own events after her cursor: the leave, once')
    await eventually(() => !resumed.rooms.includes('red'), 'red let go')
    await post(base, bob, '/longpolling/room/messages', { text: 'lobby live' })
    await eventually(() => after.texts('lobby').includes('lobby live'), 'live again')
    t.same(after.texts('lobby'), ['lobby away', 'lobby live'], 'no repeat')
    bobs.close()
  })
}

for (const way of ways) {
  t.test(`${way}: rooms that ride the person's stream: their events, sends through the outbox, history, and no connection of their own`, async (t: Test) => {
    const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '2' })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const ann = await registerAccount(app, 'ann')
    const bob = await registerAccount(app, 'bob')
    for (const room of ['red', 'blue']) await post(base, ann, '/rooms', { name: room })
    await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red before' })
    const chat = new ChatClient({ base, cookie: ann, WebSocket, transports: [way] })
    t.teardown(() => chat.close())
    const stream = chat.follow()
    await eventually(() => stream.connectionState.state === 'live' && stream.rooms.includes('blue'), 'the stream live')
    const sockets = app.websocketServer.clients.size
    const red = chat.join('red', { via: stream })
    const blue = chat.join('blue', { via: stream })
    const got = { red: [] as string[], blue: [] as string[] }
    red.on('message', (m) => got.red.push(m.text ?? ''))
    blue.on('message', (m) => got.blue.push(m.text ?? ''))
    await eventually(() => red.connection.state === 'live' && blue.connection.state === 'live', 'both rooms live')
    t.equal(app.websocketServer.clients.size, sockets, 'no socket of their own')

    await post(base, bob, '/longpolling/rooms/blue/messages', { text: 'blue 1' })
    const sent = await red.send('red from ann')
    t.ok(sent.id > 0, 'a send through the outbox is committed')
    await eventually(() => got.red.includes('red from ann') && got.blue.includes('blue 1'), 'both rooms hear theirs')
    t.same(got, { red: ['red from ann'], blue: ['blue 1'] }, 'each room its own events, once, from where the stream follows it')
    const history = await red.history({ limit: 10 })
    t.same(
      history.events.filter((e) => e.type === 'message').map((e) => e.text),
      ['red before', 'red from ann'],
      'what came before is history',
    )
    red.close()
    await post(base, ann, '/longpolling/rooms/red/messages', { text: 'after close' })
    await post(base, bob, '/longpolling/rooms/blue/messages', { text: 'blue 2' })
    await eventually(() => got.blue.includes('blue 2'), 'blue goes on')
    t.notOk(got.red.includes('after close'), 'a room let go hears nothing more; the stream and the others go on')
  })
}

for (const way of ways) {
  t.test(`${way}: a public room she is not a member of is visited on the same stream, from now, until she lets go of it or joins it`, async (t: Test) => {
    const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '2' })
    const base = await app.listen({ host: '127.0.0.1', port: 0 })
    const ann = await registerAccount(app, 'ann')
    const bob = await registerAccount(app, 'bob')
    for (const room of ['news', 'sports']) await post(base, bob, '/rooms', { name: room })
    await post(base, bob, '/longpolling/rooms/news/messages', { text: 'news before' })
    const chat = new ChatClient({ base, cookie: ann, WebSocket, transports: [way] })
    t.teardown(() => chat.close())
    const stream = chat.follow()
    const log = record(stream)
    await log.live()
    const sockets = app.websocketServer.clients.size
    const streams = openStreams()

    stream.visit('news')
    const news = chat.join('news', { via: stream })
    const got: string[] = []
    news.on('message', (m) => got.push(m.text ?? ''))
    // Carried from now: a line said once the visit is under way arrives, once.
    await eventually(() => stream.cursors.news !== undefined, 'the server carries news')
    await post(base, bob, '/longpolling/rooms/news/messages', { text: 'news 1' })
    await eventually(() => got.includes('news 1'), 'the visited room hears its line')
    t.same(got, ['news 1'], 'from now, once: what came before is history')
    t.same(stream.rooms, ['lobby'], 'a room visited is not listed as hers')
    t.equal(app.websocketServer.clients.size, sockets, 'no socket of its own')
    await eventually(() => openStreams() === streams, 'one event stream (a stream made again, not a second one)')

    // Joined while visiting: hers now, and it stays when the page lets go of the visit.
    t.equal((await post(base, ann, '/rooms/news/join')).status, 200)
    await eventually(() => stream.rooms.includes('news'), 'listed once joined')
    stream.unvisit('news')
    await post(base, bob, '/longpolling/rooms/news/messages', { text: 'news 2' })
    await eventually(() => got.includes('news 2'), 'still carried: it is hers')
    t.same(got, ['news 1', 'news 2'])

    // Another visited and let go of: never listed, and (on a socket) nothing more of it.
    stream.visit('sports')
    await eventually(() => stream.cursors.sports !== undefined, 'sports carried')
    await post(base, bob, '/longpolling/rooms/sports/messages', { text: 'sports 1' })
    await eventually(() => log.texts('sports').includes('sports 1'), 'sports heard')
    stream.unvisit('sports')
    t.equal(stream.cursors.sports, undefined, 'let go of')
    await post(base, bob, '/longpolling/rooms/sports/messages', { text: 'sports 2' })
    await post(base, bob, '/longpolling/rooms/news/messages', { text: 'news 3' })
    await eventually(() => got.includes('news 3'), 'news goes on')
    if (way === 'websocket') t.notOk(log.texts('sports').includes('sports 2'), 'unsubscribed on the socket: nothing more of it')
    t.notOk(log.lists.some((names) => names.includes('sports')), 'sports was never listed as hers')
  })
}
