import { once } from 'node:events'
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t from 'tap'
import type { EventDraft } from '../app/chatroom/event.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import { range, startServer, signInAt } from './helpers.js'

const signIn = (base: string, user: string) => signInAt(base, user, 'longpolling')


const messages = (from: number, to: number): EventDraft[] => range(from, to).map((i) => ({ type: 'message', user: 'ann', text: `m${i}` }))

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-file-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('deleted and edited-away words leave no trace in the SQLite files once acknowledged, running and after shutdown', async (t) => {
  const dir = tempDir(t)
  const server = await startServer(t, { DATA_DIR: dir, STORE: 'sqlite', RATE_LIMIT_MESSAGES: '1000' })
  const cookie = await signIn(server.base, 'ann')
  const send = async (url: string, body: Record<string, string>) => {
    const res = await fetch(`${server.base}${url}`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: res.status, body: (await res.json().catch(() => ({}))) as { id?: number } }
  }
  const kept = await send('/longpolling/room/messages', { text: 'keepsakeword stays' })
  const edited = await send('/longpolling/room/messages', { text: 'zebracornx said first' })
  const removed = await send('/longpolling/room/messages', { text: 'quokkaquill was here' })
  t.same([kept.status, edited.status, removed.status], [201, 201, 201])
  // Enough messages after them that the index has several segments (FTS5 merges, not rewrites).
  for (const i of range(1, 40)) await send('/longpolling/room/messages', { text: `filler ${i}` })
  t.equal((await send(`/room/messages/${edited.body.id}/edit`, { text: 'unicornfishy said then' })).status, 201, 'edited')
  t.equal((await send(`/room/messages/${edited.body.id}/edit`, { text: 'settled wording' })).status, 201, 'edited again')
  t.equal((await send(`/room/messages/${removed.body.id}/delete`, {})).status, 201, 'deleted')
  const files = () => readdirSync(dir).filter((f) => f.startsWith('chat.sqlite'))
  const holding = (word: string) => files().filter((f) => readFileSync(join(dir, f)).includes(word))
  t.ok(holding('keepsakeword').length > 0, 'a word still said is in the files (the scan reads them)')
  t.same([...holding('zebracornx'), ...holding('unicornfishy')], [], 'the words edited away (twice): in no file, while it runs')
  t.same(holding('quokkaquill'), [], 'the words deleted: in no file, while it runs')
  const search = await fetch(`${server.base}/search?q=zebracornx`, { headers: { cookie, accept: 'application/json' } })
  t.same(((await search.json()) as { results?: unknown[] }).results ?? [], [], 'and search finds none of them')
  server.child.kill('SIGTERM')
  await once(server.child, 'exit')
  t.ok(holding('keepsakeword').length > 0)
  t.same([...holding('zebracornx'), ...holding('unicornfishy'), ...holding('quokkaquill')], [], 'after shutdown: none in the file')
})

