import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { EventDraft, StoredEvent } from '../app/chatroom/event.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { PostgresStore } from '../app/chatroom/store/postgres.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import type { Store } from '../app/chatroom/store/store.js'
import { buildTestApp, range, signIn, skipUnless } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'

// Rules every store keeps, on each of them: read markers are one per person and room, ids stay
// consecutive when one room's appends share a tick, and a read marker never runs past the room.

const noPostgres = skipUnless(await havePostgres(), 'PostgreSQL is not running')

type Teardown = { teardown(fn: () => unknown): void }

function tempDir(t: Teardown): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-rules-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Each store, opened, closed when the test ends. */
const stores: [string, (t: Teardown) => Promise<Store>, string | false][] = [
  ['memory', async () => new MemoryStore(), false],
  ['sqlite', async (t) => new SqliteStore(tempDir(t)), false],
  ['postgres', async (t) => new PostgresStore({ url: await freshDatabase(t) }), noPostgres],
]

async function opened(t: Teardown, make: (t: Teardown) => Promise<Store>): Promise<Store> {
  const store = await make(t)
  await store.open()
  t.teardown(() => store.close())
  return store
}

/** The app's settings for each store (STORE=memory, sqlite in a folder of its own, postgres in a database of its own). */
const apps: [string, (t: Teardown) => Promise<Record<string, string>>, string | false][] = [
  ['memory', async () => ({ STORE: 'memory' }), false],
  ['sqlite', async (t) => ({ STORE: 'sqlite', DATA_DIR: tempDir(t) }), false],
  ['postgres', async (t) => ({ STORE: 'postgres', DATABASE_URL: await freshDatabase(t) }), noPostgres],
]

const say = (text: string, clientId?: string): EventDraft => ({ type: 'message', user: 'ann', text, sender: 'ann', clientId })
const ids = (events: StoredEvent[]) => events.map((s) => s.event.id)

const post = (app: FastifyInstance, cookie: string, url: string, payload: Record<string, string> = {}) => app.inject({ method: 'POST', url, payload, headers: { cookie } })

/** The room as GET /rooms lists it to this person: its last id and their unread count. */
async function listed(app: FastifyInstance, cookie: string, room: string): Promise<{ lastId: number; unread: number }> {
  const res = await app.inject({ url: '/rooms', headers: { cookie } })
  const found = (res.json() as { rooms: { name: string; lastId: number; unread: number }[] }).rooms.find((r) => r.name === room)
  if (!found) throw new Error(`${room} is not listed: ${res.statusCode} ${res.body}`)
  return { lastId: found.lastId, unread: found.unread }
}

for (const [kind, make, skip] of stores) {
  t.test(`${kind}: a read marker is one person's: marking a room read moves nobody else's marker`, { skip }, async (t) => {
    const { rooms } = await opened(t, make)
    await rooms.markRead('dev', 'p-ann', 5)
    t.equal(await rooms.readMarker('dev', 'p-ann'), 5)
    t.equal(await rooms.readMarker('dev', 'p-bob'), 0, "ann's marker is not bob's")
    await rooms.markRead('dev', 'p-bob', 2)
    t.equal(await rooms.readMarker('dev', 'p-bob'), 2, "bob's own marker, below ann's, is kept")
    t.equal(await rooms.readMarker('dev', 'p-ann'), 5, "and ann's is untouched")
    await rooms.markRead('dev', 'p-bob', 9)
    t.equal(await rooms.readMarker('dev', 'p-bob'), 9)
    t.equal(await rooms.readMarker('dev', 'p-ann'), 5, "bob reading further does not move ann's marker")
    await rooms.markRead('dev', 'p-ann', 7)
    t.equal(await rooms.readMarker('dev', 'p-ann'), 7, "ann's goes forward from her own, not from bob's")
    t.equal(await rooms.readMarker('ops', 'p-ann'), 0, 'another room: nothing read there')
    // A room and a person whose names run into each other are still two different pairs.
    await rooms.markRead('a:b', 'c', 4)
    t.equal(await rooms.readMarker('a', 'b:c'), 0, 'room "a:b" and person "c" is not room "a" and person "b:c"')
    t.equal(await rooms.readMarker('a:b', 'c'), 4)
  })
}

