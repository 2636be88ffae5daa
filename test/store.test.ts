import { mkdtempSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import t from 'tap'
import type { Event, EventDraft, StoredEvent } from '../app/chatroom/event.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { PostgresStore } from '../app/chatroom/store/postgres.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import {
  fromJson,
  LOBBY,
  numbered,
  type AccountRecord,
  type PasskeyRecord,
  type RoomRecord,
  type RoomVisibility,
  type SessionRecord,
  type Store,
} from '../app/chatroom/store/store.js'
import { loadConfig } from '../conf/config.js'
import { buildTestApp, range, signIn, skipUnless } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'

const messages = (from: number, to: number): EventDraft[] => range(from, to).map((i) => ({ type: 'message', user: 'ann', text: `m${i}` }))
const ids = (events: { event: Event }[]) => events.map((s) => s.event.id)

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const noPostgres = skipUnless(await havePostgres(), 'PostgreSQL is not running')

const kinds: [string, (t: { teardown(fn: () => unknown): void }) => Promise<Store>, string | false][] = [
  ['memory', async () => new MemoryStore(), false],
  ['sqlite', async (t) => new SqliteStore(tempDir(t)), false],
  ['postgres', async (t) => new PostgresStore({ url: await freshDatabase(t) }), noPostgres],
]

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: consecutive ids in one transaction per batch, pages after and before an id, pruning`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    t.match(store.epoch, /^[A-Za-z0-9_-]{8,}$/, 'an epoch made with the log')
    t.equal(await store.lastId(), 0, 'a new log is empty')
    const first = await store.append(messages(1, 3))
    t.same(ids(first), [1, 2, 3])
    t.same(first.map((s) => JSON.parse(s.json)), first.map((s) => s.event), 'the JSON is the event')
    const second = await store.append(messages(4, 10))
    t.same(ids(second), range(4, 10), 'the next batch goes on')
    t.equal(await store.lastId(), 10)
    t.same(ids(await store.after(0, 4)), [1, 2, 3, 4], 'after: oldest first, at most the limit')
    t.same(ids(await store.after(8, 100)), [9, 10])
    t.same(ids(await store.after(10, 100)), [], 'nothing after the newest')
    t.same(ids(await store.before(11, 3)), [8, 9, 10], 'before: the newest below, oldest first')
    t.same(ids(await store.before(3, 10)), [1, 2])
    t.same(ids(await store.before(1, 10)), [])
    t.same((await store.after(3, 1))[0]!.event, second[0]!.event, 'read back as written')

    t.equal(await store.prune(4, 0), 6, 'keeps the newest 4')
    t.same(ids(await store.after(0, 100)), [7, 8, 9, 10])
    t.equal(await store.lastId(), 10, 'pruning never lowers the last id')
    t.same(ids(await store.append(messages(11, 11))), [11], 'ids are never reused after pruning')
    t.equal(await store.prune(0, 60_000), 0, 'nothing is older than a minute')
    t.equal(await store.prune(0, 0), 0, 'no bound, nothing pruned')
    t.equal(await store.ready(), true)
  })
}

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: sessions are kept by hash, touched, deleted and pruned`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { sessions } = store
    const user = JSON.stringify({ id: 'u'.repeat(16), name: 'ann' })
    await sessions.create('h1', { user, createdAt: 1000, seenAt: 1000, address: '10.0.0.1', account: '', userAgent: '' })
    await sessions.create('h2', { user, createdAt: 5000, seenAt: 5000, address: '10.0.0.1', account: '', userAgent: '' })
    await sessions.create('h3', { user, createdAt: 9000, seenAt: 9000, address: '10.0.0.2', account: '', userAgent: '' })
    t.same(await sessions.read('h1'), { user, createdAt: 1000, seenAt: 1000, address: '10.0.0.1', account: '', userAgent: '' })
    t.equal(await sessions.count(), 3)
    t.equal(await sessions.read('nope'), undefined)
    await sessions.touch('h1', 8000)
    t.equal((await sessions.read('h1'))!.seenAt, 8000, 'touched')
    t.equal(await sessions.prune(6000, 0), 1, 'idle since before 6000: h2')
    t.equal(await sessions.read('h2'), undefined)
    t.equal(await sessions.prune(0, 2000), 1, 'made before 2000: h1')
    await sessions.delete('h3')
    t.equal(await sessions.read('h3'), undefined, 'deleted at once')
    t.equal(await sessions.count(), 0)
  })
}

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: an address's sessions are trimmed to the bound, least recently used first, never the one just made`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { sessions } = store
    const user = JSON.stringify({ id: 'u'.repeat(16), name: 'ann' })
    const create = (hash: string, seenAt: number, address = 'A') => sessions.create(hash, { user, createdAt: seenAt, seenAt, address, account: '', userAgent: '' })
    for (const i of range(1, 5)) await create(`a${i}`, i * 1000)
    await create('b1', 1000, 'B')
    await sessions.touch('a1', 9000)
    await create('a6', 6000)
    t.same(await sessions.trim('A', 6, 'a6'), [], 'six of A: within the bound')
    t.same((await sessions.trim('A', 3, 'a6')).sort(), ['a2', 'a3', 'a4'], 'the new one and the two used last are kept')
    t.equal(await sessions.count(), 4)
    t.ok(await sessions.read('a1'), 'a1 was used last of all')
    t.ok(await sessions.read('b1'), 'another address is not touched')
    t.same(await sessions.trim('A', 3, 'a6'), [], 'nothing more to trim')
    await create('a7', 0)
    t.same((await sessions.trim('A', 1, 'a7')).sort(), ['a1', 'a5', 'a6'], 'the one just made stays, even with the oldest last use')
    t.same(await sessions.read('a7'), { user, createdAt: 0, seenAt: 0, address: 'A', account: '', userAgent: '' })
    t.equal(await sessions.count(), 2)
  })
}

