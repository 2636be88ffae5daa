import { createHash } from 'node:crypto'
import t from 'tap'
import { LocalBus } from '../app/chatroom/bus/local.js'
import { MemorySessions, MemoryStore } from '../app/chatroom/store/memory.js'
import { Chatroom } from '../app/chatroom/chatroom.js'
import type { EventDraft, StoredEvent } from '../app/chatroom/event.js'
import type { Subscription } from '../app/chatroom/subscription.js'
import { buildTestApp, controlledClock, enter, signIn, SocketClient } from './helpers.js'

/** A room whose releases are counted: subscriptions let go by the room, presence holds by the user. */
async function countedRoom(graceMs = 60_000) {
  const room = new Chatroom(new MemoryStore(), new LocalBus(), {
    archiveSize: 100,
    subscriberQueue: 3,
    presence: { graceMs, ttlMs: 1000, leaseMs: { longpolling: 60_000 } },
  })
  await room.start()
  t.teardown(() => room.close())
  const released: Subscription[] = []
  const release = room.lobby.release.bind(room.lobby)
  room.lobby.release = (s) => {
    released.push(s)
    release(s)
  }
  let holds = 0
  let letGo = 0
  const hold = room.presence.hold.bind(room.presence)
  room.presence.hold = (member) => {
    holds++
    const done = hold(member)
    return () => {
      letGo++
      done()
    }
  }
  const enter = async (lastReceived?: number) => {
    const entered = await room.enter({ name: 'ann' }, 'websocket', { lastReceived })
    if (!entered.ok) throw new Error('refused')
    return entered.subscription
  }
  return { room, released, enter, presence: () => ({ holds, letGo }) }
}

t.test('wait() answers at once when something is queued, else on the first event', async (t) => {
  const { room, enter, released, presence } = await countedRoom()
  const first = await enter(0)
  t.equal(await first.wait(10_000), 'readable', 'the backlog (her own join) is there already')
  t.same(first.take().map((s) => s.event.type), ['join'])
  const waiting = first.wait(10_000)
  t.equal(room.waitingCount, 1, 'counted as waiting')
  await room.post('bob', 'hello')
  t.equal(await waiting, 'readable')
  t.equal(room.waitingCount, 0)
  t.match(first.takeFrame().toString(), /"text":"hello"/)
  first.cancel()
  first.cancel()
  t.same(released, [first], 'released once, however often cancelled')
  t.same(presence(), { holds: 1, letGo: 1 }, 'and its presence hold let go once')
})

t.test('wait() ends on the timeout, the abort, the room closing, lagging, or a cancel', async (t) => {
  const { room, enter, released, presence } = await countedRoom()
  const cursor = () => room.lastId

  const timed = await enter()
  timed.take()
  t.equal(await timed.wait(20), 'timeout')
  t.equal(timed.takeFrame().toString(), '[]', 'an empty frame after a timeout')
  t.equal(timed.state, 'open', 'a timeout releases nothing by itself')
  timed.cancel()

  const aborted = await enter(cursor())
  const controller = new AbortController()
  const abortWait = aborted.wait(10_000, controller.signal)
  controller.abort()
  t.equal(await abortWait, 'aborted')
  t.equal(await aborted.wait(10_000, controller.signal), 'aborted', 'an aborted signal answers at once')
  aborted.cancel()

  const cancelled = await enter(cursor())
  const cancelWait = cancelled.wait(10_000)
  cancelled.cancel()
  t.equal(await cancelWait, 'cancelled', 'a cancel during the wait ends it')

  const lagging = await enter(cursor())
  const lagWait = lagging.wait(10_000)
  // The first event wakes the wait on the next tick; meanwhile four overflow a queue of three.
  for (let i = 0; i < 4; i++) room.post('bob', `m${i}`)
  const lagResult = await lagWait
  t.ok(lagResult === 'lagged' || lagResult === 'readable', `woken (${lagResult})`)
  t.equal(lagging.state, 'lagged')
  t.equal(await lagging.wait(10_000), 'lagged', 'a lagged subscription answers at once')
  lagging.cancel()

  const closing = await enter(cursor())
  const closeWait = closing.wait(10_000)
  await room.endSubscriptions()
  t.equal(await closeWait, 'closed', 'the room closing ends the wait')
  closing.cancel()

  t.equal(released.length, 5, 'each of the five released exactly once')
  t.equal(new Set(released).size, 5)
  t.same(presence(), { holds: 5, letGo: 5 })
  t.equal(room.subscriberCount, 0)
})

