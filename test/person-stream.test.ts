import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, registerAccount } from './helpers.js'

// The person's stream (`follow=me`): one connection carries every room the person belongs to,
// now and later, and their own events under a cursor of their own (`me`). A DM someone opens to
// them, an invitation, a room joined or left on another device: each reaches the open
// connection at once, and a resume delivers every room's missed events and the person's once.

type PersonEvent = Event & { room: string }
const post = (base: string, cookie: string, url: string, payload: Record<string, string> = {}) =>
  fetch(`${base}${url}`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', origin: base }, body: JSON.stringify(payload) })

async function served(t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}): Promise<{ app: FastifyInstance; base: string }> {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '3', ...env })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, base }
}

/** A client of the long poll with follow=me: it keeps a cursor per room and one for its own events, as a page would. */
class FollowPoller {
  readonly got: PersonEvent[] = []
  readonly cursors = new Map<string, { epoch: string; last: number }>()
  constructor(
    private readonly base: string,
    private readonly cookie: string,
  ) {}

  /** One poll; resolves with what it answered. */
  async poll(): Promise<{ events: PersonEvent[]; rooms: Record<string, { epoch: string; lastId: number }>; refused: { room: string; status: number }[] }> {
    const query = [...this.cursors].map(([room, { epoch, last }]) => `&cursor=${encodeURIComponent(`${room}:${epoch}:${last}`)}`).join('')
    const res = await fetch(`${this.base}/longpolling/messages?follow=me${query}`, { headers: { cookie: this.cookie } })
    if (res.status !== 200) throw new Error(`poll: ${res.status} ${await res.text()}`)
    const body = (await res.json()) as { events: PersonEvent[]; rooms: Record<string, { epoch: string; lastId: number }>; refused: { room: string; status: number }[] }
    for (const event of body.events) {
      this.got.push(event)
      const key = event.type === 'person' ? 'me' : event.room
      const cursor = this.cursors.get(key)
      if (cursor) cursor.last = event.id
    }
    // Rooms new to this client (its first poll, a room joined): their entry is where to go on from.
    for (const [room, { epoch, lastId }] of Object.entries(body.rooms)) if (!this.cursors.has(room)) this.cursors.set(room, { epoch, last: lastId })
    for (const event of body.events) if (event.type === 'person' && event.kind === 'left') this.cursors.delete(event.room)
    return body
  }

  /** Polls until `check` holds (each poll waits for something, or LONGPOLL_TIMEOUT). */
  async until(check: () => boolean, what: string, polls = 10): Promise<void> {
    for (let i = 0; i < polls && !check(); i++) await this.poll()
    if (!check()) throw new Error(`never: ${what}; got ${JSON.stringify(this.got.map((e) => [e.room, e.type, e.kind ?? e.text]))}`)
  }

