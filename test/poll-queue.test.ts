import t from 'tap'
import { Room } from '../app/chatroom/room.js'
import { waitingPolls } from '../app/transport/http.js'
import { eventually, registerAccount, post, served, StreamPoller, type StreamAnswer } from './helpers.js'

// A page's long poll of the person's stream keeps its rooms entered between its polls (its
// queue on the server): what is said meanwhile waits there, and the next poll that comes back
// with the cursors the last answer gave is handed it without entering a room again. An answer
// that never reached the page (it comes back with its old cursors) is handed again from there.

/** A page's poller: one tab, a cursor per room and one for its own events, as the page app keeps them. */
class Page extends StreamPoller {
  constructor(base: string, cookie: string, tab = `tab${Math.random().toString(36).slice(2, 12)}`, typing = false) {
    super(base, cookie, { tab, typing })
  }

  override get tab(): string {
    return super.tab!
  }
}

/** Ann's room red, which Bob joined: the two of them on a server of its own. */
async function inRed(t: Parameters<typeof served>[0], env: Record<string, string> = {}) {
  const { base, app } = await served(t, env)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'red' })
  await post(base, bob, '/rooms/red/join')
  return { base, app, ann, bob }
}

/** Counts the rooms (logs) entered or followed (Room.enter, Room.follow) while `run` runs. */
async function entering<T>(run: () => Promise<T>): Promise<{ result: T; entered: number }> {
  const { enter, follow } = Room.prototype
  const entered = new Set<string>()
  Room.prototype.enter = function (this: Room, ...args: Parameters<typeof enter>) {
    entered.add(this.name)
    return enter.apply(this, args)
  }
  Room.prototype.follow = function (this: Room, ...args: Parameters<typeof follow>) {
    entered.add(this.name)
    return follow.apply(this, args)
  }
  try {
    return { result: await run(), entered: entered.size }
  } finally {
    Room.prototype.enter = enter
    Room.prototype.follow = follow
  }
}

t.test('a page polls again with the cursors it was given: its rooms are not entered again, and everything said between two polls comes once, in order', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  for (const room of ['red', 'blue']) {
    await post(base, ann, '/rooms', { name: room })
    await post(base, bob, `/rooms/${room}/join`)
  }
  const page = new Page(base, ann)
  const first = await entering(() => page.poll())
  t.same(Object.keys(first.result.rooms).sort(), ['blue', 'lobby', 'me', 'red'], 'the first poll: every room of hers')
  t.equal(first.entered, 4, 'four logs entered (her own, the lobby, red, blue)')
  t.equal(app.pollQueues.size, 1, 'her page has a queue, kept for its next poll')

  // Said while no poll waits: kept for her.
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'red 1' })
  await post(base, bob, '/longpolling/rooms/blue/messages', { text: 'blue 1' })
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'red 2' })
  const again = await entering(async () => {
    await page.until(() => page.texts('red').length === 2 && page.texts('blue').length === 1, 'red 1, red 2 and blue 1')
    // Said while the poll waits.
    const waiting = page.poll()
    await new Promise((resolve) => setTimeout(resolve, 50))
    await post(base, bob, '/longpolling/rooms/blue/messages', { text: 'blue 2' })
    return waiting
  })
  t.equal(again.entered, 0, 'no room entered again')
  t.same(page.texts('red'), ['red 1', 'red 2'], 'red: each once, in order')
  t.same(page.texts('blue'), ['blue 1', 'blue 2'], 'blue: each once, in order (the second reached a waiting poll)')
  const red = await app.chatroom.room('red')
  t.equal(again.result.rooms.red!.lastId, red.lastId, 'the answer gives red where it stands')
})