t.test('leave() ends the subscription and the presence at once; a cursor ahead is refused', async (t) => {
  const { room, enter, released } = await countedRoom()
  const tab = await enter()
  t.equal(room.presence.isOnline('ann'), true)
  tab.leave()
  tab.leave()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(room.presence.isOnline('ann'), false, 'no grace period for an explicit leave')
  t.same(room.archive().map((s) => `${s.event.type}:${s.event.user}`), ['join:ann', 'leave:ann'])
  t.same(released, [tab])
  const refused = await room.enter({ name: 'ann' }, 'websocket', { lastReceived: room.lastId + 1 })
  t.same(refused, { ok: false, refused: 'ahead', epoch: room.epoch, lastId: room.lastId })
  t.equal(room.subscriberCount, 0, 'a refusal subscribes nothing')
  t.equal(room.presence.isOnline('ann'), false, 'and holds nobody')
})

/** A log that can be made to refuse messages, as a database does when it is away. */
class FlakyStore extends MemoryStore {
  down = false
  override append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    return this.down && drafts.some((d) => d.type === 'message') ? Promise.reject(new Error('store down')) : super.append(drafts)
  }
}

t.test('each say outcome maps to each protocol in one place', async (t) => {
  const store = new FlakyStore()
  const app = await buildTestApp(t, { RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '60', MAX_MESSAGE_LENGTH: '10' }, { store })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const form = { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }
  const lp = (cookie: string, text: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie, ...headers }, payload: headers.accept ? `message=${encodeURIComponent(text)}` : { text } })
  const page = (cookie: string, text: string) =>
    app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie, ...form }, payload: `message=${encodeURIComponent(text)}` })
  const socketSay = async (socket: SocketClient, text: string) => {
    const before = socket.errors.length
    socket.send({ text })
    await socket.until(() => socket.errors.length > before, 'an error frame')
    return socket.errors.at(-1)
  }

  // invalid: 400 / error frame (counted as a bad frame) / flash
  const ann = await signIn(app, 'ann')
  await enter(app, ann, 'refresh')
  t.match((await lp(ann, 'x'.repeat(11))).json(), { error: 'Bad Request', message: /at most 10 characters/ })
  t.equal((await lp(ann, 'x'.repeat(11))).statusCode, 400)
  const annSocket = await SocketClient.open(base, ann)
  t.match(await socketSay(annSocket, 'x'.repeat(11)), { error: 'Bad Request', message: /at most 10 characters/ })
  const flash = await page(ann, 'x'.repeat(11))
  t.equal(flash.statusCode, 400)
  t.match(flash.body, /role="alert">A message is at most 10 characters/)
  const noScript = await lp(ann, 'x'.repeat(11), form)
  t.equal(noScript.statusCode, 400, 'a form without JavaScript gets the page it can read')
  t.match(noScript.body, /400 — Bad Request[\s\S]*at most 10 characters/)

  // ok: 201 with the event / nothing (the event arrives) / redirect; forms go back to their page
  t.equal((await lp(ann, 'one')).statusCode, 201)
  const viaForm = await lp(ann, 'two', form)
  t.same([viaForm.statusCode, viaForm.headers.location], [303, '/longpolling/room'], 'the long-poll page posts to its own transport')

  // flooded: 429 + Retry-After / frame with retryAfter / flash with Retry-After
  const flooded = await lp(ann, 'three')
  t.equal(flooded.statusCode, 429)
  t.equal(flooded.headers['retry-after'], '60')
  t.match(flooded.json(), { error: 'Too Many Requests', message: /at most 2 messages per 60 s/ })
  t.match(await socketSay(annSocket, 'three'), { error: 'Too Many Requests', retryAfter: 60 })
  const slow = await page(ann, 'three')
  t.same([slow.statusCode, slow.headers['retry-after']], [429, '60'])
  t.match(slow.body, /role="alert">Slow down/)
  const wsForm = await app.inject({ method: 'POST', url: '/websocket/room/messages', headers: { cookie: ann, ...form }, payload: 'message=three' })
  t.same([wsForm.statusCode, wsForm.headers['retry-after']], [429, '60'], 'the socket page\'s form too')

  // unavailable: 503 / frame / flash (a user each: a failed send still counts toward the limit)
  store.down = true
  const [bob, cat, dan, eve] = await Promise.all(['bob', 'cat', 'dan', 'eve'].map((name) => signIn(app, name)))
  const down = await lp(bob!, 'hello')
  t.equal(down.statusCode, 503)
  t.match(down.json(), { error: 'Service Unavailable', message: /not sent/ })
  const catSocket = await SocketClient.open(base, cat!)
  t.match(await socketSay(catSocket, 'hello'), { error: 'Service Unavailable' })
  t.equal(catSocket.closed, undefined, 'the socket stays open')
  const downPage = await page(dan!, 'hello')
  t.equal(downPage.statusCode, 503)
  t.match(downPage.body, /role="alert">The chat is unavailable right now/)
  store.down = false
  const wsOk = await app.inject({ method: 'POST', url: '/websocket/room/messages', headers: { cookie: eve!, ...form }, payload: 'message=back' })
  t.same([wsOk.statusCode, wsOk.headers.location], [303, '/websocket/room'], 'back: the socket page posts to its own transport')
  await Promise.all([annSocket.close(), catSocket.close()])
})


