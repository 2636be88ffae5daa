import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import t from 'tap'
import { buildTestApp, enter, eventually, signIn, SocketClient } from './helpers.js'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void
const heapAfterGc = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

t.test('10,000 connect/disconnect cycles across transports leave no subscriber and a flat heap', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '30' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const cookies = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn(app, `user${i}`)))
  // Online through long polling (each poll renews the lease), so the cycles below make no
  // join/leave events and every poll really waits until it is abandoned.
  for (const cookie of cookies) await enter(app, cookie, 'longpolling')
  const quiet = app.chatroom.lastId
  const BATCH = 50

  /** One round: 400 sockets, 300 abandoned long polls, 300 refresh page loads = 1,000 cycles. */
  const round = async () => {
    for (let i = 0; i < 400; i += BATCH) {
      const sockets = await Promise.all(Array.from({ length: BATCH }, (_, k) => SocketClient.open(base, cookies[(i + k) % 20])))
      await Promise.all(sockets.map((s) => s.close()))
    }
    for (let i = 0; i < 300; i += BATCH) {
      const controllers = Array.from({ length: BATCH }, () => new AbortController())
      const polls = controllers.map((c, k) =>
        fetch(`${base}/longpolling/room/messages?lastReceived=${app.chatroom.lastId}`, { headers: { cookie: cookies[k % 20]! }, signal: c.signal }).catch(() => undefined),
      )
      await eventually(() => app.chatroom.subscriberCount >= BATCH, 'polls waiting')
      for (const c of controllers) c.abort()
      await Promise.all(polls)
    }
    for (let i = 0; i < 300; i++) {
      await app.inject({ method: 'GET', url: '/refresh/room/thread', headers: { cookie: cookies[i % 20]! } })
    }
    await eventually(() => app.chatroom.subscriberCount === 0, 'every subscription released')
  }

  // Warm up (JIT, pools, caches), then compare the heap over the last 5,000 cycles: the leak
  // this guards against (a timer kept per abandoned poll) grew it by about 1 MiB per round.
  for (let r = 0; r < 5; r++) await round()
  const baseline = heapAfterGc()
  for (let r = 5; r < 10; r++) await round()
  t.equal(app.chatroom.subscriberCount, 0, 'no subscriber left after 10,000 cycles')
  t.equal(app.websocketServer.clients.size, 0, 'no socket left')
  const grown = (heapAfterGc() - baseline) / 1024 / 1024
  // Noise from the clients in this same process is a few MiB; a kilobyte kept per connection would be 5.
  t.ok(grown < 6, `heap over the last 5,000 cycles grew ${grown.toFixed(1)} MiB (< 6)`)
  t.equal(app.chatroom.presence.size, 20, 'presence holds the 20 users, nothing per connection')
  t.equal(app.chatroom.lastId, quiet, 'and no join/leave noise came from 10,000 reconnects')
  // Abandoned polls must leave no timers behind: close() would wait on them.
  const closing = Date.now()
  await app.close()
  t.ok(Date.now() - closing < 2000, `closed in ${Date.now() - closing} ms`)
})