t.test('an answer that never reached the page: its next poll, with the old cursors, is handed the same events again; then on as before', async (t) => {
  const { base, ann, bob } = await inRed(t)
  const page = new Page(base, ann)
  await page.poll()
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'lost once' })
  let lost: StreamAnswer | undefined
  for (let i = 0; i < 5 && !lost?.events.some((e) => e.text === 'lost once'); i++) lost = await page.poll(true)
  t.ok(lost?.events.some((e) => e.text === 'lost once'), 'the answer that gets lost had it')
  const { result, entered } = await entering(() => page.poll())
  t.same(
    result.events.filter((e) => e.type === 'message').map((e) => e.text),
    ['lost once'],
    'the next poll, from the old cursor, has it again',
  )
  t.equal(entered, 1, 'red alone is entered again (from the cursor the page gave); the rest was handed over as kept')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'after' })
  await page.until(() => page.texts('red').includes('after'), 'after')
  t.same(page.texts('red'), ['lost once', 'after'], 'each once')
})

/** A small seeded generator (mulberry32), so a failing run can be made again from its seed. */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

t.test('answers lost at random while three rooms speak: every message reaches the page exactly once, in order (run 5 times)', async (t) => {
  const seed = Number(process.env.POLL_SEED) || Date.now() % 1_000_000
  t.comment(`POLL_SEED=${seed}`)
  const random = seeded(seed)
  for (let run = 0; run < 5; run++) {
    const { base, app } = await served(t, { RATE_LIMIT_MESSAGES: '100000' })
    const ann = await registerAccount(app, 'ann')
    const bob = await registerAccount(app, 'bob')
    const rooms = ['r1', 'r2', 'r3']
    for (const room of rooms) {
      await post(base, ann, '/rooms', { name: room })
      await post(base, bob, `/rooms/${room}/join`)
    }
    const page = new Page(base, ann)
    await page.poll()
    const sent = 60
    let done = false
    const talking = (async () => {
      for (let i = 0; i < sent; i++) {
        const room = rooms[i % 3]!
        await post(base, bob, `/longpolling/rooms/${room}/messages`, { text: `${room} ${i}` })
        if (i % 7 === 0) await new Promise((resolve) => setTimeout(resolve, 5))
      }
      done = true
    })()
    let polls = 0
    // One answer in four never reaches the page; a bounded number of polls.
    while ((!done || rooms.some((room) => page.texts(room).length < sent / 3)) && polls < 400) {
      polls++
      await page.poll(random() < 0.25)
    }
    await talking
    for (const room of rooms) {
      const expected = Array.from({ length: sent / 3 }, (_, k) => `${room} ${k * 3 + rooms.indexOf(room)}`)
      t.same(page.texts(room), expected, `run ${run} (POLL_SEED=${seed}): ${room} whole, once each, in order`)
    }
  }
})

t.test('what a kept queue holds follows the person: a private room left, a kick, an invitation, all between two polls', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  // Private rooms: once out of one, nothing of it is hers to read on any route.
  for (const room of ['red', 'blue', 'green']) await post(base, bob, '/rooms', { name: room, visibility: 'private' })
  await post(base, bob, '/rooms/red/invite', { user: 'ann' })
  await post(base, bob, '/rooms/blue/invite', { user: 'ann' })
  const page = new Page(base, ann)
  await page.poll()
  t.ok(page.cursors.has('red') && page.cursors.has('blue'), 'red and blue followed')

  // Left on another device, then said there: the leave, and nothing after it.
  t.equal((await post(base, ann, '/rooms/red/leave')).status, 200)
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'after she left' })
  await page.until(() => page.got.some((e) => e.type === 'person' && e.kind === 'left' && e.room === 'red'), 'her leave of red')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'later in red' })
  t.notOk('red' in (await page.poll()).rooms, 'red is no longer in what her poll follows')

  // Kicked from blue between polls: her next poll says it (who, and why), and blue is no longer hers.
  t.equal((await post(base, bob, '/rooms/blue/moderation', { action: 'kick', user: 'ann', reason: 'cool off' })).status, 200)
  await page.until(() => page.got.some((e) => e.type === 'person' && e.kind === 'removed' && e.room === 'blue'), 'the kick')
  t.match(
    page.got.find((e) => e.type === 'person' && e.kind === 'removed'),
    { room: 'blue', action: 'kick', user: 'bob', reason: 'cool off' },
    'blue: a kick, by bob, saying why',
  )
  t.notOk('blue' in (await page.poll()).rooms, 'blue is no longer in what her poll follows')

  // Invited to green: followed from where she was let in.
  t.equal((await post(base, bob, '/rooms/green/invite', { user: 'ann' })).status, 200)
  await page.until(() => page.cursors.has('green'), 'green followed')
  await post(base, bob, '/longpolling/rooms/green/messages', { text: 'welcome' })
  await post(base, bob, '/longpolling/rooms/blue/messages', { text: 'blue after the kick' })
  await page.until(() => page.texts('green').includes('welcome'), 'green’s welcome')
  t.same(page.texts('red'), [], 'nothing of red after she left')
  t.same(page.texts('blue'), [], 'nothing of blue after the kick')
})