t.test('SESSION_IDLE=60: someone active every 4 s stays signed in; someone idle past a minute is signed out', async (t) => {
  const clock = controlledClock(t)
  const app = await buildTestApp(t, { SESSION_IDLE: '60' })
  const status = async (cookie: string) => (await app.inject({ method: 'GET', url: '/room/users', headers: { cookie } })).statusCode
  const active = await signIn(app, 'ann')
  const idle = await signIn(app, 'bob')
  const once = await signIn(app, 'cat')
  const outAt: number[] = []
  for (let second = 4; second <= 152; second += 4) {
    clock.advance(4)
    if ((await status(active)) !== 200) outAt.push(second)
    if (second === 32) t.equal(await status(once), 200, 'cat: used once, 32 s in')
    if (second === 84) t.equal(await status(once), 200, 'cat: 52 s after that use, still signed in')
    if (second === 152) t.equal(await status(once), 401, 'cat: 68 s after her last use, signed out')
    if (second === 64) t.equal(await status(idle), 401, 'bob: unused since signing in 64 s ago, signed out')
  }
  t.same(outAt, [], 'ann, active every 4 s, is never signed out in 152 s')
})

t.test("a session's requests at once (its tabs' polls, answered by one event) read it from the store once, and each is signed in", async (t) => {
  const clock = controlledClock(t)
  let reads = 0
  class Counted extends MemorySessions {
    override async read(hash: string) {
      reads++
      // As a store over the network: the others arrive while it is being read.
      await new Promise((resolve) => setTimeout(resolve, 20))
      return super.read(hash)
    }
  }
  const app = await buildTestApp(t, {}, { store: new MemoryStore(new Counted()) })
  const ann = await signIn(app, 'ann')
  const bob = await signIn(app, 'bob')
  clock.advance(10)
  reads = 0
  const asked = [...Array.from({ length: 50 }, () => ann), ...Array.from({ length: 50 }, () => bob)]
  const answers = await Promise.all(asked.map((cookie) => app.inject({ method: 'GET', url: '/room/users', headers: { cookie } })))
  t.same([...new Set(answers.map((a) => a.statusCode))], [200], 'all hundred signed in')
  t.equal(reads, 2, 'one read of the store per session')
  clock.advance(10)
  t.equal((await app.inject({ method: 'GET', url: '/room/users', headers: { cookie: ann } })).statusCode, 200, 'later, read again')
  t.equal(reads, 3, 'once more')
  t.equal((await app.inject({ method: 'POST', url: '/signout', headers: { cookie: ann, origin: 'http://localhost:80' } })).statusCode < 400, true, 'ann signs out')
  t.equal((await app.inject({ method: 'GET', url: '/room/users', headers: { cookie: ann } })).statusCode, 401, 'and is signed out')

  // Signed out on another process while his requests wait on a read of his session: none is signed in by it.
  clock.advance(10)
  const { value } = app.unsignCookie(decodeURIComponent(bob.slice('chat_session='.length)))
  const waiting = Array.from({ length: 5 }, () => app.inject({ method: 'GET', url: '/room/users', headers: { cookie: bob } }))
  await new Promise((resolve) => setTimeout(resolve, 5))
  app.chatroom.onRevoked?.(createHash('sha256').update(value!).digest('base64url'))
  t.same((await Promise.all(waiting)).map((a) => a.statusCode), [401, 401, 401, 401, 401], 'the five waiting on the read are answered 401')
})

