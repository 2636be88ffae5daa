import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { WebSocket, type ClientOptions } from 'ws'
import { CloseCode as serverCloseCode } from '../app/transport/protocol.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { ChatClient, CloseCode, signIn, type ChatOptions, type ChatRoom, type EntryStatus, type FetchLike, type Item, type SocketConstructor, type SocketLike, type StateInfo, type StorageLike, type Transport } from '../client/index.js'
import { buildTestApp, eventually } from './helpers.js'

// The client library (client/) in Node against a real server: every way in, exactly-once sends
// across a cut connection, falling back and coming back up, rooms with their own cursors, edits
// and deletions, starting over on a new log, and the ends (signed out, name taken, left, no room).

const ways: Transport[] = ['websocket', 'sse', 'longpolling']

async function listen(t: Test, env: Record<string, string> = {}, options: Parameters<typeof buildTestApp>[2] = {}) {
  const app = await buildTestApp(t, env, options)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, base }
}

function client(t: Test, base: string, cookie: string, options: ChatOptions = {}): ChatClient {
  const chat = new ChatClient({ base, cookie, WebSocket, ...options })
  t.teardown(() => chat.close())
  return chat
}

/** Everything a room says, as it comes. */
function record(room: ChatRoom) {
  const log = { items: [] as Item[], states: [] as StateInfo[], resets: [] as { epoch: string; at: number }[], ends: [] as string[], errors: [] as string[] }
  room.on('batch', (items) => log.items.push(...items))
  room.on('state', (info) => log.states.push(info))
  room.on('reset', ({ epoch }) => log.resets.push({ epoch, at: log.items.length }))
  room.on('end', (reason) => log.ends.push(reason))
  room.on('error', (message) => log.errors.push(message))
  return {
    ...log,
    ids: () => log.items.flatMap((i) => (i.type === 'typing' || i.type === 'presence' ? [] : [i.id])),
    texts: () => log.items.flatMap((i) => (i.type === 'message' && i.text !== undefined ? [i.text] : [])),
    live: (ms = 10_000) => eventually(() => room.connection.state === 'live', `${room.name} live`, ms),
  }
}

/** What a promise was rejected with (undefined when it was not). */
const failure = (promise: Promise<unknown>) => promise.then(() => undefined, (error: unknown) => error)

/** The messages of the room's log with this text. */
const inLog = (app: FastifyInstance, text: string) => app.chatroom.archive().filter((s) => s.event.type === 'message' && s.event.text === text)

/** A Map as Storage (localStorage's three methods). */
class MapStorage implements StorageLike {
  readonly map = new Map<string, string>()
  getItem(key: string) {
    return this.map.get(key) ?? null
  }
  setItem(key: string, value: string) {
    this.map.set(key, value)
  }
  removeItem(key: string) {
    this.map.delete(key)
  }
}

t.test('the client speaks the server\'s close codes: one table, the library\'s, with the numbers the server sends', async (t) => {
  t.equal(serverCloseCode, CloseCode, 'the server uses the library\'s table itself')
  t.same(
    { left: CloseCode.left, startOver: CloseCode.startOver, nameTaken: CloseCode.nameTaken, goingAway: CloseCode.goingAway, tryAgainLater: CloseCode.tryAgainLater },
    { left: 4001, startOver: 4409, nameTaken: 4403, goingAway: 1001, tryAgainLater: 1013 },
    'the codes the protocol documents',
  )
  t.ok(Object.isFrozen(CloseCode), 'and nobody can change them at run time')
})

t.test('the compiled client is served to the pages as ES modules', async (t) => {
  const { app } = await listen(t)
  const index = await app.inject({ url: '/public/js/client/index.js' })
  t.equal(index.statusCode, 200)
  t.match(index.headers['content-type'], /^text\/javascript/)
  t.match(index.body, /export \{ ChatClient, signIn \} from '\.\/client\.js'/, 'type-only exports gone, imports kept as ./x.js')
  t.notMatch(index.body, /export type/)
  const again = await app.inject({ url: '/public/js/client/index.js' })
  t.equal(again.body, index.body, 'the same, from the cache')
  const room = await app.inject({ url: '/public/js/client/room.js' })
  t.notMatch(room.body, /: Promise<|private readonly/, 'no TypeScript left')
  t.equal((await app.inject({ url: '/public/js/client/nothing.js' })).statusCode, 404)
  t.equal((await app.inject({ url: '/public/js/client/Index.ts' })).statusCode, 404)
  // The page's own modules (page/*.ts), the same way: compiled, importing the client's.
  const mentions = await app.inject({ url: '/public/js/page/mentions.js' })
  t.equal(mentions.statusCode, 200)
  t.match(mentions.headers['content-type'], /^text\/javascript/)
  t.match(mentions.body, /from '\.\.\/client\/render\.js'/, "the page's mentions are the client's rules")
  t.notMatch(mentions.body, /private readonly|: string\b/, 'no TypeScript left')
  t.equal((await app.inject({ url: '/public/js/page/nothing.js' })).statusCode, 404)
  t.equal((await app.inject({ url: '/public/js/page/..%2Fclient%2Findex.js' })).statusCode, 404, 'one folder: nothing above it')
})