t.test('a kept queue is let go of: after LONGPOLL_KEEP without a poll, at sign-out, and two polls of one page at once each get everything', async (t) => {
  const { base, app, ann, bob } = await inRed(t, { LONGPOLL_KEEP: '0.3' })
  const idle = app.chatroom.subscriberCount
  const page = new Page(base, ann)
  await page.poll()
  t.ok(app.chatroom.subscriberCount > idle, 'her rooms are read for her page while it is away between polls')
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
    return check()
  }
  t.ok(await until(() => app.pollQueues.size === 0 && app.chatroom.subscriberCount === idle), 'the page did not come back: its queue and every reader of it are gone')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'while away' })
  await page.until(() => page.texts('red').includes('while away'), 'what was said while away, from her cursor')

  // Two polls of one page at once (a page that asks again before its last poll answered): both answer, nothing is left behind.
  const one = page.poll()
  const two = new Page(base, ann, page.tab)
  for (const [room, cursor] of page.cursors) two.cursors.set(room, { ...cursor })
  const other = two.poll()
  await new Promise((resolve) => setTimeout(resolve, 50))
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'to both' })
  await Promise.all([one, other])
  t.ok(page.texts('red').includes('to both') && two.texts('red').includes('to both'), 'both polls have it')
  t.ok(await until(() => app.pollQueues.size === 0 && app.chatroom.subscriberCount === idle), 'both let go of')

  // Signed out between polls: the queue goes at once, and the next poll is refused.
  await page.poll()
  t.equal(app.pollQueues.size, 1)
  t.equal((await app.inject({ method: 'POST', url: '/signout', headers: { cookie: ann, accept: 'text/html' } })).statusCode, 303, 'signed out')
  t.equal(app.pollQueues.size, 0, 'signed out: her queue is gone at once')
  const after = await fetch(`${base}/longpolling/messages?follow=me&tab=${page.tab}${page.query()}`, { headers: { cookie: ann } })
  t.equal(after.status, 401, 'her next poll: 401')
})

t.test('signed out while a poll waits: it answers at once, not after its 20 s, and the next is refused', async (t) => {
  const { base, app } = await served(t, { LONGPOLL_TIMEOUT: '20' })
  const ann = await registerAccount(app, 'ann')
  const page = new Page(base, ann)
  await page.poll()
  // A poll that waits (what came with her arrival is handed over first).
  let waiting: ReturnType<Page['poll']> | undefined
  for (let i = 0; i < 5 && !waiting; i++) {
    const poll = page.poll()
    const answered = await Promise.race([poll.then(() => true), new Promise((resolve) => setTimeout(resolve, 200, false))])
    if (!answered) waiting = poll
  }
  t.ok(waiting, 'a poll waits')
  t.equal(waitingPolls(), 1)
  const started = Date.now()
  await app.inject({ method: 'POST', url: '/signout', headers: { cookie: ann, accept: 'text/html' } })
  await waiting
  t.ok(Date.now() - started < 10_000, 'the waiting poll answered at once')
  t.equal(app.pollQueues.size, 0, 'her queue is gone')
  t.equal((await page.poll()).status, 401, 'her next poll: 401')
})