  texts(room: string): string[] {
    return this.got.filter((e) => e.room === room && e.type === 'message').map((e) => e.text!)
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

type Frame = { type?: string; room?: string; events?: PersonEvent[]; reason?: string; epoch?: string; lastId?: number }

/** A socket of several rooms that records every frame. */
async function followSocket(base: string, cookie: string, query = '') {
  const { WebSocket } = await import('ws')
  const ws = new WebSocket(`${base.replace('http', 'ws')}/websocket/socket?follow=me${query}`, { headers: { cookie, origin: base } })
  const frames: Frame[] = []
  ws.on('message', (data) => frames.push(JSON.parse(data.toString()) as Frame))
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  const until = async (check: () => boolean, what: string, ms = 5000) => {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`never: ${what}; frames ${JSON.stringify(frames)}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  const events = (room: string) => frames.filter((f) => f.room === room && f.events).flatMap((f) => f.events!)
  return { ws, frames, until, events, texts: (room: string) => events(room).filter((e) => e.type === 'message').map((e) => e.text) }
}

t.test('the socket with follow=me: subscribed to every room of the person at once, a DM opened by someone else added within a second, a room left elsewhere taken off', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'red' })
  const socket = await followSocket(base, ann)
  t.teardown(() => socket.ws.close())
  await socket.until(() => ['me', 'lobby', 'red'].every((room) => socket.frames.some((f) => f.type === 'subscribed' && f.room === room)), 'subscribed to me, lobby and red')
  t.pass('subscribed to her own events, the lobby and red with no subscribe frame')
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby line' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red line' })
  await socket.until(() => socket.texts('lobby').length === 1 && socket.texts('red').length === 1, 'both lines')

  const started = Date.now()
  const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
  await socket.until(() => socket.frames.some((f) => f.type === 'subscribed' && f.room === opened.room), 'the DM subscribed', 1000)
  t.ok(Date.now() - started < 1000, `the DM bob opened is on her socket within a second (${Date.now() - started} ms)`)
  t.match(socket.events('me').at(-1), { type: 'person', kind: 'direct', room: opened.room, user: 'bob' }, 'with the news on her own events')
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'psst' })
  await socket.until(() => socket.texts(opened.room).length === 1, 'the DM message')
  t.same(socket.texts(opened.room), ['psst'], "the DM's first message, once")

  t.equal((await post(base, ann, '/rooms/red/leave')).status, 200, 'she leaves red on another device')
  await socket.until(() => socket.frames.some((f) => f.type === 'unsubscribed' && f.room === 'red'), 'red unsubscribed')
  t.match(socket.frames.find((f) => f.type === 'unsubscribed' && f.room === 'red'), { reason: 'left' }, 'red is taken off: left')
  await post(base, bob, '/rooms/red/join')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'after she left' })
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby again' })
  await socket.until(() => socket.texts('lobby').includes('lobby again'), 'the lobby line')
  t.notOk(socket.texts('red').includes('after she left'), 'nothing of red after she left it')
})

/** An event stream with follow=me that records its messages (name, data, id). */
async function followStream(base: string, cookie: string, lastEventId?: string) {
  const controller = new AbortController()
  const headers: Record<string, string> = { cookie }
  if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
  const res = await fetch(`${base}/sse/events?follow=me`, { headers, signal: controller.signal })
  const messages: { name: string | undefined; data: PersonEvent & { reason?: string }; id: string | undefined }[] = []
  const reading = (async () => {
    let buffer = ''
    const chunks = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    for (let read = await chunks.read(); !read.done; read = await chunks.read()) {
      buffer += read.value
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const data = /^data: (.*)$/m.exec(block)?.[1]
        if (data !== undefined) messages.push({ name: /^event: (.*)$/m.exec(block)?.[1], data: JSON.parse(data) as PersonEvent, id: /^id: (.*)$/m.exec(block)?.[1] })
      }
    }
  })().catch(() => {})
  const until = async (check: () => boolean, what: string, ms = 5000) => {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`never: ${what}; got ${JSON.stringify(messages)}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
  const texts = (room: string) => messages.filter((m) => m.name === undefined && m.data.type === 'message' && m.data.room === room).map((m) => m.data.text)
  const close = async () => {
    controller.abort()
    await reading
  }
  return { messages, until, texts, close, lastId: () => messages.filter((m) => m.id !== undefined).at(-1)?.id }
}

t.test('the event stream with follow=me: a DM opened by someone else joins the stream, a room left elsewhere leaves it, and Last-Event-ID resumes every room and her own events once', async (t) => {
  const { base, app } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'red' })
  const stream = await followStream(base, ann)
  await stream.until(() => stream.messages.some((m) => m.name === 'hello'), 'hello')
  t.same(Object.keys((stream.messages[0]!.data as unknown as { rooms: object }).rooms).sort(), ['lobby', 'me', 'red'], 'hello names the lobby, red and her own events')
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red 1' })
  await stream.until(() => stream.texts('red').length === 1, 'red 1')

  const started = Date.now()
  const opened = (await (await post(base, bob, '/direct', { user: 'ann' })).json()) as { room: string }
  await stream.until(() => stream.messages.some((m) => m.name === 'subscribed' && m.data.room === opened.room), 'the DM added', 1000)
  t.ok(Date.now() - started < 1000, `the DM is on her stream within a second (${Date.now() - started} ms)`)
  t.ok(stream.messages.some((m) => m.data.type === 'person' && m.data.kind === 'direct' && m.data.room === opened.room), 'with the news as her own event')
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'dm 1' })
  await stream.until(() => stream.texts(opened.room).length === 1, 'dm 1')
  t.match(stream.lastId(), new RegExp(`(^|,)me:[^:]+:\\d+`), "the stream's id carries her own cursor beside the rooms'")
  t.match(stream.lastId(), new RegExp(`(^|,)${opened.room}:[^:]+:\\d+`), "and the DM's")

  // Cut: while she is away, a message in each room, and she leaves red on another device.
  const resumeFrom = stream.lastId()!
  await stream.close()
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby while away' })
  await post(base, bob, `/longpolling/rooms/${opened.room}/messages`, { text: 'dm while away' })
  await post(base, ann, '/longpolling/rooms/red/messages', { text: 'red while away' })
  t.equal((await post(base, ann, '/rooms/red/leave')).status, 200, 'she leaves red elsewhere while away')
  const again = await followStream(base, ann, resumeFrom)
  t.teardown(() => again.close())
  await again.until(() => again.texts('lobby').includes('lobby while away') && again.texts(opened.room).includes('dm while away'), 'the missed messages')
  await again.until(() => again.messages.some((m) => m.data.type === 'person' && m.data.kind === 'left'), 'the missed left news')
  t.same(again.texts(opened.room), ['dm while away'], 'the DM resumes after what she had: once')
  t.same(again.texts('red'), ['red while away'], 'red resumes with what was said before she left it')
  const news = again.messages.filter((m) => m.data.type === 'person')
  t.same(news.map((m) => m.data.kind), ['left'], 'her own events resume after her cursor: only the leave')
  await post(base, bob, '/rooms/red/join')
  await post(base, bob, '/longpolling/rooms/red/messages', { text: 'red after' })
  await post(base, bob, '/longpolling/room/messages', { text: 'lobby after' })
  await again.until(() => again.texts('lobby').includes('lobby after'), 'lobby after')
  t.notOk(again.texts('red').includes('red after'), 'red is dropped once she left it')
})