t.test('signIn: a guest\'s session cookie, or why not', async (t) => {
  const { base } = await listen(t)
  t.match(await signIn(base + '/', 'ann'), /^chat_session=[^;]+$/)
  await t.rejects(signIn(base, 'no\u0007bell'), /Sign-in as no\u0007bell refused \(HTTP 400\)/)
  const nothing: FetchLike = async () => new Response('{}', { status: 303 })
  await t.rejects(signIn(base, 'ann', { fetch: nothing }), /no session was given/)
  t.throws(() => new ChatClient({ WebSocket }), /say where the server is/, 'Node has no page to take the server from')
  const saved = (globalThis as { WebSocket?: unknown }).WebSocket
  delete (globalThis as { WebSocket?: unknown }).WebSocket
  try {
    t.throws(() => new ChatClient({ base, transports: ['websocket'] }), /pass \{ WebSocket \}/, 'no WebSocket here, and no other way')
    const chat = new ChatClient({ base })
    const room = chat.join('lobby')
    t.equal(room.connection.transport, 'sse', 'without a WebSocket class, the event stream first')
    t.equal(chat.join('lobby'), room, 'joined once')
    t.same(chat.rooms, [room])
    chat.leave('lobby')
    t.same(chat.rooms, [])
  } finally {
    if (saved) (globalThis as { WebSocket?: unknown }).WebSocket = saved
  }
})

for (const way of ways) {
  t.test(`${way}: the window, live, a send confirmed once, typing, edits and deletions both ways, history and who is here`, async (t) => {
    const { app, base } = await listen(t)
    await app.chatroom.post('zed', 'before ann came')
    const ann = client(t, base, await signIn(base, 'ann'), { transports: [way] }).join('lobby')
    const annLog = record(ann)
    const bob = client(t, base, await signIn(base, 'bob'), { transports: [way] }).join('lobby')
    const bobLog = record(bob)
    await annLog.live()
    await bobLog.live()
    t.match(annLog.states[0], { state: 'connecting', transport: way, fallback: false })
    t.equal(ann.epoch, app.chatroom.epoch, 'the epoch the server said')
    await eventually(() => annLog.texts().includes('before ann came'), 'the window')
    const messages: string[] = []
    bob.on('message', (m) => messages.push(m.text ?? ''))

    const sent = await ann.send('hello from ann')
    t.match(sent, { id: Number, text: 'hello from ann', duplicate: false })
    await eventually(() => messages.includes('hello from ann'), 'bob sees it')
    const event = bobLog.items.find((i) => i.type === 'message' && i.text === 'hello from ann')
    t.match(event, { id: sent.id, user: 'ann', clientId: sent.clientId }, 'with its client id')
    t.equal(inLog(app, 'hello from ann').length, 1)
    await eventually(() => ann.outbox.entries.length === 0 && ann.lastId >= sent.id, 'ann\'s outbox empty, her cursor past it')

    const typing: string[] = []
    bob.on('typing', (s) => typing.push(s.user))
    // Typing is a signal, best effort: one sent while bob's poll is between two requests is not
    // kept for him (his page types again every 2 s), so ann says it again, as a page would.
    for (let i = 0; i < 4 && !typing.includes('ann'); i++) {
      ann.typing()
      await eventually(() => typing.includes('ann'), 'bob sees ann typing', 2000).catch(() => {})
    }
    t.ok(typing.includes('ann'), 'bob sees ann typing')

    const edits: number[] = []
    const deletions: number[] = []
    bob.on('edit', (e) => edits.push(e.ref))
    bob.on('delete', (e) => deletions.push(e.ref))
    t.match(await failure(bob.edit(sent.id, 'not mine')), { name: 'ChatError', kind: 'refused', status: 403 }, 'only one\'s own')
    const edit = await ann.edit(sent.id, 'hello, edited')
    t.match(edit, { type: 'edit', ref: sent.id, text: 'hello, edited' })
    await eventually(() => edits.includes(sent.id), 'bob sees the edit')
    const deletion = await ann.delete(sent.id)
    t.match(deletion, { type: 'delete', ref: sent.id })
    await eventually(() => deletions.includes(sent.id), 'bob sees the deletion')
    t.match(await failure(ann.delete(999_999)), { kind: 'refused', status: 404 })

    const history = await bob.history({ limit: 200 })
    t.equal(history.epoch, app.chatroom.epoch)
    t.match(history.events.find((e) => e.id === sent.id), { type: 'message', deleted: true }, 'history as it stands')
    t.notOk(history.events.some((e) => e.type === 'message' && e.text === 'hello, edited'), 'no deleted text')
    const older = await bob.history({ before: sent.id, limit: 1 })
    t.equal(older.events.length, 1)
    t.ok(older.events[0]!.id < sent.id)
    const users = await bob.users()
    t.same(users.users.map((u) => u.name).sort(), ['ann', 'bob'])
    await ann.markRead(sent.id)
    t.match(await failure(ann.markRead(-1)), { kind: 'refused', status: 400 })
    t.same(annLog.errors, [])
    t.same(bobLog.ids(), [...new Set(bobLog.ids())].sort((a, b) => a - b), 'each event once, in order')
  })
}