t.test('a poll whose page went away while it waited takes nothing: the next poll, from the same cursors, has what came since, once, with no room entered again', async (t) => {
  const { base, ann, bob } = await inRed(t, { LONGPOLL_TIMEOUT: '20' })
  const page = new Page(base, ann)
  await page.poll()
  await page.poll()
  const controller = new AbortController()
  const cut = fetch(`${base}/longpolling/messages?follow=me&tab=${page.tab}${page.query()}`, { headers: { cookie: ann }, signal: controller.signal }).catch(() => 'cut')
  for (let i = 0; i < 50 && waitingPolls() === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(waitingPolls(), 1, 'the poll waits')
  controller.abort()
  t.equal(await cut, 'cut')
  for (let i = 0; i < 50 && waitingPolls() > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'after the cut' })
  const { entered } = await entering(() => page.until(() => page.texts('red').includes('after the cut'), 'after the cut'))
  t.same(page.texts('red'), ['after the cut'], 'once')
  t.equal(entered, 0, 'what the page had was still kept for it')
})

t.test("the store not answering for the person's own log: the poll answers 503 and nothing it entered is left behind", async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  await post(base, ann, '/rooms', { name: 'red' })
  // One page of hers polls (her rooms are known here from then on); what it holds is counted.
  await new Page(base, ann).poll()
  const before = app.chatroom.subscriberCount
  // Her own log (the one loaded person's log here) cannot be entered.
  const rooms = (app.chatroom as unknown as { rooms: Map<string, Room> }).rooms
  const mine = [...rooms.values()].find((r) => r.name.startsWith('~'))!
  mine.enter = async () => {
    throw Object.assign(new Error('timeout exceeded when trying to connect'), { code: undefined })
  }
  // Another page: its rooms are entered, her own log cannot be.
  const page = new Page(base, ann)
  const refused = await page.poll()
  delete (mine as Partial<Room>).enter
  t.equal(refused.status, 503, '503')
  t.equal(app.chatroom.subscriberCount, before, 'the lobby and red, entered beside it, were let go of')
  t.equal(app.pollQueues.size, 1, 'no queue kept for that page')
  t.equal((await page.poll()).status, 200, 'and all is well once the store answers')
})

t.test("a page's leave beacon lets its queue go at once: nothing of it holds her present", async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const idle = app.chatroom.subscriberCount
  const page = new Page(base, ann)
  await page.poll()
  t.equal(app.pollQueues.size, 1)
  t.equal((await post(base, ann, '/room/leave', { tab: page.tab })).status, 204)
  t.equal(app.pollQueues.size, 0, 'the queue is gone')
  t.equal(app.chatroom.subscriberCount, idle, 'and every reader of it')
})

t.test('a room the store cannot resume for now (503) keeps its cursor: the answer gives it back, and the next poll has what was said meanwhile', async (t) => {
  const { base, app, ann, bob } = await inRed(t)
  const page = new Page(base, ann)
  await page.poll()
  const red = await app.chatroom.room('red')
  const cursor = page.cursors.get('red')!
  // Her answer is lost and red is said to meanwhile: red is entered again from her cursor, and that fails once.
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'first' })
  await page.poll(true)
  red.enter = async () => ({ ok: false, refused: 'unavailable', epoch: red.epoch, lastId: red.lastId })
  const refused = await page.poll()
  delete (red as Partial<Room>).enter
  t.match(refused.refused, [{ room: 'red', error: 'Service Unavailable' }], 'red refused 503')
  t.same(refused.rooms.red, { epoch: cursor.epoch, lastId: cursor.last }, 'with the cursor she gave, to poll it from again')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'second' })
  await page.until(() => page.texts('red').length === 2, 'both')
  t.same(page.texts('red'), ['first', 'second'], 'nothing lost, nothing twice')
})