const ann: AccountRecord = { id: 'acct-ann', name: 'Ann', skeleton: 'ann', passwordHash: '$argon2id$ann', emailHash: 'e'.repeat(32), createdAt: 1000 }
const bob: AccountRecord = { id: 'acct-bob', name: 'bob', skeleton: 'bob', passwordHash: null, createdAt: 2000 }
const passkey = (id: string, accountId: string, createdAt: number, transports: string[] = ['internal']): PasskeyRecord => ({
  id,
  accountId,
  publicKey: `pk-${id}`,
  counter: 0,
  transports,
  createdAt,
  lastUsedAt: null,
})
const session = (account: string, seenAt: number, userAgent = 'Firefox'): SessionRecord => ({
  user: JSON.stringify({ id: account || 'g'.repeat(16), name: 'ann' }),
  createdAt: 500,
  seenAt,
  address: '10.0.0.1',
  account,
  userAgent,
})

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: an account per skeleton, found by id and by skeleton; a look-alike is refused and changes nothing; a password is set`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { accounts } = store
    t.equal(await accounts.create(ann), true)
    t.strictSame(await accounts.byId(ann.id), ann, 'read back as written')
    t.strictSame(await accounts.bySkeleton('ann'), ann)
    t.equal(await accounts.byId('nobody'), undefined)
    t.equal(await accounts.bySkeleton('nobody'), undefined)

    t.equal(await accounts.create({ id: 'acct-other', name: 'ANN', skeleton: 'ann', passwordHash: '$argon2id$other', createdAt: 3000 }), false, 'the same skeleton: refused, not thrown')
    t.equal(await accounts.byId('acct-other'), undefined, 'nothing written')
    t.strictSame(await accounts.bySkeleton('ann'), ann, 'the first one unchanged')
    t.equal(await accounts.create({ ...bob, id: ann.id }), false, 'an id is never given twice')
    t.equal(await accounts.bySkeleton('bob'), undefined)

    t.equal(await accounts.create(bob), true, 'no password, no email: a passkey- or OAuth-only account')
    t.strictSame(await accounts.byId(bob.id), bob)
    await accounts.setPassword(bob.id, '$argon2id$bob')
    t.equal((await accounts.byId(bob.id))!.passwordHash, '$argon2id$bob', 'a password set')
    t.equal((await accounts.bySkeleton('bob'))!.passwordHash, '$argon2id$bob')
    t.strictSame(await accounts.byId(ann.id), ann, 'another account untouched')
    await accounts.setPassword('nobody', '$argon2id$x')
    t.equal(await accounts.byId('nobody'), undefined, 'no account made by setting a password')
  })

  t.test(`${kind}: passkeys: one per credential id, listed oldest first, used (counter and time), removed only by their owner`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { accounts } = store
    await accounts.create(ann)
    await accounts.create(bob)
    const newer = passkey('cred-2', ann.id, 2000, ['usb', 'nfc'])
    const older = passkey('cred-1', ann.id, 1000, ['internal', 'hybrid'])
    const bobs = passkey('cred-3', bob.id, 1500, [])
    t.equal(await accounts.addPasskey(newer), true)
    t.equal(await accounts.addPasskey(older), true)
    t.equal(await accounts.addPasskey(bobs), true)
    t.equal(await accounts.addPasskey({ ...older, accountId: bob.id, publicKey: 'another' }), false, 'the same credential id: refused, not thrown')
    t.strictSame(await accounts.passkey('cred-1'), older, 'the first one unchanged')
    t.equal(await accounts.passkey('nope'), undefined)
    t.strictSame(await accounts.passkeys(ann.id), [older, newer], 'oldest first')
    t.strictSame(await accounts.passkeys(bob.id), [bobs], 'no transports kept as none')
    t.strictSame(await accounts.passkeys('nobody'), [])

    await accounts.usePasskey('cred-2', 4_000_000_000, 5000)
    t.strictSame(await accounts.passkey('cred-2'), { ...newer, counter: 4_000_000_000, lastUsedAt: 5000 }, 'a 32-bit counter and when')
    t.strictSame(await accounts.passkey('cred-1'), older, 'the other untouched')

    t.equal(await accounts.removePasskey(bob.id, 'cred-1'), false, "not bob's to remove")
    t.ok(await accounts.passkey('cred-1'), 'still there')
    t.equal(await accounts.removePasskey(ann.id, 'cred-1'), true)
    t.equal(await accounts.passkey('cred-1'), undefined, 'removed')
    t.equal(await accounts.removePasskey(ann.id, 'cred-1'), false, 'once')
    t.same((await accounts.passkeys(ann.id)).map((k) => k.id), ['cred-2'])
    t.same((await accounts.passkeys(bob.id)).map((k) => k.id), ['cred-3'])
  })

  t.test(`${kind}: a provider's user links to one account, once; the same id at another provider is another user`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { accounts } = store
    await accounts.create(ann)
    await accounts.create(bob)
    t.equal(await accounts.link('github', '42', ann.id), true)
    t.equal(await accounts.linked('github', '42'), ann.id)
    t.equal(await accounts.link('github', '42', bob.id), false, 'linked already: refused, not thrown')
    t.equal(await accounts.link('github', '42', ann.id), false, 'even to the same account')
    t.equal(await accounts.linked('github', '42'), ann.id, 'the first link unchanged')
    t.equal(await accounts.link('gitlab', '42', bob.id), true, 'another provider')
    t.equal(await accounts.linked('gitlab', '42'), bob.id)
    t.equal(await accounts.link('github', '7', ann.id), true, 'an account may link several users')
    t.equal(await accounts.linked('github', '7'), ann.id)
    t.equal(await accounts.linked('github', '43'), undefined)
    t.equal(await accounts.linked('google', '42'), undefined)
  })

  t.test(`${kind}: an account's sessions are listed most recently used first and ended all but one; guests' never`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { sessions } = store
    await sessions.create('s1', session(ann.id, 1000, 'Firefox'))
    await sessions.create('s2', session(ann.id, 3000, 'Chrome'))
    await sessions.create('s3', session(ann.id, 2000, 'Safari'))
    await sessions.create('g1', session('', 5000))
    await sessions.create('g2', session('', 6000))
    await sessions.create('b1', session(bob.id, 4000))
    const listed = await sessions.list(ann.id)
    t.same(listed.map((s) => s.hash), ['s2', 's3', 's1'], "only ann's, most recently used first")
    t.strictSame(listed[0], { ...session(ann.id, 3000, 'Chrome'), hash: 's2' }, 'with what tells the devices apart')
    t.strictSame(await sessions.read('s2'), session(ann.id, 3000, 'Chrome'), 'read back with its account and browser')
    await sessions.touch('s1', 9000)
    t.same((await sessions.list(ann.id)).map((s) => s.hash), ['s1', 's2', 's3'], 'used now: first')
    t.strictSame(await sessions.list(''), [], "guests' sessions are nobody's")
    t.strictSame(await sessions.list('nobody'), [])

    t.same((await sessions.endAccount(ann.id, 's2')).sort(), ['s1', 's3'], 'all but the current one, by hash')
    t.equal(await sessions.read('s1'), undefined)
    t.equal(await sessions.read('s3'), undefined)
    t.ok(await sessions.read('s2'), 'the current one kept')
    t.ok(await sessions.read('b1'), "another account's untouched")
    t.ok(await sessions.read('g1'), "guests' untouched")
    t.equal(await sessions.count(), 4)
    t.strictSame(await sessions.endAccount(''), [], 'ending the guests\' "account" ends nothing')
    t.equal(await sessions.count(), 4)
    t.strictSame(await sessions.endAccount(ann.id), ['s2'], 'with no exception: all')
    t.strictSame(await sessions.list(ann.id), [])
    t.strictSame(await sessions.endAccount(ann.id), [], 'nothing left')
    t.same(await sessions.list(bob.id).then((l) => l.map((s) => s.hash)), ['b1'])
    t.equal(await sessions.count(), 3)
  })
}

const lasting: [string, (t: { teardown(fn: () => unknown): void }) => Promise<() => Store>, string | false][] = [
  [
    'sqlite: the same file',
    async (t) => {
      const dir = tempDir(t)
      return () => new SqliteStore(dir)
    },
    false,
  ],
  [
    'postgres: the same database',
    async (t) => {
      const url = await freshDatabase(t)
      return () => new PostgresStore({ url })
    },
    noPostgres,
  ],
]

for (const [kind, opener, skip] of lasting) {
  t.test(`${kind} reopened: accounts, passkeys, links and account sessions are all still there`, { skip }, async (t) => {
    const reopen = await opener(t)
    const first = reopen()
    await first.open()
    t.equal(await first.accounts.create(ann), true)
    await first.accounts.create(bob)
    await first.accounts.setPassword(bob.id, '$argon2id$bob')
    await first.accounts.addPasskey(passkey('cred-1', ann.id, 1000, ['internal', 'hybrid']))
    await first.accounts.usePasskey('cred-1', 7, 8000)
    await first.accounts.link('github', '42', ann.id)
    await first.sessions.create('s1', session(ann.id, 3000, 'Chrome'))
    await first.sessions.create('g1', session('', 4000))
    await first.close()

    const again = reopen()
    await again.open()
    t.teardown(() => again.close())
    t.strictSame(await again.accounts.bySkeleton('ann'), ann)
    t.strictSame(await again.accounts.byId(bob.id), { ...bob, passwordHash: '$argon2id$bob' })
    t.strictSame(await again.accounts.passkeys(ann.id), [{ ...passkey('cred-1', ann.id, 1000, ['internal', 'hybrid']), counter: 7, lastUsedAt: 8000 }])
    t.equal(await again.accounts.linked('github', '42'), ann.id)
    t.strictSame(await again.sessions.list(ann.id), [{ ...session(ann.id, 3000, 'Chrome'), hash: 's1' }])
    t.strictSame(await again.sessions.read('g1'), session('', 4000))
    t.equal(await again.accounts.create({ ...bob, id: 'acct-bob2' }), false, 'a skeleton taken before the restart stays taken')
  })
}