/** A WebSocket (the ws package's) that records the messages it sends, and is cut right after sending the first `cuts` of them. */
class CutSocket implements SocketLike {
  static cuts = 0
  static opened = 0
  static said: string[] = []
  private readonly ws: WebSocket
  constructor(url: string, options?: ClientOptions) {
    this.ws = new WebSocket(url, options)
    CutSocket.opened++
  }
  get readyState() {
    return this.ws.readyState
  }
  send(data: string) {
    const { clientId } = JSON.parse(data) as { clientId?: string }
    if (clientId === undefined) return this.ws.send(data)
    CutSocket.said.push(clientId)
    // Gone once the frame is out: neither the event nor the ack comes back on this socket.
    if (CutSocket.cuts-- > 0) this.ws.send(data, () => this.ws.terminate())
    else this.ws.send(data)
  }
  close(code?: number, reason?: string) {
    this.ws.close(code, reason)
  }
  addEventListener(type: 'open' | 'error' | 'message' | 'close', listener: (event: never) => void) {
    this.ws.addEventListener(type, listener as () => void)
  }
}

t.test('exactly once across a cut socket: cut before the ack, sent again on the next socket with the same client id; the log holds one', async (t) => {
  const { app, base } = await listen(t)
  Object.assign(CutSocket, { cuts: 1, opened: 0, said: [] })
  const ann = client(t, base, await signIn(base, 'ann'), { WebSocket: CutSocket, transports: ['websocket'] }).join('lobby')
  const log = record(ann)
  await log.live()
  const sent = await ann.send('said once, sent twice')
  t.equal(CutSocket.opened, 2, 'a second socket, by itself')
  t.ok(log.states.some((s) => s.state === 'reconnecting'), 'it said it was reconnecting')
  await eventually(() => CutSocket.said.length === 2, 'sent again')
  t.same(CutSocket.said, [sent.clientId, sent.clientId], 'twice, with one client id')
  t.equal(inLog(app, 'said once, sent twice').length, 1, 'the log holds it once')
  t.equal(sent.id, inLog(app, 'said once, sent twice')[0]!.event.id, 'the id of that one event')
  t.equal(log.texts().filter((x) => x === 'said once, sent twice').length, 1, 'and delivered once')
})

for (const way of ['sse', 'longpolling'] as const) {
  t.test(`exactly once over ${way}: the connection cut while posting, the answer lost; the resend is answered 200 with the first event`, async (t) => {
    const { app, base } = await listen(t)
    const streams = new Set<AbortController>()
    const posts: { clientId: string; status: number }[] = []
    let cuts = 1
    const cutting: FetchLike = async (input, init = {}) => {
      if (init.method === 'POST' && input.endsWith('/messages')) {
        const { clientId } = JSON.parse(String(init.body)) as { clientId: string }
        const cut = cuts-- > 0
        // The connection goes: the stream with it, and the answer to the post.
        if (cut) for (const stream of streams) stream.abort()
        const res = await fetch(input, init)
        posts.push({ clientId, status: res.status })
        if (!cut) return res
        await res.body?.cancel()
        throw new TypeError('fetch failed: the connection was cut')
      }
      const stream = new AbortController()
      streams.add(stream)
      return fetch(input, { ...init, signal: init.signal ? AbortSignal.any([init.signal, stream.signal]) : stream.signal })
    }
    const ann = client(t, base, await signIn(base, 'ann'), { fetch: cutting, transports: [way] }).join('lobby')
    const log = record(ann)
    await log.live()
    const statuses: EntryStatus['state'][] = []
    ann.outbox.on('update', (_entry, status) => statuses.push(status.state))
    const sent = await ann.send('posted once')
    await eventually(() => posts.length === 2, 'posted again')
    t.same(posts, [{ clientId: sent.clientId, status: 201 }, { clientId: sent.clientId, status: 200 }], 'posted (201), then again with the same client id: the first event (200)')
    t.ok(log.states.some((s) => s.state === 'reconnecting'), 'it reconnected by itself')
    t.same(statuses.slice(0, 2), ['queued', 'sending'])
    t.ok(statuses.includes('held'), 'held while the connection was down')
    t.equal(inLog(app, 'posted once').length, 1, 'the log holds it once')
    t.equal(sent.id, inLog(app, 'posted once')[0]!.event.id)
  })
}

t.test('fallback: WebSocket refused and streams buffered, it lands on long polling from the same cursor, and comes back up', async (t) => {
  const block = { websocket: true, sse: true }
  const { app, base } = await listen(t, { PRESENCE_GRACE: '5' }, { block })
  await app.chatroom.post('zed', 'first')
  const ann = client(t, base, await signIn(base, 'ann'), { upgradeAfterMs: 300 }).join('lobby')
  const log = record(ann)
  const posting = setInterval(() => void app.chatroom.post('zed', `meanwhile ${Date.now()}`), 100)
  t.teardown(() => clearInterval(posting))
  await eventually(() => ann.connection.state === 'live' && ann.connection.transport === 'longpolling', 'live on long polling', 15_000)
  t.match(ann.connection, { fallback: true })
  t.same([...new Set(log.states.map((s) => s.transport))], ['websocket', 'sse', 'longpolling'], 'each way tried in turn')
  const sent = await ann.send('sent by long polling')
  t.equal(inLog(app, 'sent by long polling')[0]?.event.id, sent.id)

  // The event stream works again: up to it (while WebSocket stays refused).
  block.sse = false
  await eventually(() => ann.connection.state === 'live' && ann.connection.transport === 'sse', 'back up on the event stream', 10_000)
  // And WebSocket: up to the top.
  block.websocket = false
  await eventually(() => ann.connection.state === 'live' && ann.connection.transport === 'websocket', 'back up on WebSocket', 10_000)
  t.match(ann.connection, { fallback: false })
  clearInterval(posting)
  const last = await app.chatroom.post('zed', 'after the switches')
  await eventually(() => ann.lastId === last.event.id, 'the last event')
  const ids = log.ids()
  t.same(ids, app.chatroom.archive().map((s) => s.event.id).filter((id) => id >= ids[0]!), 'every event once, in order, none missing, across the switches')
  t.same(app.chatroom.archive().filter((s) => s.event.user === 'ann' && s.event.type !== 'message').map((s) => s.event.type), ['join'], 'one join, no leave')
  await eventually(() => app.chatroom.subscriberCount === 1, 'the weaker ways let go')
})

