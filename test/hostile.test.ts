import { request } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { WebSocket } from 'ws'
import { buildTestApp, enter, eventually, range, signIn, SocketClient } from './helpers.js'

// Each attack from the hardening issue, bounded in count and time, on 127.0.0.1, with a normal
// client in the same room checking that it still sends and receives meanwhile.

const rssMiB = () => Math.round(process.memoryUsage().rss / 1048576)

/** A normal visitor from another loopback address (127.0.0.2), so per-IP caps on the attacker do not touch it. */
function normalPost(base: string, path: string, cookie: string, body: string): Promise<number> {
  const url = new URL(base + path)
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, method: 'POST', localAddress: '127.0.0.2', headers: { cookie, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode ?? 0))
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

t.test('slow bodies and too many connections from one IP are cut; others still chat', async (t) => {
  const app = await buildTestApp(t, { REQUEST_TIMEOUT: '1', HEADERS_TIMEOUT: '1', MAX_CONNECTIONS_PER_IP: '50' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const port = Number(new URL(base).port)
  const ann = await signIn(app, 'ann')
  const before = rssMiB()
  // 200 connections from 127.0.0.1 that send headers and then trickle a body, never finishing.
  const slow: { socket: Socket; closedAt?: number; answer: string }[] = []
  const started = Date.now()
  for (let i = 0; i < 200; i++) {
    const socket = connect({ port, host: '127.0.0.1' })
    const entry: (typeof slow)[number] = { socket, answer: '' }
    socket.on('data', (d) => (entry.answer += d))
    socket.on('error', () => {})
    socket.on('close', () => (entry.closedAt = Date.now()))
    socket.write(`POST /signin HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 10000\r\n\r\nuser=`)
    slow.push(entry)
  }
  const trickle = setInterval(() => {
    for (const s of slow) if (!s.socket.destroyed) s.socket.write('x')
  }, 200)
  t.teardown(() => clearInterval(trickle))
  // Meanwhile a normal client (another address) says something.
  t.equal(await normalPost(base, '/longpolling/room/messages', ann, '{"text":"still here"}'), 201, 'a normal client still sends during the attack')
  await eventually(() => slow.every((s) => s.closedAt !== undefined), 'every slow connection to be cut', 10_000)
  clearInterval(trickle)
  const refused = slow.filter((s) => /^HTTP\/1.1 503/.test(s.answer)).length
  const timedOut = slow.filter((s) => /^HTTP\/1.1 408/.test(s.answer)).length
  // At least 150 arrive while 50 are open; a few more may slip in once the first are cut.
  t.ok(refused >= 100, `${refused} over the per-IP cap of 50 were refused with 503 at once`)
  t.ok(timedOut >= 40, `${timedOut} slow bodies answered 408`)
  // The rest were closed with no answer at all (a refused one can be reset before it reads); none got through.
  t.equal(slow.filter((s) => /^HTTP\/1.1 [1-4](?!08)\d\d/.test(s.answer)).length, 0, 'none got anything but 503, 408 or the door')
  const lastClosed = Math.max(...slow.map((s) => s.closedAt!)) - started
  t.ok(lastClosed < 10_000, `all cut within ${lastClosed} ms (REQUEST_TIMEOUT 1 s, checked every second)`)
  t.equal(await normalPost(base, '/longpolling/room/messages', ann, '{"text":"after"}'), 201, 'and after it')
  t.comment(`RSS ${before} MiB before, ${rssMiB()} MiB after`)
})

t.test('a socket that causes errors and never reads is closed (1008); memory stays bounded; typing does not excuse bad frames', async (t) => {
  const app = await buildTestApp(t, { RATE_LIMIT_MESSAGES: '1', RATE_LIMIT_WINDOW: '60', SOCKET_BUFFER_LIMIT: '16384' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const bob = await SocketClient.open(base, await signIn(app, 'bob'))
  const before = rssMiB()
  const cookie = await signIn(app, 'mallory')
  const ws = new WebSocket(base.replace('http', 'ws') + '/websocket/room/socket', { headers: { cookie } })
  await new Promise((resolve) => ws.once('open', resolve))
  ;(ws as unknown as { _socket: Socket })._socket.pause()
  // Each refused message costs the server an error frame; sent until the kernel's buffers are
  // full and the socket's own limit is reached.
  const text = JSON.stringify({ text: 'x' })
  let sent = 0
  for (; sent < 200_000 && app.websocketServer.clients.size > 1; sent++) {
    ws.send(text)
    if (sent % 100 === 0) await new Promise((r) => setImmediate(r))
  }
  await eventually(() => app.websocketServer.clients.size === 1, 'the abusive socket to be closed', 10_000)
  t.pass(`closed after ${sent} refused frames it never read`)
  ;(ws as unknown as { _socket: Socket })._socket.resume()
  const code = await new Promise<number>((resolve) => (ws.readyState === ws.CLOSED ? resolve(1006) : ws.once('close', resolve)))
  t.ok(code === 1008 || code === 1006, `the client sees ${code}`)
  t.comment(`RSS ${before} MiB before, ${rssMiB()} MiB after ${sent} frames`)

  // Bad frames interleaved with typing frames: still closed after five bad ones.
  const eve = await SocketClient.open(base, await signIn(app, 'eve'))
  for (let i = 0; i < 10 && !eve.closed; i++) {
    eve.send('not json')
    eve.send({ typing: true })
    await new Promise((r) => setTimeout(r, 5))
  }
  t.match(await eve.untilClosed(), { code: 1007, reason: 'too many invalid frames' })

  bob.send({ text: 'bob is fine' })
  await bob.until(() => bob.events.some((e) => e.text === 'bob is fine'), 'bob to hear himself')
  await bob.close()
})

t.test('caps per user: sockets and waiting polls past the cap are refused; presence churn is held back', async (t) => {
  const app = await buildTestApp(t, { MAX_SOCKETS_PER_USER: '3', MAX_POLLS_PER_USER: '2', LONGPOLL_TIMEOUT: '30', PRESENCE_CHURN: '3' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  const sockets = await Promise.all(range(1, 3).map(() => SocketClient.open(base, ann)))
  const fourth = await SocketClient.open(base, ann)
  t.match(await fourth.untilClosed(), { code: 1008, reason: 'too many connections for one user' }, 'the newest socket over the cap is refused')
  await Promise.all(sockets.map((s) => s.close()))

  await eventually(() => !app.chatroom.presence.isOnline('ann'), 'ann to have left')
  const bob = await signIn(app, 'bob')
  await enter(app, bob, 'longpolling')
  const cursor = app.chatroom.lastId
  const controllers = [new AbortController(), new AbortController()]
  const polls = controllers.map((c) => fetch(`${base}/longpolling/room/messages?lastReceived=${cursor}`, { headers: { cookie: bob }, signal: c.signal }).catch(() => undefined))
  await eventually(() => app.chatroom.waitingCount === 2, 'two waiting polls')
  const third = await fetch(`${base}/longpolling/room/messages?lastReceived=${cursor}`, { headers: { cookie: bob } })
  t.equal(third.status, 429, 'a third waiting poll is refused')
  t.match(await third.json(), { error: 'Too Many Requests', reason: 'tooMany' })
  for (const c of controllers) c.abort()
  await Promise.all(polls)

  // One user flapping: 50 connects and disconnects make a few join/leave pairs, not a hundred.
  const watcher = await SocketClient.open(base, await signIn(app, 'watcher'))
  const flapper = await signIn(app, 'flapper')
  for (let i = 0; i < 50; i++) {
    const s = await SocketClient.open(base, flapper)
    await s.close()
    await eventually(() => app.chatroom.subscriberCount === 1, 'the flapping socket released')
  }
  await app.chatroom.post('watcher', 'marker')
  await watcher.until(() => watcher.events.some((e) => e.text === 'marker'), 'the marker')
  const noise = watcher.events.filter((e) => e.user === 'flapper').length
  t.ok(noise <= 2 * 3 + 1, `${noise} join/leave events for 50 reconnects (PRESENCE_CHURN 3)`)
  await watcher.close()
})

t.test('thousands online: pages and /room/users stay small (a count and the first ROSTER_LIMIT)', async (t) => {
  const app = await buildTestApp(t, { ROSTER_LIMIT: '50' })
  for (let i = 0; i < 2000; i++) await app.chatroom.join(`user${String(i).padStart(4, '0')}`)
  const ann = await signIn(app, 'ann', 'refresh')
  const users = await app.inject({ method: 'GET', url: '/room/users', headers: { cookie: ann } })
  t.equal(users.json().count, 2000)
  t.equal(users.json().users.length, 50)
  const thread = await app.inject({ method: 'GET', url: '/refresh/room/thread', headers: { cookie: ann } })
  t.match(thread.body, /and 1951 more/, 'the rest are counted')
  t.ok(thread.body.length < 60_000, `the refresh fragment is ${thread.body.length} bytes with 2,001 online`)
})
