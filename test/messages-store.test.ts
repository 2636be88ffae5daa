import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import t from 'tap'
import type { EventDraft } from '../app/chatroom/event.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { PostgresStore } from '../app/chatroom/store/postgres.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import { LOBBY, type Store } from '../app/chatroom/store/store.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { skipUnless } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'

// What every store promises about messages: a send's client id is unique per sender, edits and
// deletions rewrite the message they refer to (a deleted text leaves the store), and search.

const noPostgres = skipUnless(await havePostgres(), 'PostgreSQL is not running')

function tempDir(t: { teardown(fn: () => unknown): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-messages-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Each store, and how to open it again on the same data (memory: the same object). */
const kinds: [string, (t: { teardown(fn: () => unknown): void }) => Promise<() => Store>, string | false][] = [
  [
    'memory',
    async () => {
      const store = new MemoryStore()
      return () => store
    },
    false,
  ],
  [
    'sqlite',
    async (t) => {
      const dir = tempDir(t)
      return () => new SqliteStore(dir)
    },
    false,
  ],
  [
    'postgres',
    async (t) => {
      const url = await freshDatabase(t)
      return () => new PostgresStore({ url })
    },
    noPostgres,
  ],
]

const say = (sender: string, text: string, clientId?: string): EventDraft => ({ type: 'message', user: sender, text, sender, clientId })
const edit = (sender: string, ref: number, text: string): EventDraft => ({ type: 'edit', user: sender, ref, text, sender })
const del = (sender: string, ref: number): EventDraft => ({ type: 'delete', user: sender, ref, sender })

async function opened(t: { teardown(fn: () => unknown): void }, open: () => Store): Promise<Store> {
  const store = open()
  await store.open()
  t.teardown(() => store.close())
  return store
}

for (const [kind, make, skip] of kinds) {
  t.test(`${kind}: a resend of a clientId answers the first event and takes no id; the same id from another sender is another message`, { skip }, async (t) => {
    const open = await make(t)
    const store = await opened(t, open)
    const [first] = await store.append([say('ann', 'hello', 'c-00000001')])
    t.equal(first!.event.id, 1)
    t.equal(first!.event.clientId, 'c-00000001', 'the event carries its clientId (the page matches its outbox by it)')
    t.notOk(first!.duplicate)

    const [again] = await store.append([say('ann', 'hello', 'c-00000001')])
    t.equal(again!.duplicate, true, 'a resend is answered as one')
    t.equal(again!.event.id, 1, 'with the first event')
    t.equal(await store.lastId(), 1, 'no id was taken')

    const [bob] = await store.append([say('bob', 'hi', 'c-00000001')])
    t.equal(bob!.event.id, 2, "another sender's clientId is theirs")
    // In one batch: a message, its resend, and a message without a clientId.
    const batch = await store.append([say('ann', 'one', 'c-00000002'), say('ann', 'one', 'c-00000002'), say('ann', 'two')])
    t.same(
      batch.map((s) => [s.event.id, s.duplicate ?? false]),
      [
        [3, false],
        [3, true],
        [4, false],
      ],
      'a resend within a batch answers the first too, and the ids stay consecutive',
    )
    t.same((await store.after(0, 10)).map((s) => s.event.text), ['hello', 'hi', 'one', 'two'], 'the log holds each message once')
    t.same((await store.append([say('ann', 'three')]))[0]!.event.id, 5, 'ids go on with no gap')

    // In another room, the same clientId is another message.
    const other = await store.log('other')
    t.equal((await other.append([say('ann', 'elsewhere', 'c-00000001')]))[0]!.event.id, 1)
  })

  t.test(`${kind}: an edit rewrites the sender's message; a deletion removes its text (and its edits') from the store`, { skip }, async (t) => {
    const open = await make(t)
    const store = await opened(t, open)
    await store.append([say('ann', 'secret plan', 'c-10000001'), say('bob', 'reply')])
    const [edited] = await store.append([edit('ann', 1, 'better plan')])
    t.match(edited!.event, { id: 3, type: 'edit', ref: 1, text: 'better plan', user: 'ann' }, 'the edit is an event of its own')
    const message = await store.message(1)
    t.match(message, { stored: { event: { id: 1, text: 'better plan', edited: edited!.event.timestamp } }, sender: 'ann' }, 'the message reads as edited')
    t.same((await store.after(0, 1))[0]!.event.text, 'better plan', 'history has the new text')
    const [again] = await store.append([say('ann', 'secret plan', 'c-10000001')])
    t.equal(again!.duplicate, true, 'a resend after an edit still answers the first event')
    t.equal(again!.event.text, 'better plan', 'as it stands now')

    const [stranger] = await store.append([edit('bob', 1, 'hijacked')])
    t.equal(stranger!.event.type, 'edit', "someone else's edit is logged as the room checked it (the room refuses it first)")
    t.equal((await store.message(1))!.stored.event.text, 'better plan', 'but it changes nothing')

    const [deleted] = await store.append([del('ann', 1)])
    t.match(deleted!.event, { type: 'delete', ref: 1 })
    const gone = await store.message(1)
    t.equal(gone!.stored.event.deleted, true)
    t.equal(gone!.stored.event.text, undefined, 'the text is gone from the message')
    const log = await store.after(0, 100)
    t.notOk(
      log.some((s) => s.json.includes('secret') || s.json.includes('better plan')),
      'no event of the log holds the deleted text, the edit either',
    )
    const [late] = await store.append([edit('ann', 1, 'resurrected')])
    t.equal(late!.event.text, undefined, 'an edit after the deletion keeps no text')
    t.equal((await store.message(1))!.stored.event.deleted, true, 'and the message stays deleted')
    t.equal(await store.message(2).then((m) => m?.sender), 'bob')
    t.equal(await store.message(3), undefined, 'an edit is not a message')
    t.equal(await store.message(99), undefined)

    // After a restart the deletion holds and the search does not find it.
    await store.close()
    const reopened = await opened(t, open)
    t.equal((await reopened.message(1))!.stored.event.deleted, true, 'the deletion outlives the process')
    t.same(await reopened.search({ rooms: [LOBBY], words: 'plan', limit: 10 }), [], 'search never finds a deleted text')
    t.same(await reopened.search({ rooms: [LOBBY], words: 'secret', limit: 10 }), [])
    const [resend] = await reopened.append([say('ann', 'secret plan', 'c-10000001')])
    t.equal(resend!.duplicate, true, 'a resend after a restart answers the first event, deleted as it is')
    t.equal(resend!.event.id, 1)
  })

  t.test(`${kind}: an edited message keeps no text edited away: its earlier edits carry its newest text, in one batch or across batches`, { skip }, async (t) => {
    const open = await make(t)
    const store = await opened(t, open)
    await store.append([say('ann', 'first words')])
    await store.append([edit('ann', 1, 'second words')])
    await store.append([edit('ann', 1, 'third words'), edit('ann', 1, 'fourth words')])
    const texts = async () => (await store.after(0, 100)).map((s) => `${s.event.type} ${s.event.text}`)
    t.same(await texts(), ['message fourth words', 'edit fourth words', 'edit fourth words', 'edit fourth words'], 'every edit of it says what it says now')
    // A message sent and edited in one batch.
    await store.append([say('bob', 'draft one'), edit('bob', 5, 'draft two'), edit('bob', 5, 'final')])
    t.same((await texts()).slice(4), ['message final', 'edit final', 'edit final'])
    t.same(await store.search({ rooms: [LOBBY], words: 'first', limit: 10 }), [], 'search finds no word edited away')
    t.same(await store.search({ rooms: [LOBBY], words: 'draft', limit: 10 }), [])
    t.equal((await store.search({ rooms: [LOBBY], words: 'fourth', limit: 10 })).length, 1)
    await store.close()
    const reopened = await opened(t, open)
    t.notOk((await reopened.after(0, 100)).some((s) => /first|second|third|draft/.test(s.json)), 'after a restart too')
  })

  t.test(`${kind}: search finds messages by every word (the last as a prefix), by person and time, newest first, only in the rooms given`, { skip }, async (t) => {
    const open = await make(t)
    const store = await opened(t, open)
    const lobby = await store.log(LOBBY)
    await lobby.append([say('Ann', 'The deploy broke staging'), say('bob', 'deploy fixed'), { type: 'join', user: 'deploy' }])
    const secret = await store.log('secret')
    await sleep(5)
    await secret.append([say('ann', 'deploy keys are in the vault')])
    const words = async (query: Partial<Parameters<Store['search']>[0]>) =>
      (await store.search({ rooms: [LOBBY], words: '', limit: 10, ...query })).map((h) => `${h.room}:${h.stored.event.text}`)

    t.same(await words({ words: 'deploy' }), ['lobby:deploy fixed', 'lobby:The deploy broke staging'], 'newest first, messages only, the lobby only')
    t.same(await words({ words: 'deploy', rooms: [LOBBY, 'secret'] }), ['secret:deploy keys are in the vault', 'lobby:deploy fixed', 'lobby:The deploy broke staging'])
    t.same(await words({ words: 'DEPLOY broke' }), ['lobby:The deploy broke staging'], 'every word, case folded')
    t.same(await words({ words: 'stag' }), ['lobby:The deploy broke staging'], 'the last word as a prefix')
    t.same(await words({ words: 'deploy', user: 'ann' }), ['lobby:The deploy broke staging'], 'by person, case folded')
    t.same(await words({ words: 'deploy', limit: 1 }), ['lobby:deploy fixed'], 'bounded')
    t.same(await words({ words: '"* OR NEAR(' }), [], 'search syntax typed is only words')
    t.same(await words({ words: '   ' }), [])
    const [first] = await store.search({ rooms: [LOBBY], words: 'broke', limit: 1 })
    t.same(await words({ words: 'deploy', before: first!.stored.event.timestamp }), [], 'before a time')
    t.same(await words({ words: 'deploy', after: first!.stored.event.timestamp - 1 }), ['lobby:deploy fixed', 'lobby:The deploy broke staging'], 'after a time')

    await lobby.append([{ type: 'edit', user: 'bob', ref: 2, text: 'rollback done', sender: 'bob' }])
    t.same(await words({ words: 'rollback' }), ['lobby:rollback done'], 'an edit is found by its new words')
    t.same(await words({ words: 'fixed' }), [], 'and no longer by its old ones')
  })
}

t.test('sqlite: a file made before messages had senders opens, gains the columns and indexes its messages once', async (t) => {
  const dir = tempDir(t)
  const first = new SqliteStore(dir)
  await first.open()
  await first.append([say('ann', 'old words here')])
  await first.close()
  // As an older version left it: no sender, client id, ref or search index.
  const Database = (await import('better-sqlite3')).default
  const db = new Database(join(dir, 'chat.sqlite'))
  db.exec('DROP TABLE message_search; DROP INDEX room_events_client; DROP INDEX room_events_ref')
  for (const column of ['sender', 'client_id', 'ref', 'search_row']) db.exec(`ALTER TABLE room_events DROP COLUMN ${column}`)
  db.close()
  const store = new SqliteStore(dir)
  await store.open()
  t.teardown(() => store.close())
  t.same((await store.search({ rooms: [LOBBY], words: 'words', limit: 5 })).map((h) => h.stored.event.text), ['old words here'], 'old messages are found')
  t.same((await store.append([say('ann', 'new', 'c-20000001'), say('ann', 'new', 'c-20000001')])).map((s) => s.event.id), [2, 2])
  t.ok(readdirSync(dir).includes('chat.sqlite'))
  t.ok(readFileSync(join(dir, 'chat.sqlite')).length > 0)
})

t.test('postgres: two processes resending the same clientId at once post it once', { skip: noPostgres }, async (t) => {
  const url = await freshDatabase(t)
  const a = new PostgresStore({ url })
  const b = new PostgresStore({ url })
  await a.open()
  await b.open()
  t.teardown(() => Promise.all([a.close(), b.close()]))
  for (let round = 0; round < 20; round++) {
    const clientId = `race-${String(round).padStart(4, '0')}`
    const answers = await Promise.all([a.append([say('ann', `m${round}`, clientId)]), b.append([say('ann', `m${round}`, clientId)])])
    const [x, y] = answers.map((r) => r[0]!)
    t.equal(x!.event.id, y!.event.id, `round ${round}: both answer one event`)
    t.equal(Number(x!.duplicate ?? false) + Number(y!.duplicate ?? false), 1, 'one of them as a resend')
  }
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  t.teardown(() => client.end())
  const { rows } = await client.query<{ n: string; last: string }>('SELECT count(*) AS n, max(id) AS last FROM chat_room_events')
  t.same(rows[0], { n: '20', last: '20' }, 'twenty messages, ids 1 to 20 with no gap')
})