t.test('the SQLite file deleted under a running server: nothing more is acknowledged, /readyz says so, a restart loses nothing acknowledged', async (t) => {
  const dir = tempDir(t)
  const env = { DATA_DIR: dir, STORE: 'sqlite', RATE_LIMIT_MESSAGES: '1000' }
  const first = await startServer(t, env)
  const cookie = await signIn(first.base, 'ann')
  const say = (text: string) =>
    fetch(`${first.base}/longpolling/room/messages`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ text }) })
  const acknowledged: string[] = []
  for (const i of range(1, 5)) {
    const res = await say(`before ${i}`)
    t.equal(res.status, 201)
    if (res.status === 201) acknowledged.push(`before ${i}`)
  }
  t.equal((await fetch(`${first.base}/readyz`)).status, 200)

  unlinkSync(join(dir, 'chat.sqlite'))
  const after: number[] = []
  for (const i of range(1, 20)) {
    const res = await say(`after ${i}`)
    after.push(res.status)
    if (res.status === 201) acknowledged.push(`after ${i}`)
  }
  t.same(after, range(1, 20).map(() => 503), 'every send after the deletion: 503, not 201')
  t.equal((await fetch(`${first.base}/readyz`)).status, 503, '/readyz: not ready')
  const lines = first.output().split('\n').filter((line) => /chat\.sqlite was deleted/.test(line))
  t.equal(lines.length, 1, 'one error line says so')
  t.match(lines[0], /"level":50.*restarted/, 'an error, asking for a restart')
  first.child.kill('SIGTERM')
  await once(first.child, 'exit')

  const second = await startServer(t, env)
  const history = await fetch(`${second.base}/room/history?limit=200`, { headers: { cookie: await signIn(second.base, 'bob') } })
  const texts = ((await history.json()) as { events: { text?: string }[] }).events.map((e) => e.text)
  t.same(acknowledged.filter((text) => !texts.includes(text)), [], 'every message acknowledged with 201 is there after the restart')
  t.equal(acknowledged.length, 5)
  t.equal((await fetch(`${second.base}/readyz`)).status, 200)
  second.child.kill('SIGTERM')
  await once(second.child, 'exit')
})

t.test('the SQLite file replaced by another (renamed over it): nothing more is acknowledged; the log as it stood is saved beside it', async (t) => {
  const dir = tempDir(t)
  const told: string[] = []
  const store = new SqliteStore(dir, { onError: (error) => told.push(error.message) })
  await store.open()
  t.teardown(() => store.close())
  await store.append(messages(1, 3))
  const epoch = store.epoch

  const elsewhere = tempDir(t)
  const other = new SqliteStore(elsewhere)
  await other.open()
  await other.close()
  renameSync(join(elsewhere, 'chat.sqlite'), join(dir, 'chat.sqlite'))

  await t.rejects(store.append(messages(4, 4)), /no longer the file this process opened: restart the server/)
  await t.rejects(store.append(messages(4, 4)), /restart the server/, 'and stays refused')
  t.equal(await store.ready(), false)
  await t.rejects(store.sessions.create('h', { user: '{}', createdAt: 1, seenAt: 1, address: 'a', account: '', userAgent: '' }), /restart the server/, 'sign-ins are refused too')
  t.equal(told.length, 1, 'told once')
  t.match(told[0], /was replaced by another file.*saved as .*chat\.sqlite\.rescued-.*restarted/)
  await store.close()

  const rescued = readdirSync(dir).filter((name) => name.startsWith('chat.sqlite.rescued-'))
  t.equal(rescued.length, 1, 'one copy saved')
  const copy = new Database(join(dir, rescued[0]!), { readonly: true })
  t.same(copy.prepare("SELECT id FROM room_events WHERE room = 'lobby' ORDER BY id").pluck().all(), [1, 2, 3], 'with every acknowledged event')
  t.equal(copy.prepare("SELECT epoch FROM room_logs WHERE room = 'lobby'").pluck().get(), epoch)
  copy.close()
  const reopened = new SqliteStore(dir)
  await reopened.open()
  t.teardown(() => reopened.close())
  t.equal(reopened.epoch, other.epoch, 'the replacement is not overwritten')
})

t.test('the write-ahead file deleted under a running store: what it held is saved into the main file; nothing more is acknowledged', async (t) => {
  const dir = tempDir(t)
  const told: string[] = []
  const store = new SqliteStore(dir, { onError: (error) => told.push(error.message) })
  await store.open()
  await store.append(messages(1, 3))
  unlinkSync(join(dir, 'chat.sqlite-wal'))
  await t.rejects(store.append(messages(4, 4)), /restart the server/)
  t.equal(await store.ready(), false)
  t.equal(told.length, 1)
  t.match(told[0], /write-ahead file .*chat\.sqlite-wal was deleted or replaced.*saved in .*chat\.sqlite\./)
  await store.close()
  const reopened = new SqliteStore(dir)
  await reopened.open()
  t.teardown(() => reopened.close())
  t.equal(await reopened.lastId(), 3, 'the three acknowledged events survive the restart')
  t.same((await reopened.append(messages(4, 4))).map((s) => s.event.id), [4])
})

