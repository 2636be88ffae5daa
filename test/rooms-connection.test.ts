import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { WebSocket } from 'ws'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, signIn as guest } from './helpers.js'

// One connection, many rooms: a socket that subscribes per room with that room's cursor, one
// long poll and one event stream for a set of rooms; every frame says its room, and a room the
// person may not read is refused as not found while the others go on.

const cookieOf = (res: { cookies: { name: string; value: string }[] }) => `chat_session=${res.cookies.find((c) => c.name === 'chat_session')!.value}`
const post = (app: FastifyInstance, cookie: string, url: string, payload: Record<string, string> = {}) => app.inject({ method: 'POST', url, payload, headers: { cookie } })

type Frame = { type?: string; room?: string; events?: Event[]; [key: string]: unknown }

/** A socket of several rooms that records every frame. */
class RoomsClient {
  readonly frames: Frame[] = []
  private waiters: (() => void)[] = []
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as Frame)
      for (const w of this.waiters.splice(0)) w()
    })
  }
  static open(base: string, cookie: string): Promise<RoomsClient> {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/websocket/socket`, { headers: { cookie } })
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new RoomsClient(ws)))
      ws.once('error', reject)
    })
  }
  send(frame: object) {
    this.ws.send(JSON.stringify(frame))
  }
  events(room: string): Event[] {
    return this.frames.filter((f) => f.room === room && Array.isArray(f.events)).flatMap((f) => f.events!).filter((e) => e.id !== undefined)
  }
  async until(check: () => boolean, what: string, ms = 5000) {
    const deadline = Date.now() + ms
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(this.frames)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 50)
        this.waiters.push(() => (clearTimeout(timer), resolve()))
      })
    }
  }
  find(check: (f: Frame) => boolean) {
    return this.frames.find(check)
  }
}

async function setUp(t: Parameters<typeof buildTestApp>[0], env: Record<string, string> = {}) {
  const app = await buildTestApp(t, env)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = cookieOf(await app.inject({ method: 'POST', url: '/accounts', payload: { name: 'ann', password: 'a long enough password' } }))
  for (const name of ['dev', 'ops']) await post(app, ann, '/rooms', { name })
  await post(app, ann, '/rooms', { name: 'secret', visibility: 'private' })
  return { app, base, ann }
}

t.test('one socket, three rooms: subscribed with each room\'s cursor, every frame tagged, unsubscribe stops a room, a private room refused as not found', async (t) => {
  const { app, base, ann } = await setUp(t)
  const bob = await guest(app, 'bob')
  const client = await RoomsClient.open(base, bob)
  await client.until(() => client.frames.some((f) => f.type === 'hello'), 'hello')
  for (const room of ['lobby', 'dev', 'ops', 'secret']) client.send({ type: 'subscribe', room })
  await client.until(() => ['lobby', 'dev', 'ops'].every((r) => client.find((f) => f.type === 'subscribed' && f.room === r)), 'three subscribed')
  await client.until(() => client.find((f) => f.type === 'refused' && f.room === 'secret') !== undefined, 'secret refused')
  t.match(client.find((f) => f.type === 'refused'), { room: 'secret', status: 404, message: 'No such room.' }, 'a private room: 404, as one that does not exist')
  const dev = client.find((f) => f.type === 'subscribed' && f.room === 'dev')!
  t.match(dev, { epoch: String, lastId: Number }, 'each room says its epoch and last id')
  t.not(dev.epoch, app.chatroom.epoch, 'its own epoch')

  await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'in dev' })
  await post(app, ann, '/longpolling/rooms/ops/messages', { message: 'in ops' })
  await client.until(() => client.events('dev').some((e) => e.text === 'in dev') && client.events('ops').some((e) => e.text === 'in ops'), 'both messages')
  t.notOk(client.events('lobby').some((e) => e.text === 'in dev' || e.text === 'in ops'), 'nothing of them in the lobby\'s frames')
  t.notOk(client.events('ops').some((e) => e.text === 'in dev'), 'nothing of dev in ops\'s')

  client.send({ type: 'say', room: 'dev', text: 'bob in dev', ref: 'r1' })
  await client.until(() => client.find((f) => f.type === 'ack' && f.ref === 'r1') !== undefined, 'the ack')
  t.match(client.find((f) => f.type === 'ack'), { room: 'dev', ref: 'r1', id: Number }, 'acknowledged with its room')

  client.send({ type: 'unsubscribe', room: 'ops' })
  await client.until(() => client.find((f) => f.type === 'unsubscribed' && f.room === 'ops') !== undefined, 'unsubscribed')
  await post(app, ann, '/longpolling/rooms/ops/messages', { message: 'ops again' })
  await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'dev again' })
  await client.until(() => client.events('dev').some((e) => e.text === 'dev again'), 'dev again')
  t.notOk(client.events('ops').some((e) => e.text === 'ops again'), 'an unsubscribed room sends nothing more')

  // Resuming ops from the cursor it had: exactly what it missed.
  const last = client.events('ops').at(-1)!.id
  client.send({ type: 'subscribe', room: 'ops', epoch: client.find((f) => f.type === 'subscribed' && f.room === 'ops')!.epoch, lastReceived: last })
  await client.until(() => client.events('ops').some((e) => e.text === 'ops again'), 'ops again after resuming')
  const ids = client.events('ops').map((e) => e.id)
  t.same(ids, [...new Set(ids)].sort((a, b) => a - b), 'each event once, in order, across the resume')
  client.ws.close()
})

t.test('a socket carries at most MAX_ROOMS_PER_CONNECTION rooms', async (t) => {
  const { app, base } = await setUp(t, { MAX_ROOMS_PER_CONNECTION: '2' })
  const client = await RoomsClient.open(base, await guest(app, 'bob'))
  for (const room of ['lobby', 'dev', 'ops']) client.send({ type: 'subscribe', room })
  await client.until(() => client.find((f) => f.type === 'refused') !== undefined, 'a refusal')
  t.match(client.find((f) => f.type === 'refused'), { status: 429, message: 'At most 2 rooms on one connection.' })
  client.send({ room: 'dev' })
  await client.until(() => client.find((f) => f.error === 'Bad Request') !== undefined, 'a bad frame answered')
  client.ws.close()
})

t.test('one long poll for several rooms: each event says its room; it waits until any room has one; refused rooms are listed', async (t) => {
  const { app, ann } = await setUp(t)
  const bob = await guest(app, 'bob')
  await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'earlier in dev' })
  const first = await app.inject({ url: '/longpolling/messages?cursor=dev::&cursor=ops::&cursor=secret::', headers: { cookie: bob } })
  t.equal(first.statusCode, 200)
  const body = first.json() as { events: (Event & { room: string })[]; rooms: Record<string, { epoch: string; lastId: number }>; refused: { room: string; error: string }[] }
  t.ok(body.events.some((e) => e.room === 'dev' && e.text === 'earlier in dev'), 'dev\'s message, tagged')
  t.match(body.refused, [{ room: 'secret', error: 'Not Found' }], 'the private room is refused as not found')
  t.same(Object.keys(body.rooms).sort(), ['dev', 'ops'], 'where each room stands')

  const cursors = Object.entries(body.rooms).map(([room, { epoch, lastId }]) => `cursor=${room}:${epoch}:${lastId}`).join('&')
  const waiting = app.inject({ url: `/longpolling/messages?${cursors}`, headers: { cookie: bob } })
  await new Promise((resolve) => setTimeout(resolve, 100))
  await post(app, ann, '/longpolling/rooms/ops/messages', { message: 'now in ops' })
  const answered = (await waiting).json() as { events: (Event & { room: string })[] }
  t.same(answered.events.filter((e) => e.type === 'message').map((e) => [e.room, e.text]), [['ops', 'now in ops']], 'answers with the room that had something')

  t.equal((await app.inject({ url: '/longpolling/messages', headers: { cookie: bob } })).statusCode, 400, 'no cursor: 400')
  t.equal((await app.inject({ url: '/longpolling/messages?cursor=dev', headers: { cookie: bob } })).statusCode, 400, 'a malformed cursor: 400')
  t.equal((await app.inject({ url: '/longpolling/messages?cursor=dev::&cursor=dev::', headers: { cookie: bob } })).statusCode, 400, 'a room twice: 400')
})

t.test('one event stream for several rooms: ids carry every room\'s cursor, and Last-Event-ID resumes all of them', async (t) => {
  const { app, base, ann } = await setUp(t)
  const bob = await guest(app, 'bob')
  await post(app, ann, '/longpolling/rooms/dev/messages', { message: 'dev one' })
  const read = async (headers: Record<string, string>, until: RegExp) => {
    const controller = new AbortController()
    const res = await fetch(`${base}/sse/events?cursor=dev::&cursor=ops::`, { headers: { cookie: bob, ...headers }, signal: controller.signal })
    let text = ''
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
    const deadline = Date.now() + 5000
    while (!until.test(text) && Date.now() < deadline) {
      const chunk = await reader.read()
      if (chunk.done) break
      text += chunk.value
    }
    controller.abort()
    return text
  }
  const first = await read({}, /dev one/)
  t.match(first, /event: hello\ndata: \{"type":"hello","rooms":\{"dev":\{"epoch":"[^"]+","lastId":\d+,"from":\d+\},"ops"/, 'hello with each room (where it stands, and where the stream starts it)')
  const lastId = [...first.matchAll(/^id: (.+)$/gm)].at(-1)![1]!
  t.match(lastId, /^dev:[A-Za-z0-9_-]+:\d+,ops:[A-Za-z0-9_-]+:\d+$/, 'the id is every room\'s cursor')
  t.match(first, /data: \{"room":"dev","id":\d+,"type":"message"/, 'each event says its room')

  await post(app, ann, '/longpolling/rooms/ops/messages', { message: 'ops while away' })
  const resumed = await read({ 'last-event-id': lastId }, /ops while away/)
  t.match(resumed, /"room":"ops".*ops while away/, 'resumed: what was missed')
  t.notMatch(resumed, /dev one/, 'and nothing again')
})
