import { request as httpRequest, type IncomingMessage } from 'node:http'
import t from 'tap'
import { createEvent, sseFrameFor, sseFrameOf } from '../app/chatroom/event.js'
import { buildTestApp, eventually, signIn } from './helpers.js'

interface Message {
  event: string
  id?: string
  data: string
}

/** An event-stream reader as a browser's EventSource reads one: messages, comments, the end. */
class SseClient {
  status = 0
  headers: IncomingMessage['headers'] = {}
  readonly messages: Message[] = []
  comments = 0
  ended = false
  raw = ''
  res: IncomingMessage | undefined
  private buffer = ''
  private waiters: (() => void)[] = []

  static open(base: string, cookie: string | undefined, query = '', headers: Record<string, string> = {}): Promise<SseClient> {
    const client = new SseClient()
    return new Promise((resolve, reject) => {
      const req = httpRequest(`${base}/sse/room/events${query}`, { headers: { accept: 'text/event-stream', ...(cookie && { cookie }), ...headers } }, (res) => {
        client.res = res
        client.status = res.statusCode ?? 0
        client.headers = res.headers
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => client.feed(chunk))
        res.on('end', () => {
          client.ended = true
          client.wake()
        })
        res.on('close', () => {
          client.ended = true
          client.wake()
        })
        resolve(client)
      })
      req.on('error', reject)
      req.end()
    })
  }

  private feed(chunk: string) {
    this.raw += chunk
    this.buffer += chunk
    let end: number
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const block = this.buffer.slice(0, end)
      this.buffer = this.buffer.slice(end + 2)
      const message: Message = { event: 'message', data: '' }
      let fields = 0
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) {
          this.comments++
          continue
        }
        const colon = line.indexOf(':')
        const [name, value] = colon < 0 ? [line, ''] : [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, '')]
        if (name === 'event') message.event = value
        else if (name === 'id') message.id = value
        else if (name === 'data') message.data += value
        else continue
        fields++
      }
      if (fields > 0) this.messages.push(message)
    }
    this.wake()
  }

  /** The events of the log (the default message type), parsed. */
  events() {
    return this.messages.filter((m) => m.event === 'message').map((m) => JSON.parse(m.data) as { id: number; type: string; user: string; text?: string })
  }

  named(event: string) {
    return this.messages.filter((m) => m.event === event).map((m) => JSON.parse(m.data) as Record<string, unknown>)
  }

  async until(check: () => boolean, what: string, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms
    while (!check()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${this.raw.slice(-300)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  close() {
    this.res?.destroy()
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w()
  }
}

t.test('the room as an event stream: hello, then each event with its id as the stream id, typing by name, sending by POST', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann', 'sse')
  const page = await app.inject({ method: 'GET', url: '/sse/room', headers: { cookie: ann } })
  t.equal(page.statusCode, 200)
  t.match(page.body, /<script type="module" src="\/public\/js\/page\/sse.js">/)
  t.match(page.body, /Connecting · event stream/)

  const stream = await SseClient.open(base, ann)
  t.equal(stream.status, 200)
  t.match(stream.headers['content-type'], /^text\/event-stream/)
  t.equal(stream.headers['cache-control'], 'no-store')
  t.equal(stream.headers['x-accel-buffering'], 'no')
  await stream.until(() => stream.events().length === 1, 'ann\'s join')
  t.match(stream.raw, /^retry: 2000\n/, 'the browser is told to reconnect after 2 s')
  t.same(stream.named('hello'), [{ type: 'hello', epoch: app.chatroom.epoch, lastId: 1 }])
  t.match(stream.messages[1], { event: 'message', id: '1' })
  t.match(stream.events()[0], { id: 1, type: 'join', user: 'ann' })

  const said = await app.inject({ method: 'POST', url: '/sse/room/messages', headers: { cookie: ann }, payload: { text: 'hello over sse' } })
  t.equal(said.statusCode, 201)
  await stream.until(() => stream.events().some((e) => e.text === 'hello over sse'), 'the message')
  t.equal(stream.messages.at(-1)!.id, String(said.json().id), 'the stream id is the event id')

  const bob = await signIn(app, 'bob')
  t.equal((await app.inject({ method: 'POST', url: '/sse/room/typing', headers: { cookie: bob } })).statusCode, 204)
  await stream.until(() => stream.named('typing').length === 1, 'bob typing')
  t.same(stream.named('typing'), [{ type: 'typing', user: 'bob' }])
  t.notOk(stream.messages.find((m) => m.event === 'typing')!.id, 'a signal carries no id (Last-Event-ID stays the last event)')
  t.equal((await app.inject({ method: 'POST', url: '/sse/room/typing', headers: { cookie: ann } })).statusCode, 204)
  await app.chatroom.post('bob', 'marker')
  await stream.until(() => stream.events().some((e) => e.text === 'marker'), 'the marker')
  t.equal(stream.named('typing').length, 1, 'ann never sees her own typing')
  t.ok(app.chatroom.presence.isOnline('ann'), 'the stream holds her present')
  stream.close()
})

t.test('Last-Event-ID resumes exactly, and wins over the cursor in the URL', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  for (let i = 1; i <= 6; i++) await app.chatroom.post('bob', `m${i}`)
  const last = app.chatroom.lastId
  const resumed = await SseClient.open(base, ann, `?lastReceived=1&epoch=${app.chatroom.epoch}`, { 'last-event-id': String(last - 2) })
  await resumed.until(() => resumed.events().some((e) => e.text === 'm6'), 'm6')
  const ids = resumed.events().map((e) => e.id).filter((id) => id <= last)
  t.same(ids, [last - 1, last], 'just what followed Last-Event-ID, none twice')
  resumed.close()
  for (const bad of ['x', '-1', '1.5', '9'.repeat(16)]) {
    const refused = await SseClient.open(base, ann, '', { 'last-event-id': bad })
    t.equal(refused.status, 400, `Last-Event-ID ${bad}`)
    await refused.until(() => refused.ended, 'the end')
    t.match(JSON.parse(refused.raw), { error: 'Bad Request', message: /Last-Event-ID must be an event id/ })
  }
  const badQuery = await SseClient.open(base, ann, '?lastReceived=abc')
  t.equal(badQuery.status, 400)
})