for (const [kind, env, skip] of apps) {
  t.test(`STORE=${kind}: one person marking a room read leaves another's unread count as it was`, { skip }, async (t) => {
    const app = await buildTestApp(t, { ...(await env(t)), RATE_LIMIT_MESSAGES: '1000' })
    const ann = await signIn(app, 'ann')
    const bob = await signIn(app, 'bob')
    const carol = await signIn(app, 'carol')
    t.equal((await post(app, carol, '/rooms', { name: 'dev' })).statusCode, 201)
    t.equal((await post(app, ann, '/rooms/dev/join')).statusCode, 200)
    t.equal((await post(app, bob, '/rooms/dev/join')).statusCode, 200)
    for (const text of ['one', 'two', 'three']) t.equal((await post(app, carol, '/longpolling/rooms/dev/messages', { message: text })).statusCode, 201)
    const room = await listed(app, bob, 'dev')
    t.equal(room.unread, 3, 'bob has three unread messages')
    t.equal((await listed(app, ann, 'dev')).unread, 3, 'and so has ann')

    t.equal((await post(app, ann, '/rooms/dev/read', { id: String(room.lastId) })).statusCode, 204, 'ann reads the room')
    t.equal((await listed(app, ann, 'dev')).unread, 0, 'ann has nothing unread')
    t.equal((await listed(app, bob, 'dev')).unread, 3, "bob's three are still unread")
    t.equal((await post(app, bob, '/rooms/dev/read', { id: String(room.lastId - 1) })).statusCode, 204, 'bob reads all but the last')
    t.equal((await listed(app, bob, 'dev')).unread, 1)
    t.equal((await listed(app, ann, 'dev')).unread, 0, "bob's marker behind ann's does not bring hers back")
    t.equal((await post(app, carol, '/longpolling/rooms/dev/messages', { message: 'four' })).statusCode, 201)
    t.equal((await listed(app, ann, 'dev')).unread, 1, 'ann: the new one')
    t.equal((await listed(app, bob, 'dev')).unread, 2, 'bob: his last one and the new one')
  })
}