t.test('sqlite: a file made before accounts opens, keeps its sessions as guests\', and gains accounts', async (t) => {
  const dir = tempDir(t)
  const old = new Database(join(dir, 'chat.sqlite'))
  old.exec("CREATE TABLE sessions (hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL, address TEXT NOT NULL DEFAULT '')")
  old.prepare("INSERT INTO sessions VALUES ('old', '{}', 1, 2, '10.0.0.9')").run()
  old.close()
  const store = new SqliteStore(dir)
  await store.open()
  t.teardown(() => store.close())
  t.strictSame(await store.sessions.read('old'), { user: '{}', createdAt: 1, seenAt: 2, address: '10.0.0.9', account: '', userAgent: '' })
  t.equal(await store.accounts.create(ann), true)
  await store.accounts.addPasskey(passkey('cred-1', ann.id, 1000))
  await store.sessions.create('new', session(ann.id, 3000))
  t.same((await store.sessions.list(ann.id)).map((s) => s.hash), ['new'])
  t.same(await store.sessions.endAccount(''), [], 'the old session is a guest\'s')
  t.equal(await store.sessions.count(), 2)
})

t.test('postgres: a database made before accounts opens, keeps its sessions as guests\', and gains accounts', { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  const old = new pg.Client({ connectionString: url })
  await old.connect()
  await old.query(`CREATE TABLE chat_sessions (hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, created_at BIGINT NOT NULL, seen_at BIGINT NOT NULL, address TEXT NOT NULL DEFAULT '');
    INSERT INTO chat_sessions VALUES ('old', '{}', 1, 2, '10.0.0.9')`)
  await old.end()
  const store = new PostgresStore({ url })
  await store.open()
  t.teardown(() => store.close())
  t.strictSame(await store.sessions.read('old'), { user: '{}', createdAt: 1, seenAt: 2, address: '10.0.0.9', account: '', userAgent: '' })
  t.equal(await store.accounts.create(ann), true)
  await store.accounts.addPasskey(passkey('cred-1', ann.id, 1000))
  await store.sessions.create('new', session(ann.id, 3000))
  t.same((await store.sessions.list(ann.id)).map((s) => s.hash), ['new'])
  t.same(await store.sessions.endAccount(''), [], 'the old session is a guest\'s')
  t.equal(await store.sessions.count(), 2)
})

t.test('sqlite: the log and its epoch survive closing and reopening the file', async (t) => {
  const dir = tempDir(t)
  const first = new SqliteStore(dir)
  await first.open()
  await first.append(messages(1, 5))
  const epoch = first.epoch
  await first.close()
  t.equal(await first.ready(), false, 'closed')
  const again = new SqliteStore(dir)
  await again.open()
  t.teardown(() => again.close())
  t.equal(again.epoch, epoch, 'the same log, the same epoch')
  t.equal(await again.lastId(), 5)
  t.same(ids(await again.append(messages(6, 6))), [6], 'ids go on')
  const other = new SqliteStore(tempDir(t))
  await other.open()
  t.not(other.epoch, epoch, 'a new file is a new log, with a new epoch')
  await other.close()
})

t.test('sqlite: a file made before sessions had an address opens, and its sessions are kept', async (t) => {
  const dir = tempDir(t)
  const old = new Database(join(dir, 'chat.sqlite'))
  old.exec('CREATE TABLE sessions (hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL)')
  old.prepare("INSERT INTO sessions VALUES ('old', '{}', 1, 2)").run()
  old.close()
  const store = new SqliteStore(dir)
  await store.open()
  t.teardown(() => store.close())
  t.same(await store.sessions.read('old'), { user: '{}', createdAt: 1, seenAt: 2, address: '', account: '', userAgent: '' })
  await store.sessions.create('new', { user: '{}', createdAt: 3, seenAt: 3, address: '10.0.0.1', account: '', userAgent: '' })
  t.same(await store.sessions.trim('10.0.0.1', 1, 'new'), [])
  t.equal(await store.sessions.count(), 2)
})

t.test('sqlite: a second process on the same file is refused, so no id is handed out twice', async (t) => {
  const dir = tempDir(t)
  const first = new SqliteStore(dir)
  await first.open()
  t.teardown(() => first.close())
  await first.append(messages(1, 1))
  t.throws(() => new SqliteStore(dir), /locked/, 'the second owner fails at once')
})

t.test('memory: pruning by age', async (t) => {
  const store = new MemoryStore()
  await store.append(messages(1, 3))
  // Ten seconds: a loaded machine may take a few ms between the append and this prune.
  t.equal(await store.prune(0, 10_000), 0, 'all are newer than 10 s')
  await new Promise((r) => setTimeout(r, 5))
  t.equal(await store.prune(0, 1), 3, 'all older than 1 ms now')
  t.same(ids(await store.after(0, 10)), [])
  t.same(ids(await store.before(10, 10)), [])
  t.same(ids(await store.append(messages(4, 4))), [4])
})

t.test('BROKER=redis needs STORE=postgres, said in one line naming both', async (t) => {
  t.throws(() => loadConfig({ BROKER: 'redis' }), /^Invalid BROKER="redis": needs STORE=postgres \(STORE=sqlite/)
  t.throws(() => loadConfig({ BROKER: 'redis', STORE: 'memory' }), /needs STORE=postgres/)
  t.doesNotThrow(() => loadConfig({ BROKER: 'redis', STORE: 'postgres' }))
  t.throws(() => loadConfig({ STORE: 'mysql' }), /STORE.*must be sqlite, postgres or memory/)
})

t.test('GET /room/history: pages of the log, bounded, oldest first, with the epoch', async (t) => {
  const app = await buildTestApp(t, { ARCHIVE_SIZE: '5' })
  const cookie = await signIn(app, 'ann')
  for (let i = 1; i <= 30; i++) await app.chatroom.post('bob', `n${i}`)
  const get = (query: string) => app.inject({ method: 'GET', url: `/room/history${query}`, headers: { cookie } })
  const newest = await get('?limit=10')
  t.equal(newest.statusCode, 200)
  t.same(newest.json(), { epoch: app.chatroom.epoch, events: newest.json().events }, 'the epoch beside the events')
  t.same(newest.json().events.map((e: Event) => e.id), range(21, 30), 'the newest, oldest first')
  t.same((await get('?before=21&limit=10')).json().events.map((e: Event) => e.id), range(11, 20), 'older, from the log')
  t.same((await get('?before=28&limit=2')).json().events.map((e: Event) => e.id), [26, 27], 'from the window')
  t.same((await get('?before=3')).json().events.map((e: Event) => e.id), [1, 2])
  t.equal((await get('')).json().events.length, 30, 'at most 50 by default')
  for (const bad of ['?limit=0', '?limit=201', '?limit=abc', '?before=-1', '?before=1.5', '?epoch=%3Cscript%3E']) {
    const res = await get(bad)
    t.equal(res.statusCode, 400, bad)
    t.match(res.json(), { error: 'Bad Request', message: String })
  }
  const other = await get('?before=10&epoch=anotherLog')
  t.equal(other.statusCode, 409)
  t.match(other.json(), { reason: 'epoch', epoch: app.chatroom.epoch, lastId: 30 })
  t.equal((await app.inject({ method: 'GET', url: '/room/history' })).statusCode, 401, 'signed-in users only')
})

t.test('the refresh page: "Load older messages" links to pages of history, without JavaScript', async (t) => {
  const app = await buildTestApp(t, { ARCHIVE_SIZE: '5' })
  const cookie = await signIn(app, 'ann', 'refresh')
  for (let i = 1; i <= 80; i++) await app.chatroom.post('bob', `n${i}`)
  const page = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie } })
  const older = /href="\/refresh\/room\?before=(\d+)&amp;epoch=([\w-]+)">Load older messages/.exec(page.body)
  t.ok(older, 'the newest page links to older messages')
  t.equal(older![2], app.chatroom.epoch)
  const history = await app.inject({ method: 'GET', url: `/refresh/room?before=${older![1]}&epoch=${older![2]}`, headers: { cookie } })
  t.equal(history.statusCode, 200)
  t.match(history.body, /Back to the newest messages/)
  t.notMatch(history.body, /http-equiv="refresh"/, 'a page of history does not reload itself')
  const shown = [...history.body.matchAll(/class="text">n(\d+)</g)].map((m) => Number(m[1]))
  t.equal(shown.length, 50, 'fifty older messages')
  t.ok(shown.every((n, i) => i === 0 || n === shown[i - 1]! + 1), 'in order')
  t.ok(Math.max(...shown) < 80, 'all older than the newest page')
})