t.test('the SQLite file deleted under a running store: registrations and other account writes are refused at once, not lost at the restart', async (t) => {
  const dir = tempDir(t)
  const told: string[] = []
  const store = new SqliteStore(dir, { onError: (error) => told.push(error.message) })
  await store.open()
  const ann = { id: 'acct-ann', name: 'ann', skeleton: 'ann', passwordHash: '$argon2id$ann', createdAt: 1 }
  t.equal(await store.accounts.create(ann), true)
  unlinkSync(join(dir, 'chat.sqlite'))
  // No message sent since: the account write itself looks at the file.
  await t.rejects(store.accounts.create({ ...ann, id: 'acct-bob', name: 'bob', skeleton: 'bob' }), /restart the server/, 'a registration is refused')
  await t.rejects(store.accounts.setPassword(ann.id, '$argon2id$new'), /restart the server/)
  await t.rejects(store.accounts.addPasskey({ id: 'cred', accountId: ann.id, publicKey: 'pk', counter: 0, transports: [], createdAt: 2, lastUsedAt: null }), /restart the server/)
  await t.rejects(store.accounts.usePasskey('cred', 1, 3), /restart the server/)
  await t.rejects(store.accounts.removePasskey(ann.id, 'cred'), /restart the server/)
  await t.rejects(store.accounts.link('github', '42', ann.id), /restart the server/)
  await t.rejects(store.sessions.endAccount(ann.id), /restart the server/, 'signing out everywhere too')
  t.equal((await store.accounts.byId(ann.id))!.name, 'ann', 'reads still answer')
  t.equal(told.length, 1, 'told once')
  await store.close()
  const reopened = new SqliteStore(dir)
  await reopened.open()
  t.teardown(() => reopened.close())
  t.equal((await reopened.accounts.byId(ann.id))!.passwordHash, '$argon2id$ann', 'the account made before is there, its password unchanged')
  t.equal(await reopened.accounts.bySkeleton('bob'), undefined, 'the refused one was never written')
})

t.test('search finds a message the moment it is acknowledged, and after a crash (SIGKILL) before the search index took it', async (t) => {
  // Messages go into the search index a moment after their commit, several at once; a search
  // indexes what waits first, and what waits is marked in the message's own commit.
  const dir = tempDir(t)
  const env = { DATA_DIR: dir, STORE: 'sqlite', RATE_LIMIT_MESSAGES: '1000' }
  const first = await startServer(t, env)
  const cookie = await signIn(first.base, 'ann')
  const say = async (base: string, text: string) =>
    (await fetch(`${base}/longpolling/room/messages`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ text }) })).status
  const found = async (base: string, words: string) => {
    const res = await fetch(`${base}/search?q=${encodeURIComponent(words)}`, { headers: { cookie, accept: 'application/json' } })
    return (((await res.json()) as { results?: { text?: string }[] }).results ?? []).map((r) => r.text).sort()
  }
  t.same([await say(first.base, 'walrusquill one'), await say(first.base, 'walrusquill two')], [201, 201])
  t.same(await found(first.base, 'walrusquill'), ['walrusquill one', 'walrusquill two'], 'found at once')

  t.same([await say(first.base, 'ibexlantern one'), await say(first.base, 'ibexlantern two')], [201, 201])
  first.child.kill('SIGKILL')
  await once(first.child, 'exit')
  const second = await startServer(t, env)
  t.same(await found(second.base, 'ibexlantern'), ['ibexlantern one', 'ibexlantern two'], 'acknowledged just before the crash: found after the restart')
  t.same(await found(second.base, 'walrusquill'), ['walrusquill one', 'walrusquill two'], 'and the ones indexed before it, once each')
  second.child.kill('SIGTERM')
  await once(second.child, 'exit')
})