t.test('fallback: a WebSocket this environment refuses outright (its constructor throws, as a browser policy does) is as one that never opened', async (t) => {
  const { app, base } = await listen(t)
  class Refused {
    constructor() {
      throw new DOMException('blocked by this network', 'SecurityError')
    }
  }
  const ann = client(t, base, await signIn(base, 'ann'), { WebSocket: Refused as unknown as SocketConstructor, transports: ['websocket', 'longpolling'] }).join('lobby')
  await eventually(() => ann.connection.state === 'live', 'live', 10_000)
  t.match(ann.connection, { transport: 'longpolling', fallback: true })
  const sent = await ann.send('over long polling')
  t.equal(inLog(app, 'over long polling')[0]?.event.id, sent.id)
})

t.test('two rooms on one client, each with its own cursor and outbox', async (t) => {
  const { app, base } = await listen(t)
  const cookie = await signIn(base, 'ann')
  const made = await app.inject({ method: 'POST', url: '/rooms', headers: { cookie }, payload: { name: 'dev' } })
  t.equal(made.statusCode, 201)
  const storage = new MapStorage()
  const chat = client(t, base, cookie, { storage })
  const states: string[] = []
  chat.on('state', (info) => states.push(`${info.room}:${info.state}`))
  const lobby = chat.join('lobby')
  const dev = chat.join('dev')
  const lobbyLog = record(lobby)
  const devLog = record(dev)
  await lobbyLog.live()
  await devLog.live()
  t.ok(states.includes('lobby:live') && states.includes('dev:live'), 'the client says each room\'s state')
  t.not(lobby.epoch, dev.epoch, 'an epoch each')
  for (let i = 1; i <= 3; i++) await lobby.send(`lobby ${i}`)
  const inDev = await dev.send('dev 1')
  t.equal((await dev.history()).events.at(-1)?.id, inDev.id, 'dev\'s own ids')
  await eventually(() => lobbyLog.texts().includes('lobby 3') && devLog.texts().includes('dev 1'), 'each room its own')
  t.notOk(lobbyLog.texts().includes('dev 1'), 'nothing of dev in the lobby')
  t.notOk(devLog.texts().some((x) => x.startsWith('lobby')), 'nothing of the lobby in dev')
  t.ok(lobby.lastId > dev.lastId, 'each its own cursor')
  t.equal(dev.outbox.key, 'chat.outbox.v1:dev')
  t.same([...storage.map.keys()], [], 'both outboxes empty')
})

t.test('the outbox is kept in storage while the server cannot be reached, and sent by itself, once, by the next client', async (t) => {
  const storage = new MapStorage()
  // Nobody listens there.
  const down = new ChatClient({ base: 'http://127.0.0.1:9', cookie: 'chat_session=x', WebSocket, transports: ['websocket'], storage, storageKey: (room) => `outbox:ann:${room}` })
  t.teardown(() => down.close())
  const room = down.join('lobby')
  const log = record(room)
  const first = failure(room.send('written while down'))
  room.outbox.add('and a second one')
  const discarded = failure(room.send('discarded'))
  room.outbox.discard(room.outbox.entries.at(-1)!.clientId)
  t.match(await discarded, { kind: 'discarded' }, 'a send discarded before it went is rejected')
  await eventually(() => log.states.some((s) => s.state === 'reconnecting' && s.until !== undefined), 'waiting to reconnect, with a countdown')
  const waiting = log.states.at(-1)!
  t.ok(waiting.retryIn! >= 0 && waiting.until! > Date.now() - 1000, 'the seconds to the next try')
  t.same(room.outbox.entries.map((e) => room.outbox.status(e).state), ['held', 'held'], 'held until live')
  const tries = log.states.length
  room.retryNow()
  await eventually(() => log.states.length > tries, 'tried again at once')
  t.same(JSON.parse(storage.getItem('outbox:ann:lobby')!).map((e: { text: string }) => e.text), ['written while down', 'and a second one'])
  down.close()
  t.match(await first, { kind: 'closed' }, 'the send of a closed client is rejected; its entry stays stored')
  t.equal(log.states.at(-1)!.state, 'closed')
  t.match(await failure(room.send('after close')), { kind: 'closed' })

  const { app, base } = await listen(t)
  const next = client(t, base, await signIn(base, 'ann'), { storage, storageKey: (room) => `outbox:ann:${room}` })
  const again = next.join('lobby')
  t.equal(again.outbox.pending, 2, 'the next client finds them')
  await eventually(() => inLog(app, 'and a second one').length === 1, 'sent by itself')
  await eventually(() => storage.getItem('outbox:ann:lobby') === null, 'and out of storage')
  t.same(app.chatroom.archive().filter((s) => s.event.type === 'message').map((s) => s.event.text), ['written while down', 'and a second one'], 'in order, once each')
})