t.test('sqlite: pruning by age finds its cutoff by id, and ids go on after everything was pruned and the process restarted', async (t) => {
  const dir = tempDir(t)
  let store = new SqliteStore(dir)
  await store.open()
  await store.append(messages(1, 3))
  await new Promise((r) => setTimeout(r, 30))
  await store.append(messages(4, 5))
  t.equal(await store.prune(0, 20), 3, 'the three older than 20 ms')
  t.same(ids(await store.after(0, 10)), [4, 5])
  await new Promise((r) => setTimeout(r, 30))
  t.equal(await store.prune(0, 20), 2, 'then the rest')
  t.equal(await store.prune(0, 20), 0, 'nothing left to prune')
  await store.close()
  store = new SqliteStore(dir)
  await store.open()
  t.teardown(() => store.close())
  t.equal(await store.lastId(), 5, 'the newest id survives an empty table')
  t.same(ids(await store.append(messages(6, 6))), [6], 'and is never given out again')
})

const room = (name: string, visibility: RoomVisibility = 'public', createdBy = 'p-ann'): RoomRecord => ({
  name,
  skeleton: name.replace(/[-_]/g, ''),
  title: `The ${name} room`,
  topic: `about ${name}`,
  visibility,
  createdBy,
  createdAt: 1000,
})

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: two rooms' logs are independent: ids from 1 in each, an epoch each, pages and pruning per room`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const a = await store.log('a')
    const b = await store.log('b')
    t.equal(a.room, 'a')
    t.equal(b.room, 'b')
    t.match(a.epoch, /^[A-Za-z0-9_-]{8,}$/)
    t.not(a.epoch, b.epoch, 'each log its own epoch')
    t.not(a.epoch, store.epoch, 'and not the lobby\'s')
    t.equal(await a.lastId(), 0, 'a new room starts empty')
    t.same(ids(await a.append(messages(1, 3))), [1, 2, 3])
    t.same(ids(await b.append(messages(1, 2))), [1, 2], 'ids from 1 in the other room too')
    t.same(ids(await a.append(messages(4, 5))), [4, 5], 'and go on in the first')
    t.same(ids(await store.append(messages(1, 1))), [1], 'the lobby counts on its own')
    t.equal(await a.lastId(), 5)
    t.equal(await b.lastId(), 2)
    t.equal(await store.lastId(), 1)
    t.same((await a.after(0, 10)).map((s) => s.event.text), ['m1', 'm2', 'm3', 'm4', 'm5'], "after: only the room's own")
    t.same((await b.after(0, 10)).map((s) => s.event.text), ['m1', 'm2'])
    t.same(ids(await a.after(3, 10)), [4, 5])
    t.same(ids(await b.after(2, 10)), [])
    t.same(ids(await a.before(5, 2)), [3, 4], 'before: the newest below, per room')
    t.same(ids(await b.before(5, 10)), [1, 2])

    t.equal(await a.prune(2, 0), 3, "the first room's oldest three")
    t.same(ids(await a.after(0, 10)), [4, 5])
    t.same(ids(await b.after(0, 10)), [1, 2], 'the other room untouched')
    t.same(ids(await store.after(0, 10)), [1], 'the lobby untouched')
    t.equal(await b.prune(0, 60_000), 0, 'nothing older than a minute')
    t.equal(await a.prune(0, 0), 0)
    await new Promise((r) => setTimeout(r, 20))
    t.equal(await a.prune(0, 10), 2, 'by age: the rest of the first room')
    t.equal(await a.lastId(), 5, "a pruned room's last id stays")
    t.same(ids(await a.append(messages(6, 6))), [6], 'and is never given out again')
    t.same(ids(await b.after(0, 10)), [1, 2], 'still untouched')
    t.same((await store.logs()).sort(), ['a', 'b', 'lobby'], 'every log, for background pruning')
  })

  t.test(`${kind}: log(room) twice is the same log; the lobby's log is the store's own`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const first = await store.log('a')
    await first.append(messages(1, 2))
    const again = await store.log('a')
    t.equal(again.epoch, first.epoch, 'the same epoch')
    t.equal(await again.lastId(), 2)
    t.same(ids(await again.append(messages(3, 3))), [3], 'the same ids')
    const lobby = await store.log(LOBBY)
    t.equal(lobby.room, LOBBY)
    t.equal(lobby.epoch, store.epoch, "the lobby's epoch is the store's")
    t.same(ids(await store.append(messages(1, 2))), [1, 2])
    t.same(ids(await lobby.append(messages(3, 3))), [3], 'appended through the lobby log, after the store\'s')
    t.same((await lobby.after(0, 10)).map((s) => s.event.text), ['m1', 'm2', 'm3'], 'read through the lobby log')
    t.same((await store.after(0, 10)).map((s) => s.event.text), ['m1', 'm2', 'm3'], 'read through the store')
    t.same(ids(await store.before(4, 1)), [3])
    t.equal(await store.lastId(), 3)
    t.equal(await lobby.prune(1, 0), 2, 'pruned through one')
    t.same(ids(await store.after(0, 10)), [3], 'seen through the other')
    t.equal(await store.prune(0, 0), 0)
  })

  t.test(`${kind}: lastIds: where each room's log stands in one read, 0 for a room with no log, and no log made by asking`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    await (await store.log('a')).append(messages(1, 3))
    await store.log('b')
    await store.append(messages(1, 2))
    // More names than one statement takes (PostgreSQL asks in slices of 5,000): most have no log.
    const names = ['a', 'b', LOBBY, 'never', ...Array.from({ length: 6000 }, (_, i) => `x${i}`), 'a']
    const ids = await store.lastIds(names)
    t.same([ids.get('a'), ids.get('b'), ids.get(LOBBY), ids.get('never'), ids.get('x5999')], [3, 0, 2, 0, 0], 'a at 3, b and the unknown at 0, the lobby at 2')
    t.equal(ids.size, 6004, 'one answer per room asked (a name asked twice, once)')
    t.notOk((await store.logs()).includes('never'), 'asking made no log')
    await (await store.log('b')).append(messages(1, 1))
    t.same([...(await store.lastIds(['b']))], [['b', 1]], 'and it follows the log')
    t.same([...(await store.lastIds([]))], [], 'nothing asked, nothing answered')
  })

  t.test(`${kind}: rooms: one per skeleton, found by name and by skeleton, listed to whom may read them, counted`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { rooms } = store
    t.equal(await rooms.create(room('general')), true)
    t.strictSame(await rooms.get('general'), room('general'), 'read back as written')
    t.strictSame(await rooms.bySkeleton('general'), room('general'))
    t.equal(await rooms.get('nowhere'), undefined)
    t.equal(await rooms.bySkeleton('nowhere'), undefined)
    t.equal(await rooms.create({ ...room('gen-eral'), title: 'another' }), false, 'the same skeleton: refused, not thrown')
    t.equal(await rooms.get('gen-eral'), undefined, 'nothing written')
    t.strictSame(await rooms.get('general'), room('general'), 'the first one unchanged')
    t.equal(await rooms.create({ ...room('general'), skeleton: 'other' }), false, 'the same name: refused')
    t.equal(await rooms.bySkeleton('other'), undefined)
    t.equal(await rooms.describe('general', 'General', 'anything goes'), true, 'a new title and topic')
    t.strictSame(await rooms.get('general'), { ...room('general'), title: 'General', topic: 'anything goes' }, 'read back by name')
    t.strictSame(await rooms.bySkeleton('general'), { ...room('general'), title: 'General', topic: 'anything goes' }, 'and by skeleton')
    t.equal(await rooms.describe('nowhere', 'x', 'y'), false, 'no such room: false, nothing written')
    t.equal(await rooms.describe('general', room('general').title, room('general').topic), true)
    t.equal(await rooms.setRules('general', { slow: 30, closed: true }), true, 'slow mode and closed')
    t.strictSame(await rooms.get('general'), { ...room('general'), slow: 30, closed: true }, 'read back with its rules')
    t.strictSame(await rooms.bySkeleton('general'), { ...room('general'), slow: 30, closed: true })
    t.equal(await rooms.setRules('general', { slow: 0, closed: false }), true)
    t.strictSame(await rooms.get('general'), room('general'), 'off and open again: the record as it was (no rule fields)')
    t.equal(await rooms.setRules('nowhere', { slow: 5, closed: true }), false, 'no such room: false')

    t.equal(await rooms.create(room('secret', 'private')), true)
    t.equal(await rooms.create(room('ann-bob', 'direct')), true)
    t.equal(await rooms.create(room('zoo', 'public', 'p-bob')), true)
    t.equal(await rooms.create(room('attic', 'private', 'p-bob')), true)
    await rooms.addMember('secret', 'p-ann', 'owner')
    await rooms.addMember('ann-bob', 'p-ann', 'member')
    await rooms.addMember('ann-bob', 'p-bob', 'member')
    await rooms.addMember('attic', 'p-bob', 'owner')
    const names = async (person: string) => (await rooms.visibleTo(person)).map((r) => r.name)
    t.same(await names('p-ann'), ['ann-bob', 'general', 'secret', 'zoo'], 'public rooms and her private and direct ones, by name')
    t.same(await names('p-bob'), ['ann-bob', 'attic', 'general', 'zoo'])
    t.same(await names('p-eve'), ['general', 'zoo'], 'a stranger: only the public ones')
    t.strictSame((await rooms.visibleTo('p-eve'))[1], room('zoo', 'public', 'p-bob'), 'whole records')
    await rooms.removeMember('secret', 'p-ann')
    t.same(await names('p-ann'), ['ann-bob', 'general', 'zoo'], 'no longer a member: no longer listed')
    t.same(await rooms.counts('p-ann'), { created: 3, total: 5 })
    t.same(await rooms.counts('p-bob'), { created: 2, total: 5 })
    t.same(await rooms.counts('p-eve'), { created: 0, total: 5 })
  })

  t.test(`${kind}: members: added once with a role, listed oldest first, removed`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { rooms } = store
    await rooms.create(room('general'))
    t.equal(await rooms.addMember('general', 'p-zed', 'owner'), true)
    t.equal(await rooms.addMember('general', 'p-ann', 'member'), true)
    t.equal(await rooms.addMember('general', 'p-bob', 'member'), true)
    t.equal(await rooms.addMember('general', 'p-ann', 'owner'), false, 'a member already: false')
    t.equal(await rooms.role('general', 'p-ann'), 'member', 'and the role kept')
    t.equal(await rooms.role('general', 'p-zed'), 'owner')
    t.equal(await rooms.role('general', 'p-eve'), undefined)
    t.equal(await rooms.role('elsewhere', 'p-ann'), undefined)
    t.same(await rooms.members('general'), ['p-zed', 'p-ann', 'p-bob'], 'oldest membership first (not by id)')
    t.equal(await rooms.removeMember('general', 'p-ann'), true)
    t.equal(await rooms.removeMember('general', 'p-ann'), false, 'once')
    t.equal(await rooms.removeMember('general', 'p-eve'), false, 'never a member')
    t.equal(await rooms.role('general', 'p-ann'), undefined)
    t.equal(await rooms.addMember('general', 'p-ann', 'owner'), true, 'back, with another role')
    t.equal(await rooms.role('general', 'p-ann'), 'owner')
    t.same(await rooms.members('general'), ['p-zed', 'p-bob', 'p-ann'], 'now the newest member')
    t.same(await rooms.members('elsewhere'), [])
    // Names: kept with the membership, to list members; none given is ''.
    await rooms.create(room('named'))
    t.equal(await rooms.addMember('named', 'p-zed', 'owner', 'Zed'), true)
    t.equal(await rooms.addMember('named', 'p-ann', 'member', 'ann'), true)
    t.equal(await rooms.addMember('named', 'p-old', 'member'), true)
    t.equal(await rooms.addMember('named', 'p-ann', 'member', 'someone else'), false, 'a member already: the name is not changed')
    t.same(await rooms.named('named', 10), [
      { person: 'p-zed', name: 'Zed', role: 'owner' },
      { person: 'p-ann', name: 'ann', role: 'member' },
      { person: 'p-old', name: '', role: 'member' },
    ], 'oldest first, with their names and roles')
    t.same(await rooms.named('named', 2), [{ person: 'p-zed', name: 'Zed', role: 'owner' }, { person: 'p-ann', name: 'ann', role: 'member' }], 'at most `limit`')
    await rooms.removeMember('named', 'p-ann')
    await rooms.addMember('named', 'p-ann', 'member', 'ann again')
    t.same((await rooms.named('named', 10)).map((m) => m.name), ['Zed', '', 'ann again'], 'a leave forgets the name; back under a new one, last')
    t.same(await rooms.named('elsewhere', 10), [])
  })

  t.test(`${kind}: read markers only move forward, per room and person`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { rooms } = store
    t.equal(await rooms.readMarker('general', 'p-ann'), 0, 'nothing read yet')
    await rooms.markRead('general', 'p-ann', 5)
    t.equal(await rooms.readMarker('general', 'p-ann'), 5)
    await rooms.markRead('general', 'p-ann', 3)
    t.equal(await rooms.readMarker('general', 'p-ann'), 5, 'never back')
    await rooms.markRead('general', 'p-ann', 5)
    t.equal(await rooms.readMarker('general', 'p-ann'), 5)
    await rooms.markRead('general', 'p-ann', 9)
    t.equal(await rooms.readMarker('general', 'p-ann'), 9, 'forward')
    t.equal(await rooms.readMarker('general', 'p-bob'), 0, "another person's")
    t.equal(await rooms.readMarker('other', 'p-ann'), 0, 'another room\'s')
    await rooms.markRead('other', 'p-ann', 0)
    t.equal(await rooms.readMarker('other', 'p-ann'), 0)
  })

  t.test(`${kind}: a direct room per pair of people, whichever order they are named in`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { rooms } = store
    t.equal(await rooms.direct('p-bob', 'p-ann'), undefined)
    await rooms.create(room('dm-1', 'direct'))
    t.equal(await rooms.setDirect('p-bob', 'p-ann', 'dm-1'), true)
    t.strictSame(await rooms.direct('p-ann', 'p-bob'), room('dm-1', 'direct'), 'the other order finds it')
    t.strictSame(await rooms.direct('p-bob', 'p-ann'), room('dm-1', 'direct'))
    await rooms.create(room('dm-2', 'direct'))
    t.equal(await rooms.setDirect('p-ann', 'p-bob', 'dm-2'), false, 'one direct room per pair')
    t.equal((await rooms.direct('p-ann', 'p-bob'))!.name, 'dm-1', 'the first kept')
    t.equal(await rooms.setDirect('p-ann', 'p-eve', 'dm-2'), true, 'another pair')
    t.equal((await rooms.direct('p-eve', 'p-ann'))!.name, 'dm-2')
    t.equal(await rooms.direct('p-bob', 'p-eve'), undefined)
  })
}