for (const [kind, make, skip] of stores) {
  t.test(`${kind}: appends to one room in the same tick (two batches, and another room's between) get consecutive, distinct ids`, { skip }, async (t) => {
    const store = await opened(t, make)
    const a = await store.log('a')
    const b = await store.log('b')
    t.same(ids(await a.append([say('first', 'c-00000001')])), [1])

    // Nothing awaited in between: the stores that batch a tick see these in one go.
    const batches = await Promise.all([
      a.append([say('a1'), say('a2')]),
      b.append([say('b1')]),
      a.append([say('a3'), say('a4'), say('a5')]),
      store.append([say('lobby1')]),
      // A resend takes no id: the batch after it must not leave a gap for it.
      a.append([say('first', 'c-00000001'), say('a6')]),
      a.append([say('a7')]),
    ])
    const [a1, b1, a2, lobby, a3, a4] = batches
    const consecutive = (list: number[]) => list.every((id, i) => i === 0 || id === list[i - 1]! + 1)
    for (const [name, batch] of [
      ['a1', a1],
      ['a2', a2],
      ['a4', a4],
    ] as const) {
      t.ok(consecutive(ids(batch!)), `room a's batch ${name}: consecutive ids (${ids(batch!).join(',')})`)
    }
    t.same(a3!.map((s) => [s.event.id, s.duplicate ?? false]), [[1, true], [a3![1]!.event.id, false]], 'the resend answers the first event and takes no id')
    const given = [...ids(a1!), ...ids(a2!), a3![1]!.event.id, ...ids(a4!)].sort((x, y) => x - y)
    t.same(given, range(2, 8), "room a: ids 2 to 8, each once, none skipped")
    t.same(ids(b1!), [1], 'room b counts on its own')
    t.same(ids(lobby!), [1], 'and so does the lobby')

    const log = await a.after(0, 100)
    t.same(ids(log), range(1, 8), 'the log holds ids 1 to 8 once each')
    const answered = new Map([...a1!, ...a2!, a3![1]!, ...a4!].map((s) => [s.event.id, s.event.text]))
    t.same(
      log.slice(1).map((s) => s.event.text),
      range(2, 8).map((id) => answered.get(id)),
      'each id holds the message it was answered with',
    )
    t.equal(await a.lastId(), 8)
    t.same(ids(await a.append([say('a8')])), [9], 'the next append goes on from there')
    t.same(ids(await b.after(0, 10)), [1])
    t.same(ids(await store.after(0, 10)), [1])
  })

  t.test(`${kind}: a message and its resend appended in the same tick are one message`, { skip }, async (t) => {
    const store = await opened(t, make)
    const a = await store.log('a')
    const [first, again, other] = await Promise.all([a.append([say('hello', 'c-00000002')]), a.append([say('hello', 'c-00000002')]), store.append([say('elsewhere', 'c-00000002')])])
    t.same(
      [first![0]!.event.id, again![0]!.event.id],
      [1, 1],
      'both answer event 1',
    )
    t.equal(Number(first![0]!.duplicate ?? false) + Number(again![0]!.duplicate ?? false), 1, 'one of them as a resend')
    t.same(ids(other!), [1], 'the same client id in another room is another message')
    t.same((await a.after(0, 10)).map((s) => s.event.text), ['hello'], 'the room holds it once')
    t.same(ids(await a.append([say('next')])), [2], 'and no id was taken by the resend')
  })
}

for (const [kind, env, skip] of apps) {
  t.test(`STORE=${kind}: a read marker past the room's last id is clamped to it: later messages are unread`, { skip }, async (t) => {
    const app = await buildTestApp(t, { ...(await env(t)), RATE_LIMIT_MESSAGES: '1000' })
    const carol = await signIn(app, 'carol')
    const bob = await signIn(app, 'bob')
    t.equal((await post(app, carol, '/rooms', { name: 'dev' })).statusCode, 201)
    t.equal((await post(app, bob, '/rooms/dev/join')).statusCode, 200)
    for (const text of ['one', 'two']) t.equal((await post(app, carol, '/longpolling/rooms/dev/messages', { message: text })).statusCode, 201)
    const before = await listed(app, bob, 'dev')
    t.equal(before.unread, 2)

    for (const bad of ['-1', '1.5', 'abc']) t.equal((await post(app, bob, '/rooms/dev/read', { id: bad })).statusCode, 400, `id=${JSON.stringify(bad)}: 400`)
    t.equal((await post(app, bob, '/rooms/dev/read', { id: '999999' })).statusCode, 204, 'an id far past the room: accepted as "read everything"')
    t.same(await listed(app, bob, 'dev'), { lastId: before.lastId, unread: 0 }, 'everything there is, is read')

    for (const text of ['three', 'four']) t.equal((await post(app, carol, '/longpolling/rooms/dev/messages', { message: text })).statusCode, 201)
    const after = await listed(app, bob, 'dev')
    t.equal(after.lastId, before.lastId + 2)
    t.equal(after.unread, 2, 'the messages after it are unread: the marker stopped at the last id there was')
    t.equal((await post(app, bob, '/rooms/dev/read', { id: String(after.lastId + 1) })).statusCode, 204, 'one past the last id')
    t.equal((await listed(app, bob, 'dev')).unread, 0)
    t.equal((await post(app, carol, '/longpolling/rooms/dev/messages', { message: 'five' })).statusCode, 201)
    t.equal((await listed(app, bob, 'dev')).unread, 1, 'is clamped too')
  })
}
