import t from 'tap'
import { buildTestApp, eventually, range, signIn, SocketClient } from './helpers.js'

async function serve(t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}) {
  const app = await buildTestApp(t, env)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, base }
}

t.test('the room page renders; the socket URL without an upgrade says so', async (t) => {
  const { app } = await serve(t)
  const cat = await signIn(app, 'cat')
  const page = await app.inject({ method: 'GET', url: '/websocket/room', headers: { cookie: cat } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /class="whoami"[^>]*>cat<\/span>/)
  t.match(page.body, /\/public\/js\/page\/websocket.js/)
  const plain = await app.inject({ method: 'GET', url: '/websocket/room/socket', headers: { cookie: cat } })
  t.equal(plain.statusCode, 426)
  const leave = await app.inject({ method: 'POST', url: '/websocket/room/leave', headers: { cookie: cat } })
  t.equal(leave.headers.location, '/')
})

t.test('a stranger\'s upgrade is refused with 401', async (t) => {
  const { base } = await serve(t)
  await t.rejects(SocketClient.open(base, undefined), /refused: 401/)
  await t.rejects(SocketClient.open(base, 'chat_session=forged.value'), /refused: 401/)
})

t.test('connect: join, the archive, then relay both ways; leave on close', async (t) => {
  const { app, base } = await serve(t)
  await app.chatroom.post('ann', 'before you came')
  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  await cat.untilId(2)
  t.match(cat.events, [{ id: 1, type: 'message', user: 'ann', text: 'before you came' }, { id: 2, type: 'join', user: 'cat' }])

  const dan = await SocketClient.open(base, await signIn(app, 'dan'))
  await dan.untilId(3)
  cat.send({ text: 'hi dan' })
  await dan.untilId(4)
  t.match(dan.events.at(-1), { id: 4, type: 'message', user: 'cat', text: 'hi dan' })
  await cat.untilId(4)
  t.match(cat.events.at(-1), { id: 4, user: 'cat' }, 'the sender sees its own message from the room')

  t.same(cat.errors, [], 'every frame was JSON text')
  await cat.close()
  await dan.untilId(5)
  t.match(dan.events.at(-1), { id: 5, type: 'leave', user: 'cat' })
  await dan.close()
  await eventually(() => app.chatroom.subscriberCount === 0, 'subscriptions released')
})

t.test('resume: reconnect with the cursor and get exactly the missed events', async (t) => {
  const { app, base } = await serve(t)
  const catCookie = await signIn(app, 'cat')
  const first = await SocketClient.open(base, catCookie)
  await first.untilId(1)
  await first.close()
  await eventually(() => !app.chatroom.presence.isOnline('cat'), 'cat to leave')
  for (let i = 0; i < 5; i++) await app.chatroom.post('ann', `missed ${i}`)
  const last = app.chatroom.lastId
  const again = await SocketClient.open(base, catCookie, `?lastReceived=${first.events.at(-1)!.id}`)
  await again.untilId(last + 1)
  t.same(again.ids(), range(2, last + 1), 'the leave, the five missed, then the new join: nothing before the cursor')
  await again.close()
})

t.test('events queued for a busy reader go out together in fewer frames', async (t) => {
  const { app, base } = await serve(t, { SUBSCRIBER_QUEUE: '1000' })
  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  await cat.untilId(1)
  const framesBefore = cat.frames
  // Published in one tick: they coalesce.
  await Promise.all(Array.from({ length: 200 }, (_, i) => app.chatroom.post('ann', `burst ${i}`)))
  await cat.untilId(201)
  t.same(cat.ids(), range(1, 201), 'all of them, in order')
  t.ok(cat.frames - framesBefore < 20, `200 events arrived in ${cat.frames - framesBefore} frames`)
  await cat.close()
})

t.test('bad frames get an error event, binary closes 1007, nothing is broadcast', async (t) => {
  const { app, base } = await serve(t, { MAX_MESSAGE_LENGTH: '10' })
  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  await cat.untilId(1)
  const bad: [unknown, RegExp][] = [
    ['not json', /must be JSON/],
    [{ message: 'wrong key' }, /must be \{"text"/],
    [[1, 2], /must be \{"text"/],
    [{ text: '' }, /empty/],
    [{ text: 'x'.repeat(11) }, /at most 10/],
    [{ text: 7 }, /must be text/],
  ]
  // Three at a time with a good frame between: fewer than five in a row is not garbage.
  for (let i = 0; i < bad.length; i += 3) {
    for (const [frame] of bad.slice(i, i + 3)) cat.send(frame)
    cat.send({ text: `ok ${i}` })
    await cat.until(() => cat.events.some((e) => e.text === `ok ${i}`), `ok ${i}`)
  }
  t.equal(cat.errors.length, bad.length, 'an error per bad frame')
  bad.forEach(([frame, message], i) => t.match(cat.errors[i], { error: 'Bad Request', message }, JSON.stringify(frame)))
  t.same(
    app.chatroom.archive().filter((s) => s.event.type === 'message').map((s) => s.event.text),
    ['ok 0', 'ok 3'],
    'only the good frames were said',
  )
  t.equal(cat.closed, undefined, 'the socket still works after bad frames')

  cat.ws.send(Buffer.from([1, 2, 3]), { binary: true })
  const closed = await cat.untilClosed()
  t.equal(closed.code, 1007)
})

t.test('repeated garbage closes with 1007', async (t) => {
  const { app, base } = await serve(t)
  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  for (let i = 0; i < 10; i++) cat.send('garbage')
  const closed = await cat.untilClosed()
  t.match(closed, { code: 1007, reason: 'too many invalid frames' })
  t.equal(cat.errors.length, 4, 'four errors, then the close')
})

t.test('an oversized frame closes with 1009', async (t) => {
  const { app, base } = await serve(t, { MAX_MESSAGE_LENGTH: '10' })
  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  await cat.untilId(1)
  cat.send({ text: 'x'.repeat(10_000) })
  const closed = await cat.untilClosed()
  t.equal(closed.code, 1009)
  t.equal(app.chatroom.archive().filter((s) => s.event.type === 'message').length, 0)
})

t.test('bad and future cursors are refused with a close code and reason', async (t) => {
  const { app, base } = await serve(t)
  const cookie = await signIn(app, 'cat')
  const bad = await SocketClient.open(base, cookie, '?lastReceived=banana')
  t.match(await bad.untilClosed(), { code: 4400, reason: /lastReceived/ })
  const ahead = await SocketClient.open(base, cookie, '?lastReceived=500')
  t.match(await ahead.untilClosed(), { code: 4409, reason: /ahead of the room: start over/ })
  const other = await SocketClient.open(base, cookie, '?lastReceived=0&epoch=someOtherLog')
  t.match(await other.untilClosed(), { code: 4409, reason: /another epoch: start over/ }, 'a cursor of another log')
  t.equal(app.chatroom.lastId, 0, 'no join for refused sockets')
})

t.test('?user= cannot pick the name', async (t) => {
  const { app, base } = await serve(t)
  const cat = await SocketClient.open(base, await signIn(app, 'cat'), '?user=admin')
  cat.send({ text: 'hello', user: 'admin' })
  await cat.untilId(2)
  t.same(cat.events.map((e) => e.user), ['cat', 'cat'])
  await cat.close()
})

t.test('closing the app closes sockets with 1001', async (t) => {
  const { app, base } = await serve(t)
  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  await cat.untilId(1)
  await app.close()
  const closed = await cat.untilClosed()
  t.same(closed, { code: 1001, reason: 'server shutting down' })
  t.equal(app.chatroom.subscriberCount, 0, 'its subscription was released')
})

t.test('an open socket does not keep its upgrade request and reply alive', async (t) => {
  const { setFlagsFromString } = await import('node:v8')
  const { runInNewContext } = await import('node:vm')
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const app = await buildTestApp(t)
  const upgrades: WeakRef<object>[] = []
  app.addHook('onRequest', async (request) => {
    if (request.ws) upgrades.push(new WeakRef(request), new WeakRef(request.raw))
  })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const cat = await SocketClient.open(base, await signIn(app, 'cat'))
  await cat.untilId(1)
  t.equal(upgrades.length, 2)
  // Collect until they are gone, or give up after a bounded number of rounds. deref() keeps
  // its target alive until the current task ends, so gc() always runs in a task of its own.
  const alive = () => upgrades.filter((ref) => ref.deref() !== undefined).length
  const nextTask = () => new Promise((r) => setTimeout(r, 10))
  let left = upgrades.length
  for (let round = 0; round < 50 && left > 0; round++) {
    await nextTask()
    gc()
    await nextTask()
    left = alive()
  }
  t.equal(left, 0, 'request and raw request were collected')
  cat.send({ text: 'still works' })
  await cat.untilId(2)
  t.equal(cat.events.at(-1)?.text, 'still works')
  await cat.close()
})

t.test('the cursor is read exactly as long polling reads it', async (t) => {
  const { app, base } = await serve(t)
  const cookie = await signIn(app, 'cat')
  await app.chatroom.post('ann', 'one')
  await app.chatroom.post('ann', 'two')
  for (const bad of ['abc', '-1', '1.5', '', '1e3', '99999999999999999999', '0x1', ' 1']) {
    const query = `?lastReceived=${encodeURIComponent(bad)}`
    const poll = await app.inject({ method: 'GET', url: `/longpolling/room/messages${query}`, headers: { cookie } })
    t.equal(poll.statusCode, 400, `long polling refuses lastReceived=${JSON.stringify(bad)}`)
    const socket = await SocketClient.open(base, cookie, query)
    const closed = await socket.untilClosed()
    t.equal(closed.code, 4400, `the socket refuses lastReceived=${JSON.stringify(bad)} (4400)`)
    t.equal(closed.reason, (poll.json() as { message: string }).message.slice(0, 120), 'with the same message')
    t.same(socket.events, [], 'and sends nothing first')
  }
  // A long poller already online, so that polling adds no join of its own.
  const dan = await signIn(app, 'dan')
  await app.inject({ method: 'GET', url: '/longpolling/room', headers: { cookie: dan } })
  for (const back of [2, 1, 0]) {
    const known = app.chatroom.lastId
    const cursor = known - back
    const poll = back > 0 ? await app.inject({ method: 'GET', url: `/longpolling/room/messages?lastReceived=${cursor}`, headers: { cookie: dan } }) : undefined
    const socket = await SocketClient.open(base, cookie, `?lastReceived=${cursor}`)
    // The socket then sends its own join; compare what existed before it.
    await socket.until(() => socket.events.some((e) => e.id > known && e.type === 'join'), 'its own join')
    const expected = range(cursor + 1, known)
    t.same(socket.events.filter((e) => e.id <= known).map((e) => e.id), expected, `lastReceived=${cursor}: the socket sends what follows`)
    if (poll) t.same((poll.json() as { id: number }[]).map((e) => e.id), expected, 'and so does long polling')
    await socket.close()
    await eventually(() => !app.chatroom.roster().users.some((u) => u.name === 'cat'), 'cat to have left')
  }
  const ahead = await SocketClient.open(base, cookie, `?lastReceived=${app.chatroom.lastId + 1}`)
  t.match(await ahead.untilClosed(), { code: 4409, reason: /ahead of the room/ }, 'a cursor ahead: 4409, as long polling answers 409')
})