t.test('what several rooms said between two polls comes in the order it was said, each room in its own order', async (t) => {
  const { base, app, ann, bob } = await inRed(t)
  await post(base, ann, '/rooms', { name: 'blue' })
  await post(base, bob, '/rooms/blue/join')
  const page = new Page(base, ann)
  await page.poll()
  const said = ['blue 1', 'red 1', 'blue 2', 'red 2', 'red 3', 'blue 3']
  for (const text of said) {
    await post(base, bob, `/longpolling/rooms/${text.split(' ')[0]}/messages`, { text })
    // Apart in time, as people type.
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const answer = await page.poll()
  t.same(
    answer.events.filter((e) => e.type === 'message').map((e) => e.text),
    said,
    'in the order said, across rooms',
  )
  t.ok(app.pollQueues.size === 1)
})

// A page of one room (/longpolling/rooms/NAME, the Revel page) keeps its room the same way when
// its polls say the page's id (`tab`): the room is entered once, not at every poll.

/** One room's page polling as the page does: its cursor, the room's epoch and its id. */
class RoomPage {
  lastId = 0
  epoch: string | undefined
  readonly got: { id: number; type: string; text?: string }[] = []
  /** With typing: the signals of the last answer. */
  signals: { type: string; user: string }[] = []
  typing = false
  constructor(
    private readonly base: string,
    private readonly cookie: string,
    private readonly room: string,
    /** null: a program that names no page. */
    readonly tab: string | null = `tab${Math.random().toString(36).slice(2, 12)}`,
  ) {}

  /** One poll; `lose`: its answer never reaches the page (the cursor stays). Returns the status. */
  async poll(lose = false): Promise<number> {
    const query = [this.lastId > 0 ? `lastReceived=${this.lastId}&epoch=${this.epoch}` : '', this.tab ? `tab=${this.tab}` : '', this.typing ? 'typing=1' : ''].filter(Boolean).join('&')
    const res = await fetch(`${this.base}/longpolling/rooms/${this.room}/messages?${query}`, { headers: { cookie: this.cookie } })
    if (res.status !== 200) return res.status
    const events = (await res.json()) as { id: number; type: string; text?: string }[]
    if (lose) return res.status
    this.epoch = res.headers.get('x-room-epoch') ?? undefined
    this.signals = events.filter((e) => typeof e.id !== 'number') as unknown as { type: string; user: string }[]
    for (const e of events.filter((e) => typeof e.id === 'number')) {
      this.got.push(e)
      this.lastId = e.id
    }
    return res.status
  }

  texts(): string[] {
    return this.got.filter((e) => e.type === 'message').map((e) => e.text!)
  }

  async until(check: () => boolean, what: string): Promise<void> {
    for (let i = 0; i < 20 && !check(); i++) await this.poll()
    if (!check()) throw new Error(`never got ${what}`)
  }
}

t.test('a page of one room polls again with the cursor it was given: the room is entered once, and what was said between its polls comes once, in order', async (t) => {
  const { base, app, ann, bob } = await inRed(t, { LONGPOLL_TIMEOUT: '1' })
  const page = new RoomPage(base, ann, 'red')
  const first = await entering(() => page.poll())
  t.equal(first.entered, 1, 'the first poll enters red')
  t.equal(app.pollQueues.size, 1, 'the page has a queue, kept for its next poll')
  const red = await app.chatroom.room('red')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'one' })
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'two' })
  const again = await entering(async () => {
    await page.until(() => page.texts().length === 2, 'one and two')
    const waiting = page.poll()
    await new Promise((resolve) => setTimeout(resolve, 50))
    await post(base, bob, '/longpolling/rooms/red/messages', { text: 'three' })
    return waiting
  })
  t.equal(again.entered, 0, 'red not entered again')
  t.same(page.texts(), ['one', 'two', 'three'], 'each once, in order (the third reached a waiting poll)')
  t.equal(page.lastId, red.lastId, 'the page stands where red does')
  t.same(page.got.map((e) => e.id), [...page.got.map((e) => e.id)].sort((a, b) => a - b), 'ids in order')
  t.equal(new Set(page.got.map((e) => e.id)).size, page.got.length, 'no event twice')

  // A program that names no page: its poll keeps nothing.
  const curl = new RoomPage(base, bob, 'red', null)
  await curl.poll()
  t.equal(app.pollQueues.size, 1, 'no queue kept for a poll without a page id')
})