t.test('the outbox: refused for good (retry, discard), slowed down by the rate limit, and followed across pages', async (t) => {
  const { app, base } = await listen(t, { RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '1' })
  const storage = new MapStorage()
  const cookie = await signIn(base, 'ann')
  const ann = client(t, base, cookie, { storage, transports: ['websocket'] }).join('lobby')
  await record(ann).live()
  const seen: string[] = []
  ann.outbox.on('update', (entry, status) => seen.push(`${entry.text}:${status.state}`))
  const drops: string[] = []
  ann.outbox.on('drop', (id) => drops.push(id))

  t.match(await failure(ann.send('a bell \u0007')), { kind: 'refused', status: 400, message: /control characters/ })
  const [failed] = ann.outbox.entries
  t.match(ann.outbox.status(failed!), { state: 'failed', message: /control characters/ })
  t.equal(ann.outbox.pending, 0, 'a refused one does not count as pending')
  ann.outbox.retry(failed!.clientId)
  await eventually(() => ann.outbox.entries[0]?.failed !== undefined, 'refused again')
  ann.outbox.retry('nobody')
  ann.outbox.discard(failed!.clientId)
  ann.outbox.discard('nobody')
  t.same(drops, [failed!.clientId])

  // 2 per second: the third waits out the limit, says so, and goes by itself, in order.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  await Promise.all(['one', 'two', 'three'].map((text) => ann.send(text)))
  t.ok(seen.includes('three:slow'), 'the third was slowed down')
  t.same(app.chatroom.archive().filter((s) => s.event.type === 'message').map((s) => s.event.text), ['one', 'two', 'three'])

  // Another page (the same storage) wrote one; this one follows; and one it dropped goes here too.
  const other = { clientId: 'written-in-another-tab', text: 'from the other tab', at: Date.now() }
  const mine = { clientId: 'dropped-in-another-tab', text: 'dropped there', at: Date.now() }
  storage.setItem(ann.outbox.key, JSON.stringify([mine]))
  ann.outbox.sync()
  storage.setItem(ann.outbox.key, JSON.stringify([other]))
  ann.outbox.sync()
  await eventually(() => inLog(app, 'from the other tab').length === 1, 'sent by this page')
  t.ok(drops.includes('dropped-in-another-tab'))
  storage.setItem(ann.outbox.key, 'not json')
  ann.outbox.sync()
  t.same(ann.outbox.entries, [], 'a broken storage is an empty outbox')
})

t.test('start over on a new log: the client resets, emits it, and takes the new log from its newest', async (t) => {
  // Sessions kept across the new log (a real restart keeps them in SQLite or PostgreSQL).
  const firstStore = new MemoryStore()
  const first = await buildTestApp(t, {}, { store: firstStore })
  const base = await first.listen({ host: '127.0.0.1', port: 0 })
  const port = Number(new URL(base).port)
  const rooms = await Promise.all(ways.map(async (way) => ({ way, room: client(t, base, await signIn(base, `ann-${way}`), { transports: [way] }).join('lobby') })))
  const logs = rooms.map(({ room }) => record(room))
  await first.chatroom.post('zed', 'from the old log')
  for (const log of logs) await eventually(() => log.texts().includes('from the old log'), 'the old log')
  const oldEpoch = first.chatroom.epoch

  await first.close()
  const second = await buildTestApp(t, {}, { store: new MemoryStore(firstStore.sessions) })
  await second.listen({ host: '127.0.0.1', port })
  await second.chatroom.post('zed', 'from the new log')
  for (const [i, { way, room }] of rooms.entries()) {
    const log = logs[i]!
    await eventually(() => log.texts().includes('from the new log'), `${way}: the new log`, 20_000)
    t.equal(log.resets.length, 1, `${way}: one reset`)
    t.equal(room.epoch, second.chatroom.epoch, `${way}: the new epoch`)
    t.not(room.epoch, oldEpoch)
    const after = log.items.slice(log.resets[0]!.at)
    t.same(after.flatMap((i) => (i.type === 'typing' || i.type === 'presence' ? [] : [i.id])), second.chatroom.archive().map((s) => s.event.id).filter((id) => id <= room.lastId), `${way}: the new log from its start, once`)
  }

  // A stale cursor given at join: the same.
  const late = client(t, base, await signIn(base, 'late'), { transports: ['sse'] }).join('lobby', { cursor: { epoch: oldEpoch, lastId: 2 } })
  const lateLog = record(late)
  await eventually(() => lateLog.texts().includes('from the new log'), 'the late one starts over')
  t.same(lateLog.resets.map((r) => r.epoch), [second.chatroom.epoch], 'reset, with the room\'s epoch')

  // A history asked with the old epoch starts over as well.
  const stale = client(t, base, await signIn(base, 'stale'), { transports: ['longpolling'] }).join('lobby', { cursor: { epoch: oldEpoch, lastId: 0 } })
  const staleLog = record(stale)
  t.match(await failure(stale.history()), { kind: 'conflict', status: 409 })
  t.same(staleLog.resets.map((r) => r.epoch), [second.chatroom.epoch])
})