t.test('the store not answering a session re-read: a session read here within the last minute goes on, its use recorded later; one not, one past its age, or one signed out, does not', async (t) => {
  const clock = controlledClock(t)
  let failing = false
  let touchFailing = false
  let touches = 0
  /** While set, a read waits for it (a store slow to fail). */
  let gate: Promise<void> | undefined
  class Failing extends MemorySessions {
    override async read(hash: string) {
      if (gate) await gate
      if (failing) throw new Error('timeout exceeded when trying to connect')
      return super.read(hash)
    }
    override async touch(hash: string, at: number) {
      touches++
      if (failing || touchFailing) throw new Error('timeout exceeded when trying to connect')
      return super.touch(hash, at)
    }
  }
  const app = await buildTestApp(t, { SESSION_MAX_AGE: '100' }, { store: new MemoryStore(new Failing()) })
  const status = async (cookie: string) => (await app.inject({ method: 'GET', url: '/room/users', headers: { cookie } })).statusCode
  const hashOfCookie = (cookie: string) => createHash('sha256').update(app.unsignCookie(decodeURIComponent(cookie.slice('chat_session='.length))).value!).digest('base64url')
  const ann = await signIn(app, 'ann')
  const bob = await signIn(app, 'bob')
  const cat = await signIn(app, 'cat')
  t.equal(await status(ann), 200)
  t.equal(await status(cat), 200)
  clock.advance(30)
  t.equal(await status(bob), 200, 'bob read here 30 s after signing in (cat and ann not since)')
  failing = true
  clock.advance(8)
  t.equal(await status(bob), 200, 'bob, read 8 s ago: goes on while the store fails')
  t.equal(await status(ann), 200, 'ann, read 38 s ago: goes on')
  clock.advance(25)
  t.equal(await status(ann), 503, 'past a minute since her last read: 503 (sessions cannot be read)')
  t.equal(await status(bob), 200, 'bob, read 33 s ago: still goes on')

  // Cat's request waits on a read that fails only after she was signed out on another process, long after.
  clock.advance(-60)
  failing = false
  t.equal(await status(cat), 200, 'cat, read again')
  clock.advance(6)
  failing = true
  let release = () => {}
  gate = new Promise<void>((resolve) => (release = resolve))
  const waiting = status(cat)
  await new Promise((resolve) => setTimeout(resolve, 20))
  // Signed out on another process: the store no longer has it, and this process is told.
  await app.chatroom.sessions.delete(hashOfCookie(cat))
  app.chatroom.onRevoked?.(hashOfCookie(cat))
  clock.advance(100)
  gate = undefined
  release()
  t.equal(await waiting, 503, 'the read fails 100 s after she was signed out: her copy from before is not taken')
  t.equal(await status(cat), 503, 'nor at her next request')
  failing = false
  t.equal(await status(cat), 401, 'the store back: cat is signed out')

  // Past SESSION_MAX_AGE (100 s): a stale copy is not taken either.
  clock.advance(-100)
  const dan = await signIn(app, 'dan')
  clock.advance(90)
  t.equal(await status(dan), 200, 'dan, 90 s old')
  failing = true
  clock.advance(15)
  t.equal(await status(dan), 503, 'at 105 s, past his age: not taken from before')
  failing = false
  t.equal(await status(dan), 401, 'the store back: ended')

  // Reads answer, the write of a use does not: the request goes on, and the write is tried again 10 s later, not at every request.
  const eve = await signIn(app, 'eve')
  touchFailing = true
  clock.advance(61)
  const before = touches
  t.equal(await status(eve), 200, "eve's use is due to be recorded (a minute since): the failed write does not fail her request")
  t.equal(touches, before + 1, 'it was tried')
  t.equal(await status(eve), 200)
  t.equal(touches, before + 1, 'not again at once')
  clock.advance(11)
  t.equal(await status(eve), 200)
  t.equal(touches, before + 2, 'again 10 s later')
  touchFailing = false
})