t.test('what the room refuses is said in the stream, which then ends; strangers get 401', async (t) => {
  const app = await buildTestApp(t, { MAX_SOCKETS_PER_USER: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const stranger = await SseClient.open(base, undefined)
  t.equal(stranger.status, 401)
  const ann = await signIn(app, 'ann')
  const stale = await SseClient.open(base, ann, '?lastReceived=0&epoch=another-log')
  await stale.until(() => stale.ended, 'the end')
  t.match(stale.named('refused'), [{ status: 409, reason: 'epoch', epoch: app.chatroom.epoch, message: /start over/ }])
  t.same(stale.events(), [], 'nothing from another log')
  const first = await SseClient.open(base, ann)
  await first.until(() => first.named('hello').length === 1, 'hello')
  const second = await SseClient.open(base, ann)
  await second.until(() => second.ended, 'the end')
  t.match(second.named('refused'), [{ status: 429, reason: 'tooMany', message: /too many connections/ }])
  t.notOk(first.ended, 'the first stream is untouched')
  first.close()
})

t.test('heartbeats: a comment whenever a stream was quiet for SSE_HEARTBEAT', async (t) => {
  const app = await buildTestApp(t, { SSE_HEARTBEAT: '0.1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  const stream = await SseClient.open(base, ann)
  await stream.until(() => stream.comments >= 3, 'three heartbeats')
  t.match(stream.raw, /\n:\n\n/, 'a bare comment line')
  t.equal(stream.events().length, 1, 'and nothing else')
  stream.close()
})

t.test('leaving ends the stream with `left`; shutdown ends it with `bye`', async (t) => {
  const app = await buildTestApp(t, { PRESENCE_GRACE: '60' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')
  const page = await app.inject({ method: 'GET', url: '/sse/room', headers: { cookie: ann } })
  const tab = /data-tab="([\w-]+)"/.exec(page.body)![1]!
  const stream = await SseClient.open(base, ann, `?tab=${tab}`)
  await stream.until(() => stream.named('hello').length === 1, 'hello')
  await app.inject({ method: 'POST', url: '/room/leave', headers: { cookie: ann }, payload: { tab } })
  await stream.until(() => stream.ended, 'the end')
  t.same(stream.named('left'), [{ reason: 'you left the room' }])
  t.match(app.chatroom.archive().at(-1)?.event, { type: 'leave', user: 'ann' }, 'at once, though the grace is a minute')

  const bob = await signIn(app, 'bob')
  const other = await SseClient.open(base, bob)
  await other.until(() => other.named('hello').length === 1, 'hello')
  await app.close()
  await other.until(() => other.ended, 'the end')
  t.same(other.named('bye'), [{ reason: 'server shutting down' }])
})

t.test('a reader that stops reading is dropped; the room does not wait for it', async (t) => {
  const app = await buildTestApp(t, { SOCKET_BUFFER_LIMIT: '2048', SUBSCRIBER_QUEUE: '16' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const slow = await SseClient.open(base, await signIn(app, 'slow'))
  await slow.until(() => slow.named('hello').length === 1, 'hello')
  slow.res!.pause()
  const fast = await SseClient.open(base, await signIn(app, 'fast'))
  // Past what the kernel's socket buffers hold, so the server's own buffer fills.
  const text = 'x'.repeat(16_000)
  for (let i = 0; i < 2000 && app.chatroom.subscriberCount > 1; i++) {
    await app.chatroom.post('bob', `${i} ${text}`)
    await new Promise((resolve) => setImmediate(resolve))
  }
  await eventually(() => app.chatroom.subscriberCount === 1, 'the slow reader to be dropped')
  t.ok(app.chatroom.stats.lagged >= 1, 'counted as lagged')
  const last = app.chatroom.lastId
  await fast.until(() => fast.events().some((e) => e.id === last), 'the fast reader to get everything')
  slow.close()
  fast.close()
})

t.test('each event\'s stream bytes are made once and shared', async (t) => {
  const stored = createEvent(7, 1, { type: 'message', user: 'ann', text: 'hi' })
  const bytes = sseFrameOf(stored)
  t.equal(bytes.toString(), `id: 7\ndata: ${stored.json}\n\n`)
  t.equal(sseFrameOf(stored), bytes, 'the same Buffer every time')
  t.equal(sseFrameFor([stored], []), bytes, 'what a stream with one event waiting writes')
  const other = createEvent(8, 2, { type: 'leave', user: 'ann' })
  t.equal(sseFrameFor([stored, other], [{ type: 'typing', user: 'bob', json: '{"type":"typing","user":"bob"}' }]), `id: 7\ndata: ${stored.json}\n\nid: 8\ndata: ${other.json}\n\nevent: typing\ndata: {"type":"typing","user":"bob"}\n\n`)
})

t.test('WebSocket frames are made once per event, and once per batch for every reader at the same place', async (t) => {
  // ws's own frame parser (exported by ws, left out of its type definitions).
  const { Receiver } = (await import('ws')) as unknown as { Receiver: new (options: { isServer: boolean }) => NodeJS.WritableStream & NodeJS.EventEmitter }
  const { wsFrame, wsFrameFor } = await import('../app/chatroom/event.js')
  // Each length class of the header, read back by ws's own parser.
  for (const length of [0, 125, 126, 65_535, 65_536]) {
    const payload = Buffer.alloc(length, 'a')
    const frame = wsFrame(payload)
    const got = await new Promise<Buffer>((resolve, reject) => {
      const receiver = new Receiver({ isServer: false })
      receiver.on('message', (data: Buffer) => resolve(data))
      receiver.on('error', reject)
      receiver.write(frame)
    })
    t.equal(got.length, length, `a ${length}-byte payload`)
  }
  const payloadOf = (frame: Buffer) => frame.subarray((frame[1]! & 0x7f) < 126 ? 2 : 4).toString()
  const a = createEvent(1, 1, { type: 'message', user: 'ann', text: 'one' })
  const b = createEvent(2, 2, { type: 'message', user: 'ann', text: 'two' })
  t.equal(wsFrameFor([a], []), wsFrameFor([a], []), 'one event: its own cached frame')
  const batch = wsFrameFor([a, b], [])
  t.equal(wsFrameFor([a, b], []), batch, 'the next reader with the same batch reuses it')
  t.equal(payloadOf(batch), `[${a.json},${b.json}]`)
  t.not(wsFrameFor([b], []), batch)
  const signal = { type: 'typing' as const, user: 'bob', json: '{"type":"typing","user":"bob"}' }
  t.equal(payloadOf(wsFrameFor([a, b], [signal])), `[${a.json},${b.json},${signal.json}]`, 'signals make a reader its own frame')
  t.equal(payloadOf(wsFrameFor([], [])), '[]')
})

t.test('heartbeats keep a quiet stream open past the server\'s idle-connection timeout', async (t) => {
  // The server cuts a connection idle for LONGPOLL_TIMEOUT + REQUEST_TIMEOUT (1.5 s here).
  const app = await buildTestApp(t, { REQUEST_TIMEOUT: '1', HEADERS_TIMEOUT: '1', LONGPOLL_TIMEOUT: '0.5', SSE_HEARTBEAT: '0.3' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const stream = await SseClient.open(base, await signIn(app, 'ann'))
  await stream.until(() => stream.comments >= 8, 'eight heartbeats (2.4 s)')
  t.notOk(stream.ended, 'still open, well past the idle timeout')
  await app.chatroom.post('bob', 'still here')
  await stream.until(() => stream.events().some((e) => e.text === 'still here'), 'an event after it')
  stream.close()
})

t.test('a batch is shared by the same events only, never by another log\'s events with the same ids', async (t) => {
  const { wsFrameFor } = await import('../app/chatroom/event.js')
  const one = [createEvent(1, 1, { type: 'message', user: 'ann', text: 'old log' }), createEvent(2, 2, { type: 'message', user: 'ann', text: 'old log 2' })]
  const other = [createEvent(1, 1, { type: 'message', user: 'bob', text: 'new log' }), createEvent(2, 2, { type: 'message', user: 'bob', text: 'new log 2' })]
  t.match(wsFrameFor(one, []).toString(), /old log/)
  t.match(wsFrameFor(other, []).toString(), /new log/, 'ids 1-2 again, other events: other bytes')
  t.match(sseFrameFor(other, []), /new log/)
})