t.test('the ends: signed out, name taken, left, a room that is not there', async (t) => {
  const { app, base } = await listen(t)
  for (const way of ways) {
    // Signed out elsewhere: the connection ends, and so does the room here.
    const cookie = await signIn(base, `out-${way}`)
    const room = client(t, base, cookie, { transports: [way] }).join('lobby')
    const log = record(room)
    await log.live()
    await app.inject({ method: 'POST', url: '/signout', headers: { cookie } })
    await eventually(() => log.ends.length > 0, `${way}: ended`)
    // Told it was signed out, or that it left (a socket's 4001; a stream may hear either first).
    t.match(log.ends, [way === 'longpolling' ? 'signedOut' : /^(left|signedOut)$/], `${way}: ended`)
    t.match(await failure(room.send('too late')), { kind: 'closed' }, `${way}: nothing more is sent`)
    t.match(await failure(room.edit(1, 'x')), { kind: 'signedOut', status: 401 })

    // The name's first holder goes; someone else takes it; the first comes back with the old session: taken.
    const name = `name-${way}`
    const first = await signIn(base, name)
    const firstClient = client(t, base, first, { transports: [way] })
    await record(firstClient.join('lobby')).live()
    firstClient.close()
    // A poll the client sent just before closing may reach the server after the leave (and hold
    // the name for its lease): the leave is said again until the name is free, as a page would.
    for (let i = 0; i < 50 && app.chatroom.presence.isOnline(name); i++) {
      await app.inject({ method: 'POST', url: `/${way}/room/leave`, headers: { cookie: first } })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    t.notOk(app.chatroom.presence.isOnline(name), `${name} gone`)
    const holder = record(client(t, base, await signIn(base, name), { transports: [way] }).join('lobby'))
    await holder.live()
    const taken = record(client(t, base, first, { transports: [way] }).join('lobby'))
    await eventually(() => taken.ends.length > 0, `${way}: refused`)
    t.same(taken.ends, ['nameTaken'], `${way}: the name is someone else's`)

    // The page's leave (its tab): that page's stream ends (a long poll has none to end: it just polls again).
    if (way !== 'longpolling') {
      const tab = `tab-of-${way}`.padEnd(12, 'x')
      const leaver = await signIn(base, `leaver-${way}`)
      const left = record(client(t, base, leaver, { transports: [way] }).join('lobby', { tab }))
      await left.live()
      await app.inject({ method: 'POST', url: '/room/leave', headers: { cookie: leaver }, payload: { tab } })
      await eventually(() => left.ends.length > 0, `${way}: left`)
      t.same(left.ends, ['left'], `${way}: left`)
    }

    // A room that does not exist for this person.
    const nowhere = record(client(t, base, await signIn(base, `lost-${way}`), { transports: [way] }).join('nowhere'))
    await eventually(() => nowhere.ends.length > 0, `${way}: no such room`)
    t.same(nowhere.ends, ['missing'], `${way}: missing`)
  }
})

t.test('offline, where the platform says so (a browser): the link is let go at once, the state says so, and it is live again with the network', async (t) => {
  // A browser's window and navigator, as far as the client looks at them.
  const window = new EventTarget()
  let onLine = true
  const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator')
  Object.defineProperty(globalThis, 'navigator', { value: { get onLine() { return onLine } }, configurable: true })
  Object.assign(globalThis, { addEventListener: window.addEventListener.bind(window), removeEventListener: window.removeEventListener.bind(window) })
  t.teardown(() => {
    if (saved) Object.defineProperty(globalThis, 'navigator', saved)
    else delete (globalThis as { navigator?: unknown }).navigator
    delete (globalThis as { addEventListener?: unknown }).addEventListener
    delete (globalThis as { removeEventListener?: unknown }).removeEventListener
  })
  const { app, base } = await listen(t)
  const ann = client(t, base, await signIn(base, 'ann'), { transports: ['websocket'] }).join('lobby')
  const log = record(ann)
  await log.live()
  let states = 0
  const stop = ann.on('state', () => states++)
  onLine = false
  window.dispatchEvent(new Event('offline'))
  await eventually(() => ann.connection.state === 'offline', 'offline')
  const sending = ann.send('written offline')
  t.equal(ann.outbox.status(ann.outbox.entries[0]!).state, 'held', 'held until the network is back')
  // Another "offline" while offline: still offline.
  window.dispatchEvent(new Event('offline'))
  await new Promise((resolve) => setTimeout(resolve, 1500))
  t.equal(ann.connection.state, 'offline', 'it waits for the network, however long')
  onLine = true
  window.dispatchEvent(new Event('online'))
  await log.live()
  await sending
  t.equal(inLog(app, 'written offline').length, 1, 'sent once the network was back')
  stop()
  const before = states
  ann.close()
  t.equal(log.states.at(-1)?.state, 'closed')
  t.equal(states, before, 'a listener stopped hears no more')
})

t.test('answers to a post, as the outbox takes them: unavailable (again shortly), too many (after Retry-After), signed out (the end)', async (t) => {
  const { app, base } = await listen(t)
  const answers: Response[] = [
    new Response(JSON.stringify({ error: 'Service Unavailable', message: 'The log cannot be written right now.' }), { status: 503 }),
    new Response(JSON.stringify({ error: 'Too Many Requests', message: 'Slow down.' }), { status: 429, headers: { 'retry-after': '1' } }),
    new Response('not json', { status: 408 }),
  ]
  let unreachable = false
  const scripted: FetchLike = async (input, init = {}) => {
    if (unreachable && input.includes('/history')) throw new TypeError('fetch failed')
    if (init.method === 'POST' && input.endsWith('/messages') && answers.length > 0) return answers.shift()!
    return fetch(input, init)
  }
  const ann = client(t, base, await signIn(base, 'ann'), { fetch: scripted, transports: ['longpolling'] }).join('lobby')
  const log = record(ann)
  const states: string[] = []
  ann.outbox.on('update', (_entry, status) => states.push(status.state + (status.message ? `: ${status.message}` : '')))
  const sent = await ann.send('through it all')
  t.same(answers, [], 'every answer was given')
  t.ok(states.includes('slow: Slow down.'), 'slowed down, with the server\'s words')
  t.equal(inLog(app, 'through it all')[0]?.event.id, sent.id, 'then sent, once')
  unreachable = true
  t.match(await failure(ann.history()), { kind: 'unreachable' }, 'history while the server cannot be reached')

  answers.push(new Response(JSON.stringify({ error: 'Unauthorized', message: 'Sign in.' }), { status: 401 }))
  t.match(await failure(ann.send('signed out meanwhile')), { kind: 'closed' })
  t.same(log.ends, ['signedOut'], 'a 401 to a send ends the room')
})

/** A WebSocket whose server is a script: it opens, says what it is told to, and closes as told. */
class ScriptedSocket implements SocketLike {
  static scripts: ((socket: ScriptedSocket) => void)[] = []
  readyState = 0
  readonly sent: string[] = []
  private readonly listeners = new Map<string, ((event: never) => void)[]>()
  constructor(readonly url: string) {
    const script = ScriptedSocket.scripts.shift()
    setTimeout(() => script?.(this), 0)
  }
  addEventListener(type: 'open' | 'error' | 'message' | 'close', listener: (event: never) => void) {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), listener])
  }
  private fire(type: string, event: object) {
    for (const listener of this.listeners.get(type) ?? []) listener(event as never)
  }
  send(data: string) {
    this.sent.push(data)
  }
  close(code = 1000, reason = '') {
    if (this.readyState === 3) return
    this.readyState = 3
    this.fire('close', { code, reason })
  }
  open() {
    this.readyState = 1
    this.fire('open', {})
  }
  frame(data: unknown) {
    this.fire('message', { data: typeof data === 'string' ? data : JSON.stringify(data) })
  }
}