for (const [kind, opener, skip] of lasting) {
  t.test(`${kind} reopened: every room's log keeps its ids and epoch; rooms, members, markers and direct rooms are still there`, { skip }, async (t) => {
    const reopen = await opener(t)
    const first = reopen()
    await first.open()
    await first.append(messages(1, 2))
    const a = await first.log('a')
    await a.append(messages(1, 3))
    await a.prune(1, 0)
    const b = await first.log('b')
    await b.append(messages(1, 1))
    await b.prune(1, 0)
    await new Promise((r) => setTimeout(r, 5))
    await b.prune(0, 1)
    const epochs = { lobby: first.epoch, a: a.epoch, b: b.epoch }
    await first.rooms.create(room('a', 'private'))
    await first.rooms.addMember('a', 'p-ann', 'owner')
    await first.rooms.addMember('a', 'p-bob', 'member')
    await first.rooms.markRead('a', 'p-bob', 2)
    await first.rooms.create(room('dm', 'direct'))
    await first.rooms.setDirect('p-ann', 'p-bob', 'dm')
    await first.close()

    const again = reopen()
    await again.open()
    t.teardown(() => again.close())
    t.equal(again.epoch, epochs.lobby, "the lobby's epoch")
    t.equal(await again.lastId(), 2)
    const a2 = await again.log('a')
    const b2 = await again.log('b')
    t.same({ lobby: again.epoch, a: a2.epoch, b: b2.epoch }, epochs, "every room's epoch")
    t.equal(await a2.lastId(), 3)
    t.same(ids(await a2.after(0, 10)), [3], 'what pruning left')
    t.equal(await b2.lastId(), 1, 'a fully pruned room keeps its last id')
    t.same(ids(await b2.append(messages(2, 2))), [2], 'and goes on from it')
    t.same(ids(await a2.append(messages(4, 4))), [4])
    t.same(ids(await again.append(messages(3, 3))), [3])
    t.same((await again.logs()).sort(), ['a', 'b', 'lobby'])
    t.strictSame(await again.rooms.get('a'), room('a', 'private'))
    t.same(await again.rooms.members('a'), ['p-ann', 'p-bob'])
    t.equal(await again.rooms.role('a', 'p-ann'), 'owner')
    t.equal(await again.rooms.readMarker('a', 'p-bob'), 2)
    t.equal((await again.rooms.direct('p-bob', 'p-ann'))?.name, 'dm')
    t.equal(await again.rooms.create(room('a')), false, 'a skeleton taken before the restart stays taken')
  })
}