t.test('a page of one room: an answer that never reached it is handed again from the old cursor; answers lost at random lose nothing and double nothing (run 3 times)', async (t) => {
  const seed = Number(process.env.POLL_SEED) || Date.now() % 1_000_000
  t.comment(`POLL_SEED=${seed}`)
  const random = seeded(seed)
  for (let run = 0; run < 3; run++) {
    const { base, ann, bob } = await inRed(t, { LONGPOLL_TIMEOUT: '0.3', RATE_LIMIT_MESSAGES: '100000' })
    const page = new RoomPage(base, bob, 'red')
    await page.poll()
    const said: string[] = []
    for (let i = 0; i < 30; i++) {
      const text = `m${run}.${i}`
      said.push(text)
      await post(base, ann, '/longpolling/rooms/red/messages', { text })
      if (random() < 0.5) await page.poll(random() < 0.4)
    }
    await page.until(() => page.texts().length >= said.length, 'everything said')
    t.same(page.texts(), said, `run ${run}: every message once, in order`)
  }
})

t.test('a page of one room: a kick between its polls is said at its next poll (403, who and why), and its leave lets the room go at once', async (t) => {
  const { base, app, ann, bob } = await inRed(t, { LONGPOLL_TIMEOUT: '1' })
  const page = new RoomPage(base, bob, 'red')
  await page.poll()
  const red = await app.chatroom.room('red')
  t.ok(red.subscriberCount >= 1, 'red kept entered for the page')
  t.equal((await post(base, ann, '/rooms/red/moderation', { action: 'kick', user: 'bob', reason: 'cool off' })).status, 200)
  const res = await fetch(`${base}/longpolling/rooms/red/messages?lastReceived=${page.lastId}&epoch=${page.epoch}&tab=${page.tab}`, { headers: { cookie: bob } })
  t.equal(res.status, 403, 'the next poll is told')
  t.match(await res.json(), { action: 'kick', by: 'ann', message: /cool off/ }, 'who and why')

  const other = new RoomPage(base, ann, 'red')
  await other.poll()
  const held = red.subscriberCount
  const queues = app.pollQueues.size
  // The page's leave beacon.
  t.equal((await post(base, ann, '/room/leave', { tab: other.tab! })).status, 204)
  await eventually(() => red.subscriberCount < held, 'the page let go of')
  t.equal(app.pollQueues.size, queues - 1, 'its queue is gone')
})

t.test('a page of one room that does not come back: its room is let go of after LONGPOLL_KEEP', async (t) => {
  const { base, app, ann } = await inRed(t, { LONGPOLL_KEEP: '0.2' })
  const red = await app.chatroom.room('red')
  const before = red.subscriberCount
  const page = new RoomPage(base, ann, 'red')
  await page.poll()
  t.equal(red.subscriberCount, before + 1, 'kept for its next poll')
  await eventually(() => red.subscriberCount === before, 'let go of', 3000)
  t.equal(app.pollQueues.size, 0)
})

t.test('a typing signal kept between two polls is handed on while the page would still show it (4 s), not after: nobody shows as typing who stopped long ago', async (t) => {
  const { base, ann, bob } = await inRed(t, { LONGPOLL_TIMEOUT: '1' })
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
  const typing = () => post(base, bob, '/longpolling/rooms/red/typing')
  const bobTyping = (signals: { type: string; user: string }[] | undefined) => (signals ?? []).some((s) => s.type === 'typing' && s.user === 'bob')
  // Ann's page of red alone, and her person's stream: both keep red between their polls.
  const page = new RoomPage(base, ann, 'red')
  page.typing = true
  const stream = new Page(base, ann, undefined, true)
  const both = async () => {
    const [, answer] = await Promise.all([page.poll(), stream.poll()])
    return [bobTyping(page.signals), bobTyping(answer.signals)]
  }
  await both()
  await typing()
  t.same(await both(), [true, true], 'Bob typing just before their next polls: shown on the page of one room and on the stream')
  await sleep(1600) // a room passes on one typing signal per person per 1.5 s
  await typing()
  await sleep(4500)
  t.same(await both(), [false, false], 'Bob typing 4.5 s before their next polls: shown on neither')
})