t.test('a socket\'s frames: errors about the connection, frames that are not JSON, start over (4409), a name taken (4403)', async (t) => {
  const healthy: FetchLike = async (input) => new Response(input.endsWith('/healthz') ? 'ok' : '{}', { status: 200 })
  const urls: string[] = []
  ScriptedSocket.scripts = [
    (socket) => {
      urls.push(socket.url)
      socket.open()
      socket.frame({ type: 'hello', epoch: 'first-epoch', lastId: 2 })
      socket.frame([{ id: 1, type: 'join', user: 'bob', timestamp: 1 }, { id: 2, type: 'message', user: 'bob', timestamp: 2, text: 'hi' }, { nonsense: true }, { type: 'typing', user: 'bob' }])
      socket.frame('not json')
      socket.frame({ type: 'something new' })
      socket.frame({ error: 'Bad Request', message: 'A frame must be JSON.' })
      socket.close(CloseCode.startOver, 'another epoch: start over')
    },
    (socket) => {
      urls.push(socket.url)
      socket.open()
      socket.frame({ type: 'hello', epoch: 'second-epoch', lastId: 1 })
      socket.frame([{ id: 1, type: 'message', user: 'bob', timestamp: 3, text: 'anew' }])
      socket.close(CloseCode.nameTaken, 'someone else now goes by your name')
    },
  ]
  const chat = new ChatClient({ base: 'http://chat.example', fetch: healthy, WebSocket: ScriptedSocket, transports: ['websocket'] })
  t.teardown(() => chat.close())
  const room = chat.join('dev', { tab: 'the-page-tab' })
  const log = record(room)
  await eventually(() => log.ends.length > 0, 'the end')
  t.same(urls, ['ws://chat.example/websocket/rooms/dev/socket?tab=the-page-tab', 'ws://chat.example/websocket/rooms/dev/socket?tab=the-page-tab'], 'the room\'s socket, with the page\'s id; after the start over, no cursor')
  t.same(log.errors, ['A frame must be JSON.'], 'an error about the connection is said')
  t.same(log.resets.map((r) => r.at), [3], 'started over after what the first socket gave')
  t.same(log.items.map((i) => (i.type === 'typing' || i.type === 'presence' ? i.type : i.id)), [1, 2, 'typing', 1], 'what is not an event is skipped; the new log from 1')
  t.equal(room.epoch, 'second-epoch')
  t.same(log.ends, ['nameTaken'])
  t.equal(log.states.at(-1)?.state, 'closed')
})