/** A file as the version before rooms made it: one log in `events`, its epoch and last id in `meta`. */
function oneLogFile(dir: string, events: StoredEvent[], lastId: number, epoch = 'oldEpoch123'): void {
  const old = new Database(join(dir, 'chat.sqlite'))
  old.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, json TEXT NOT NULL);
    CREATE TABLE sessions (hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL,
      address TEXT NOT NULL DEFAULT '', account TEXT NOT NULL DEFAULT '', user_agent TEXT NOT NULL DEFAULT '');
  `)
  old.prepare("INSERT INTO meta VALUES ('epoch', ?), ('last_id', ?)").run(epoch, String(lastId))
  const insert = old.prepare('INSERT INTO events (id, at, json) VALUES (?, ?, ?)')
  old.transaction(() => {
    for (const { event, json } of events) insert.run(event.id, event.timestamp, json)
  })()
  old.close()
}

const tables = (dir: string): string[] => {
  const db = new Database(join(dir, 'chat.sqlite'), { readonly: true })
  try {
    return db.prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()
  } finally {
    db.close()
  }
}

t.test('sqlite: a file made before rooms opens with its log as the lobby, every id and the epoch unchanged, moved once', async (t) => {
  const dir = tempDir(t)
  // Ids 1-3 pruned long ago; meta's last_id is behind the table's newest (it is written only when pruning).
  const old = numbered(messages(4, 9), 4, 1_000)
  oneLogFile(dir, old, 5)
  const store = new SqliteStore(dir)
  await store.open()
  t.equal(store.epoch, 'oldEpoch123', 'the same epoch: cursors held by clients still hold')
  t.equal(await store.lastId(), 9, 'the newest id')
  t.strictSame(await store.after(0, 100), old.map((s) => fromJson(s.json)), 'every event, under its id, byte for byte')
  t.same(ids(await store.before(6, 10)), [4, 5])
  t.same(ids(await store.append(messages(10, 11))), [10, 11], 'appends go on from the last id')
  const lobby = await store.log(LOBBY)
  t.equal(lobby.epoch, 'oldEpoch123')
  t.same(await store.logs(), [LOBBY])
  await store.close()
  t.notOk(tables(dir).includes('events'), 'the old table is gone: never read again')
  t.notOk(tables(dir).includes('meta'))

  const again = new SqliteStore(dir)
  await again.open()
  t.teardown(() => again.close())
  t.equal(again.epoch, 'oldEpoch123', 'after a restart')
  t.same(ids(await again.after(0, 100)), range(4, 11), 'nothing moved twice')
  t.same(ids(await again.append(messages(12, 12))), [12])
})

t.test('sqlite: a file made before rooms with every event pruned keeps its last id; an empty one keeps its epoch', async (t) => {
  const pruned = tempDir(t)
  oneLogFile(pruned, [], 42, 'prunedEpoch')
  const store = new SqliteStore(pruned)
  await store.open()
  t.teardown(() => store.close())
  t.equal(store.epoch, 'prunedEpoch')
  t.equal(await store.lastId(), 42, 'from meta')
  t.same(ids(await store.append(messages(43, 43))), [43], 'never given out again')

  const empty = tempDir(t)
  oneLogFile(empty, [], 0, 'emptyEpoch')
  const other = new SqliteStore(empty)
  await other.open()
  t.teardown(() => other.close())
  t.equal(other.epoch, 'emptyEpoch')
  t.same(ids(await other.append(messages(1, 1))), [1])
})

t.test('sqlite: an older version that wrote to the file again after the move is not merged over the lobby', async (t) => {
  const dir = tempDir(t)
  const store = new SqliteStore(dir)
  await store.open()
  await store.append(messages(1, 2))
  await store.close()
  const old = new Database(join(dir, 'chat.sqlite'))
  old.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, json TEXT NOT NULL)')
  old.prepare('INSERT INTO events VALUES (1, 1, ?)').run(numbered(messages(1, 1), 1, 1)[0]!.json)
  old.close()
  t.throws(() => new SqliteStore(dir), /old events table has 1 events beside the lobby's log/, 'said, not guessed')
  const again = new Database(join(dir, 'chat.sqlite'))
  again.exec('DELETE FROM events')
  again.close()
  const reopened = new SqliteStore(dir)
  await reopened.open()
  t.same(ids(await reopened.after(0, 10)), [1, 2], 'an empty old table is just dropped')
  await reopened.close()
  t.notOk(tables(dir).includes('events'))
})

/** A database as the version before rooms made it: one log in chat_events, its counter row in chat_log. */
async function oneLogDatabase(url: string, events: StoredEvent[], lastId: number, epoch = 'oldEpoch123'): Promise<void> {
  const old = new pg.Client({ connectionString: url })
  await old.connect()
  try {
    await old.query(`
      CREATE TABLE chat_log (id INT PRIMARY KEY DEFAULT 1 CHECK (id = 1), epoch TEXT NOT NULL, last_id BIGINT NOT NULL);
      CREATE TABLE chat_events (id BIGINT PRIMARY KEY, at BIGINT NOT NULL, json TEXT NOT NULL);
      CREATE INDEX chat_events_at ON chat_events (at);
    `)
    await old.query('INSERT INTO chat_log (epoch, last_id) VALUES ($1, $2)', [epoch, lastId])
    await old.query('INSERT INTO chat_events (id, at, json) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])', [
      events.map((s) => s.event.id),
      events.map((s) => s.event.timestamp),
      events.map((s) => s.json),
    ])
  } finally {
    await old.end()
  }
}

t.test('postgres: a database made before rooms opens with its log as the lobby, every id and the epoch unchanged, moved once by one of two processes', { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  const old = numbered(messages(4, 9), 4, 1_000)
  await oneLogDatabase(url, old, 9)
  // Two processes start at once on the old database.
  const first = new PostgresStore({ url })
  const second = new PostgresStore({ url })
  t.teardown(() => second.close())
  await Promise.all([first.open(), second.open()])
  t.equal(first.epoch, 'oldEpoch123', 'the same epoch: cursors held by clients still hold')
  t.equal(second.epoch, 'oldEpoch123')
  t.equal(await first.lastId(), 9)
  t.strictSame(await second.after(0, 100), old.map((s) => fromJson(s.json)), 'every event once, under its id, byte for byte')
  t.same(ids(await first.before(6, 10)), [4, 5])
  t.same(ids(await first.append(messages(10, 11))), [10, 11], 'appends go on from the last id')
  t.same(ids(await second.append(messages(12, 12))), [12], 'on either process')
  t.same(await first.logs(), [LOBBY])
  await first.close()

  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  const { rows } = await client.query<{ old: string | null }>("SELECT coalesce(to_regclass('chat_log')::text, to_regclass('chat_events')::text) AS old")
  t.equal(rows[0]!.old, null, 'the old tables are gone: never read again')

  const again = new PostgresStore({ url })
  await again.open()
  t.teardown(() => again.close())
  t.equal(again.epoch, 'oldEpoch123', 'after a restart')
  t.same(ids(await again.after(0, 100)), range(4, 12), 'nothing moved twice')
})

t.test('postgres: a database made before rooms with every event pruned keeps its last id', { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  await oneLogDatabase(url, [], 42, 'prunedEpoch')
  const store = new PostgresStore({ url })
  await store.open()
  t.teardown(() => store.close())
  t.equal(store.epoch, 'prunedEpoch')
  t.equal(await store.lastId(), 42)
  t.same(ids(await store.append(messages(43, 43))), [43], 'never given out again')
})

t.test('postgres: two processes asking for a new room at once agree on its one epoch', { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  const stores = [new PostgresStore({ url }), new PostgresStore({ url })]
  for (const store of stores) {
    await store.open()
    t.teardown(() => store.close())
  }
  for (const name of ['a', 'b', 'c', 'd', 'e']) {
    const logs = await Promise.all(stores.map((store) => store.log(name)))
    t.equal(logs[0]!.epoch, logs[1]!.epoch, `room ${name}`)
  }
  const a = await stores[1]!.log('a')
  t.same(ids(await (await stores[0]!.log('a')).append(messages(1, 2))), [1, 2])
  t.same(ids(await a.append(messages(3, 3))), [3], "one room's ids across processes")
})

t.test('postgres: a process keeps at most PG_POOL_SIZE connections open, however many reads it has at once', { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  const database = new URL(url).pathname.slice(1)
  t.equal(loadConfig({ SESSION_SECRET: 'x'.repeat(32) }).PG_POOL_SIZE, 4, 'four by default')
  t.throws(() => loadConfig({ SESSION_SECRET: 'x'.repeat(32), PG_POOL_SIZE: '0' }), /PG_POOL_SIZE/, 'at least one')
  const counter = new pg.Client({ connectionString: url })
  await counter.connect()
  t.teardown(() => counter.end())
  const open = async () => Number((await counter.query<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database])).rows[0]!.n)
  for (const size of [2, 6]) {
    const store = new PostgresStore({ url, poolSize: size })
    await store.open()
    // Thirty reads at once, each holding its connection a moment.
    let most = 0
    let watching = true
    // Counted one after another while they run (each count awaited, so none is left when the test ends).
    const watcher = (async () => {
      while (watching) {
        most = Math.max(most, await open())
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
    })()
    await Promise.all(Array.from({ length: 30 }, () => (store as unknown as { pool: pg.Pool }).pool.query('SELECT pg_sleep(0.05)')))
    most = Math.max(most, await open())
    watching = false
    await watcher
    await store.close()
    t.ok(most > 0 && most <= size, `PG_POOL_SIZE=${size}: at most ${size} connections were open (${most} seen)`)
    // Its connections gone from PostgreSQL's list before the next size is counted.
    for (let i = 0; i < 100 && (await open()) > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  }
})

t.test("postgres: a commit to one room does not wait for another room's transaction", { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  const store = new PostgresStore({ url, timeoutMs: 5000 })
  await store.open()
  t.teardown(() => store.close())
  const a = await store.log('a')
  const b = await store.log('b')
  await a.append(messages(1, 1))

  // Another connection holds room a's counter row, as a commit in progress does.
  const holder = new pg.Client({ connectionString: url })
  await holder.connect()
  t.teardown(() => holder.end())
  await holder.query('BEGIN')
  await holder.query("UPDATE chat_room_logs SET last_id = last_id WHERE room = 'a'")

  const began = Date.now()
  t.same(ids(await b.append(messages(1, 2))), [1, 2], 'room b commits')
  t.same(ids(await store.append(messages(1, 1))), [1], 'and the lobby')
  t.ok(Date.now() - began < 1000, `at once (${Date.now() - began} ms)`)

  let done = false
  const waiting = a.append(messages(2, 2)).finally(() => (done = true))
  await new Promise((r) => setTimeout(r, 300))
  t.equal(done, false, "room a's commit waits for the row")
  await holder.query('COMMIT')
  t.same(ids(await waiting), [2], 'then commits with the next id')
  t.same(ids(await a.after(0, 10)), [1, 2])
  t.equal(await store.ready(), true, 'nothing was taken for a hung database')
})

t.test('sqlite: once the file is deleted under the store, room writes and new logs are refused, not lost at the restart', async (t) => {
  const dir = tempDir(t)
  const store = new SqliteStore(dir, { onError: () => {} })
  await store.open()
  const a = await store.log('a')
  await a.append(messages(1, 1))
  await store.rooms.create(room('a'))
  unlinkSync(join(dir, 'chat.sqlite'))
  await t.rejects(a.append(messages(2, 2)), /restart the server/, "a room's commit")
  await t.rejects(store.log('b'), /restart the server/, 'a new log')
  await t.rejects(store.rooms.create(room('b')), /restart the server/)
  await t.rejects(store.rooms.addMember('a', 'p-ann', 'owner'), /restart the server/)
  await t.rejects(store.rooms.removeMember('a', 'p-ann'), /restart the server/)
  await t.rejects(store.rooms.markRead('a', 'p-ann', 1), /restart the server/)
  await t.rejects(store.rooms.setDirect('p-ann', 'p-bob', 'a'), /restart the server/)
  t.equal(await a.prune(0, 1), 0, 'housekeeping waits for the restart')
  t.equal((await store.rooms.get('a'))?.name, 'a', 'reads still answer')
  t.same(ids(await a.after(0, 10)), [1])
  await store.close()
  const again = new SqliteStore(dir)
  await again.open()
  t.teardown(() => again.close())
  t.same(await again.logs(), ['a', 'lobby'], 'written back: the logs made before, and no other')
  t.same(ids(await (await again.log('a')).after(0, 10)), [1])
  t.equal(await again.rooms.get('b'), undefined)
})

t.test('PostgreSQL: a process opening the store beside a busy one takes no table lock (a restart never deadlocks with the commits of a process already running)', { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  const first = new PostgresStore({ url })
  await first.open()
  t.teardown(() => first.close())
  await first.append(messages(1, 3))
  // Another process's transaction is under way on the events table (as a commit is, holding its locks).
  const busy = new pg.Client({ connectionString: url })
  await busy.connect()
  t.teardown(() => busy.end())
  await busy.query('BEGIN')
  await busy.query("SELECT count(*) FROM chat_room_events WHERE room = 'lobby'")
  await busy.query("INSERT INTO chat_sessions (hash, \"user\", created_at, seen_at) VALUES ('busy', 'u', 1, 1)")
  const second = new PostgresStore({ url })
  t.teardown(() => second.close())
  const opened = await Promise.race([second.open().then(() => 'opened'), new Promise((resolve) => setTimeout(() => resolve('still waiting after 3 s'), 3000))])
  t.equal(opened, 'opened', 'the second process opens at once, beside the open transaction')
  await busy.query('COMMIT')
  t.same(ids(await second.after(0, 10)), [1, 2, 3], 'and reads the same log')
})

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: roles change; bans and mutes are kept per room and person, replaced, lifted, listed while in force`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { rooms } = store
    await rooms.create({ name: 'dev', skeleton: 'dev', title: 'dev', topic: '', visibility: 'public', createdBy: 'p-ann', createdAt: 1 })
    await rooms.addMember('dev', 'p-ann', 'owner', 'ann')
    await rooms.addMember('dev', 'p-bob', 'member', 'bob')
    t.equal(await rooms.setRole('dev', 'p-bob', 'moderator'), true, 'bob promoted')
    t.equal(await rooms.role('dev', 'p-bob'), 'moderator')
    t.equal(await rooms.setRole('dev', 'p-nobody', 'moderator'), false, 'not a member: nothing')
    t.equal(await rooms.role('dev', 'p-nobody'), undefined)
    const now = 1_000_000
    await rooms.restrict('dev', { person: 'p-cat', name: 'cat', kind: 'mute', until: now + 60_000, by: 'bob', reason: 'spam', at: now })
    await rooms.restrict('dev', { person: 'g-dan', name: 'dan', kind: 'ban', until: undefined, by: 'ann', reason: '', at: now + 1 })
    await rooms.restrict('dev', { person: 'p-eve', name: 'eve', kind: 'mute', until: now - 1, by: 'ann', reason: 'old', at: now + 2 })
    t.same(
      (await rooms.restrictions('dev', now)).map((r) => [r.kind, r.person, r.name, r.until, r.by, r.reason]),
      [
        ['mute', 'p-cat', 'cat', now + 60_000, 'bob', 'spam'],
        ['ban', 'g-dan', 'dan', undefined, 'ann', ''],
      ],
      'in force: the mute for a minute and the ban for good (a mute past its time is not listed)',
    )
    await rooms.restrict('dev', { person: 'p-cat', name: 'cat', kind: 'mute', until: now + 5_000, by: 'ann', reason: 'shorter', at: now + 3 })
    t.same(
      (await rooms.restrictions('dev', now)).map((r) => [r.person, r.until, r.by, r.reason]),
      [
        ['g-dan', undefined, 'ann', ''],
        ['p-cat', now + 5_000, 'ann', 'shorter'],
      ],
      'a mute again replaces the first',
    )
    t.same(await rooms.restrictions('other', now), [], 'per room')
    t.same(await rooms.barred('g-dan', now), ['dev'], 'the rooms a person is banned from')
    t.same(await rooms.barred('p-cat', now), [], 'a mute is no ban')
    t.same(await rooms.barred('g-dan', now), ['dev'])
    t.equal(await rooms.lift('dev', 'g-dan', 'ban'), true, 'lifted')
    t.equal(await rooms.lift('dev', 'g-dan', 'ban'), false, 'twice: nothing')
    t.equal(await rooms.lift('dev', 'p-cat', 'ban'), false, 'a mute is not a ban')
    t.same(
      (await rooms.restrictions('dev', now)).map((r) => r.person),
      ['p-cat'],
    )
  })
}

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: reports: one open report per person and message, listed oldest first per room, handled together (returned to tell their reporters), then reportable again`, { skip }, async (t) => {
    const store = await make(t)
    await store.open()
    t.teardown(() => store.close())
    const { rooms } = store
    await rooms.create({ name: 'dev', skeleton: 'dev', title: 'dev', topic: '', visibility: 'public', createdBy: 'p-ann', createdAt: 1 })
    t.equal(await rooms.report('dev', { ref: 7, reporter: 'p-bob', name: 'bob', reason: 'spam', at: 10 }), true, 'bob reports message 7')
    t.equal(await rooms.report('dev', { ref: 7, reporter: 'p-bob', name: 'bob', reason: 'again', at: 11 }), false, 'twice: nothing written')
    t.equal(await rooms.report('dev', { ref: 7, reporter: 'g-cat', name: 'cat', reason: '', at: 12 }), true, 'cat too')
    t.equal(await rooms.report('dev', { ref: 9, reporter: 'p-bob', name: 'bob', reason: 'rude', at: 13 }), true, 'and another message')
    t.equal(await rooms.report('other', { ref: 7, reporter: 'p-bob', name: 'bob', reason: 'x', at: 14 }), true, 'per room')
    t.same((await rooms.reports('dev', 10)).map((r) => [r.ref, r.name, r.reason]), [[7, 'bob', 'spam'], [7, 'cat', ''], [9, 'bob', 'rude']], 'open, oldest first')
    t.same((await rooms.reports('dev', 2)).length, 2, 'at most limit')
    const handled = await rooms.handleReports('dev', 7, 'ann', 'deleted', 20)
    t.same(handled.map((r) => [r.reporter, r.handledBy, r.outcome]).sort(), [['g-cat', 'ann', 'deleted'], ['p-bob', 'ann', 'deleted']], 'both reports of 7 handled, returned')
    t.same(await rooms.handleReports('dev', 7, 'ann', 'deleted', 21), [], 'handled once')
    t.same((await rooms.reports('dev', 10)).map((r) => r.ref), [9], 'open: only 9')
    t.equal(await rooms.report('dev', { ref: 7, reporter: 'p-bob', name: 'bob', reason: 'back', at: 30 }), true, 'a handled message can be reported again')
    t.same((await rooms.reports('other', 10)).map((r) => r.ref), [7])
  })
}

for (const [kind, opener, skip] of lasting) {
  t.test(`${kind} reopened: roles, bans, mutes and the room's rules are still there`, { skip }, async (t) => {
    const open = await opener(t)
    const first = open()
    await first.open()
    await first.rooms.create({ name: 'dev', skeleton: 'dev', title: 'dev', topic: '', visibility: 'public', createdBy: 'p-ann', createdAt: 1 })
    await first.rooms.addMember('dev', 'p-bob', 'member', 'bob')
    await first.rooms.setRole('dev', 'p-bob', 'moderator')
    await first.rooms.restrict('dev', { person: 'p-cat', name: 'cat', kind: 'ban', until: undefined, by: 'bob', reason: 'spam', at: 5 })
    await first.rooms.setRules('dev', { slow: 15, closed: true })
    await first.close()
    const again = open()
    await again.open()
    t.teardown(() => again.close())
    t.equal(await again.rooms.role('dev', 'p-bob'), 'moderator')
    t.match(await again.rooms.get('dev'), { slow: 15, closed: true }, 'its rules')
    t.same(
      (await again.rooms.restrictions('dev', 10)).map((r) => [r.kind, r.person, r.by, r.reason]),
      [['ban', 'p-cat', 'bob', 'spam']],
    )
  })
}