/** A Response streaming `chunks` as an event stream. */
function eventStream(...chunks: string[]): Response {
  const encoder = new TextEncoder()
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk))
      controller.close()
    },
  })
  return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
}

t.test('an event stream\'s lines: comments, fields, split chunks, CRLF, data that is not JSON, a refusal with its words, a leave', async (t) => {
  const streams = [
    eventStream(
      ': a comment\n',
      'event: hello\ndata: {"type":"hello","epoch":"e1","lastId":1}\n\n',
      'id: 1\ndata: {"id":1,"type":"message","user":"bob","timestamp":1,"te',
      'xt":"split"}\r\n\r\n',
      'data: not json\n\nevent: typing\ndata: {"type":"typing","user":"bob"}\n\nretry\n\n',
      'event: refused\ndata: {"status":503,"error":"Service Unavailable","message":"The chat is unavailable right now; try again shortly."}\n\n',
    ),
    eventStream('event: hello\ndata: {"type":"hello","epoch":"e1","lastId":1}\n\n', 'event: left\ndata: {"reason":"you left the room"}\n\n'),
  ]
  const urls: string[] = []
  const scripted: FetchLike = async (input) => {
    if (input.includes('/events')) {
      urls.push(input)
      return streams.shift() ?? new Response('{}', { status: 500 })
    }
    return new Response('{}', { status: 200 })
  }
  const chat = new ChatClient({ base: 'http://chat.example', fetch: scripted, transports: ['sse'] })
  t.teardown(() => chat.close())
  const room = chat.join('lobby')
  const log = record(room)
  await eventually(() => log.ends.length > 0, 'the end', 10_000)
  t.same(log.items, [{ id: 1, type: 'message', user: 'bob', timestamp: 1, text: 'split' }, { type: 'typing', user: 'bob' }], 'the event across two chunks, the signal; no JSON, no item')
  t.same(log.errors, ['The chat is unavailable right now; try again shortly.'])
  t.same(urls, ['http://chat.example/sse/room/events', 'http://chat.example/sse/room/events?lastReceived=1&epoch=e1'], 'resumed from the cursor')
  t.same(log.ends, ['left'])
})

t.test('replies, reactions and threads through the library, on every way (issue 32)', async (t) => {
  const { base } = await listen(t)
  for (const way of ways) {
    const ann = client(t, base, await signIn(base, `ann-${way}`), { transports: [way] })
    const room = ann.join('lobby')
    const log = record(room)
    const reactions: string[] = []
    room.on('reaction', (e) => reactions.push(`${e.user} ${e.action} ${e.emoji}`))
    await log.live()
    const root = await room.send(`root by ${way}`)
    const reply = await room.send(`reply by ${way}`, { replyTo: root.id, alsoToRoom: true })
    const again = await room.send(`reply to the reply by ${way}`, { replyTo: reply.id })
    const reacted = await room.react(root.id, '👍')
    t.match(reacted, { type: 'reaction', ref: root.id, emoji: '👍', action: 'add' }, `${way}: the reaction event`)
    t.match(await room.react(root.id, '👍'), { id: root.id, reactions: [{ emoji: '👍', users: [`ann-${way}`] }] }, `${way}: twice is once (the message as it stands)`)
    await eventually(() => reactions.includes(`ann-${way} add 👍`) && log.ids().includes(again.id), `${way}: the reply and the reaction arrive live`)
    const delivered = log.items.find((i) => i.type === 'message' && i.id === again.id)
    t.match(delivered, { replyTo: reply.id, thread: root.id }, `${way}: a reply to a reply hangs in the first message's thread`)
    const thread = await room.thread(again.id)
    t.equal(thread.root?.id, root.id)
    t.same(thread.replies.map((m) => m.id), [reply.id, again.id])
    t.match(await room.message(root.id), { replies: 2, reactions: [{ emoji: '👍' }] })
    await t.rejects(room.react(root.id, 'nope'), { message: /one emoji/ }, `${way}: a bad emoji is refused with why`)
    room.close()
  }
})

t.test('a file through the library: sent once (one client id for every try), refused with why past the limit (issue 32)', async (t) => {
  const { base } = await listen(t, { UPLOAD_MAX_BYTES: '4096' })
  const ann = client(t, base, await signIn(base, 'ann-files'), { transports: ['longpolling'] })
  const room = ann.join('lobby')
  const log = record(room)
  await log.live()
  const sent = await room.upload(new Blob(['hello, file']), 'notes.txt', { text: 'the notes', clientId: 'file-once-0001' })
  t.match(sent, { type: 'message', text: 'the notes', file: { name: 'notes.txt', size: 11, type: 'text/plain' } })
  const again = await room.upload(new Blob(['hello, file']), 'notes.txt', { clientId: 'file-once-0001' })
  t.equal(again.id, sent.id, 'the same client id again: the first message, not a second')
  await eventually(() => log.ids().includes(sent.id), 'the file message arrives live')
  t.equal(log.items.filter((i) => i.type === 'message' && i.file !== undefined).length, 1, 'once')
  await t.rejects(room.upload(new Blob([new Uint8Array(10_000)]), 'big.bin'), { message: /at most/ }, 'past UPLOAD_MAX_BYTES: refused with why')
  room.close()
})
