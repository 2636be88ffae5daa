import { closeSync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs'
import { open as openFile, readFile, rename, rm } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import { withoutText, withText, type EventDraft, type StoredEvent } from '../event.js'
import {
  fromJson,
  LOBBY,
  LobbyMethods,
  newEpoch,
  planAppend,
  searchableText,
  searchTerms,
  type AppendPlan,
  type FileRecord,
  type FileStore,
  type SearchHit,
  type SearchQuery,
  type SentMessage,
  type AccountRecord,
  type AccountStore,
  type PasskeyRecord,
  type RoomLog,
  type RoomRecord,
  type RoomMember,
  type RoomRole,
  type RoomStore,
  type RoomVisibility,
  type Restriction,
  type SessionRecord,
  type SessionStore,
  type Store,
  type Report,
  withRules,
} from './store.js'

export interface SqliteStoreOptions {
  /** Told once, when the file is found deleted or replaced under the running server (logged by the app). */
  onError?: (error: Error) => void
}

/** How long a committed message may wait before it is indexed for search (a search indexes what waits first). */
const INDEX_DELAY_MS = 1000
/** Messages indexed per transaction. */
const INDEX_BATCH = 1000

/** Which file a path names now (undefined: none). */
function fileAt(path: string): { dev: bigint; ino: bigint } | undefined {
  const stat = statSync(path, { bigint: true, throwIfNoEntry: false })
  return stat && { dev: stat.dev, ino: stat.ino }
}

const sameFile = (a: { dev: bigint; ino: bigint } | undefined, b: { dev: bigint; ino: bigint } | undefined) =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino

/** The two people of a direct room in one order, whichever order they are given in. */
const pair = (a: string, b: string): [string, string] => (a < b ? [a, b] : [b, a])

/** The statements every room's log shares (a room is a parameter, not a table). */
interface LogStatements {
  /** Every batch of a tick, of every room, in one transaction: each planned against what the ones before it wrote. */
  readonly appendAll: (batches: { room: string; from: number; drafts: readonly EventDraft[] }[], at: number) => AppendPlan[]
  readonly selectMessage: Database.Statement<[string, number], { json: string; sender: string | null }>
  readonly selectAfter: Database.Statement<[string, number, number], { json: string }>
  readonly selectBefore: Database.Statement<[string, number, number], { json: string }>
  readonly selectThread: Database.Statement<[string, number, number, number], { json: string }>
  readonly pruneThrough: (room: string, last: number, through: number) => number
  /** Indexes for search up to `limit` messages that wait for it (see SqliteStore.indexSoon); returns how many it took. */
  readonly indexPending: (limit: number) => number
  readonly atOf: Database.Statement<[string, number], number>
  readonly firstId: Database.Statement<[string], number | null>
}

interface PendingAppend {
  log: SqliteLog
  drafts: readonly EventDraft[]
  resolve: (stored: StoredEvent[]) => void
  reject: (error: unknown) => void
}

/**
 * The store's commits: the appends of every room in one tick wait here and go in one
 * transaction, each log's batch numbered from its next id; acknowledged only if the file
 * committed to is still the one a restart opens. On failure nothing is taken: no id is given
 * out, every waiting append is refused.
 */
class Committer {
  private pending: PendingAppend[] = []
  constructor(
    private readonly statements: LogStatements,
    /** Throws unless the file is still the one opened (see SqliteStore.intact). */
    private readonly check: () => void,
    /** After a commit that rewrote or removed a text: its old bytes leave the files (see SqliteStore.scrub). */
    private readonly scrub: () => void,
    /** After a commit that wrote messages: they are indexed for search soon, several in one transaction (see SqliteStore.indexSoon). */
    private readonly wrote: () => void,
  ) {}

  add(log: SqliteLog, drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    return new Promise((resolve, reject) => {
      if (this.pending.push({ log, drafts, resolve, reject }) === 1) setImmediate(this.commit)
    })
  }

  private readonly commit = (): void => {
    const batch = this.pending
    this.pending = []
    // A log's second batch in this commit goes on from its first (appendAll keeps count per room).
    const batches = batch.map(({ log, drafts }) => ({ room: log.room, from: log.lastCommitted + 1, drafts }))
    let plans: AppendPlan[]
    try {
      this.check()
      // Numbered in the transaction: a batch's resends take no id, so the next batch of the log starts where it ended.
      plans = this.statements.appendAll(batches, Date.now())
      this.check()
      // An edit or a deletion is acknowledged once the words it took away are gone from the disk.
      if (plans.some((plan) => plan.changed.size > 0)) this.scrub()
      if (plans.some((plan) => plan.rows.length > 0)) this.wrote()
    } catch (error) {
      for (const p of batch) p.reject(error)
      return
    }
    for (let i = 0; i < batch.length; i++) {
      const { log } = batch[i]!
      log.committed(Math.max(log.lastCommitted, plans[i]!.last))
      batch[i]!.resolve(plans[i]!.results)
    }
  }
}

/**
 * One room's log in the file. Its newest id is kept here (one process owns the file); the
 * table's last_id keeps it only across pruning, so a commit writes the events and nothing else.
 */
class SqliteLog implements RoomLog {
  constructor(
    readonly room: string,
    readonly epoch: string,
    private last: number,
    private readonly s: LogStatements,
    private readonly committer: Committer,
    private readonly lost: () => boolean,
  ) {}

  /**
   * Joins the store's next commit: the appends of every room in one tick share one transaction
   * (one sync to disk), so a thousand busy rooms cost one commit a tick, not a thousand.
   */
  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    return this.committer.add(this, drafts)
  }

  /** The newest id committed (ids of a batch are taken only once its commit stands). */
  get lastCommitted(): number {
    return this.last
  }

  committed(last: number): void {
    this.last = last
  }

  after(after: number, limit: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.s.selectAfter.all(this.room, after, limit).map((row) => fromJson(row.json)))
  }

  before(before: number, limit: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.s.selectBefore.all(this.room, before, limit).map((row) => fromJson(row.json)))
  }

  lastId(): Promise<number> {
    return Promise.resolve(this.last)
  }

  message(id: number): Promise<SentMessage | undefined> {
    const row = this.s.selectMessage.get(this.room, id)
    const stored = row && fromJson(row.json)
    return Promise.resolve(stored?.event.type === 'message' ? { stored, sender: row!.sender ?? undefined } : undefined)
  }

  thread(root: number, after: number, limit: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.s.selectThread.all(this.room, root, Math.max(root, after), limit).map((row) => fromJson(row.json)))
  }

  prune(maxEvents: number, maxAgeMs: number): Promise<number> {
    if (this.lost()) return Promise.resolve(0)
    let through = maxEvents > 0 ? this.last - maxEvents : 0
    if (maxAgeMs > 0) through = Math.max(through, this.olderThan(Date.now() - maxAgeMs))
    return Promise.resolve(through > 0 ? this.s.pruneThrough(this.room, this.last, through) : 0)
  }

  /**
   * The newest id committed before `cutoff`: a binary search by id, since ids and commit times
   * rise together (a clock set back may leave a few old events a round longer).
   */
  private olderThan(cutoff: number): number {
    let lo = this.s.firstId.get(this.room) ?? 0
    let hi = this.last
    if (lo === 0 || (this.s.atOf.get(this.room, lo) ?? Infinity) >= cutoff) return 0
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2)
      if ((this.s.atOf.get(this.room, mid) ?? Infinity) < cutoff) lo = mid
      else hi = mid - 1
    }
    return lo
  }
}

/**
 * The default store: one SQLite file in `dir`, made on first start (STORE=sqlite). One process
 * owns it (an exclusive lock). better-sqlite3 is synchronous, so statements are prepared once and a batch is one
 * transaction; WAL with synchronous=FULL makes a commit durable before it is acknowledged.
 * Every room's log is in one table keyed by (room, id). A file deleted or replaced under it is
 * noticed before a commit is acknowledged (see intact).
 */
export class SqliteStore extends LobbyMethods implements Store {
  readonly file: string
  readonly sessions: SessionStore
  readonly accounts: AccountStore
  readonly rooms: RoomStore
  readonly files: FileStore
  private readonly db: Database.Database
  /** Where file bytes are kept: DATA_DIR/files, one file per id (and its thumbnail), written whole before their row. */
  private readonly filesDir: string
  private readonly options: SqliteStoreOptions
  /** The files this connection writes to (the write-ahead one once it exists). */
  private readonly opened: { dev: bigint; ino: bigint } | undefined
  private wal: { dev: bigint; ino: bigint } | undefined
  /** Set once the files at the paths are no longer the ones written to: then nothing more is acknowledged. */
  private lost: Error | undefined
  private readonly statements: LogStatements
  private readonly committer: Committer
  /** The logs asked for so far (the lobby's from open on). */
  private readonly loaded = new Map<string, SqliteLog>()
  private lobby: SqliteLog | undefined

  constructor(dir: string, options: SqliteStoreOptions = {}) {
    super()
    mkdirSync(dir, { recursive: true })
    this.file = join(dir, 'chat.sqlite')
    this.filesDir = join(dir, 'files')
    mkdirSync(this.filesDir, { recursive: true })
    this.options = options
    this.db = new Database(this.file)
    this.opened = fileAt(this.file)
    // One process owns the file: a second one started on the same DATA_DIR fails at start
    // ("database is locked") instead of handing out the same ids.
    this.db.pragma('locking_mode = EXCLUSIVE')
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    // What a deletion or an edit takes away is overwritten with zeros in the file's pages, not
    // left in free space (the write-ahead file is emptied after each: see scrub).
    this.db.pragma('secure_delete = ON')
    this.db.exec(`
      -- last_id: the newest id given out, written when pruning (a commit writes only its events).
      CREATE TABLE IF NOT EXISTS room_logs (room TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_id INTEGER NOT NULL);
      -- No index on at: pruning by age finds its cutoff by id (one page less to write per commit).
      CREATE TABLE IF NOT EXISTS room_events (room TEXT NOT NULL, id INTEGER NOT NULL, at INTEGER NOT NULL, json TEXT NOT NULL,
        PRIMARY KEY (room, id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS rooms (name TEXT PRIMARY KEY, skeleton TEXT NOT NULL UNIQUE, title TEXT NOT NULL, topic TEXT NOT NULL,
        visibility TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL, slow INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0);
      -- Ordered by rowid as well: members added in the same millisecond keep their order.
      CREATE TABLE IF NOT EXISTS room_members (room TEXT NOT NULL, person TEXT NOT NULL, role TEXT NOT NULL, joined_at INTEGER NOT NULL,
        PRIMARY KEY (room, person));
      CREATE INDEX IF NOT EXISTS room_members_person ON room_members (person);
      -- A ban or a mute of a person in a room (until NULL: for good).
      CREATE TABLE IF NOT EXISTS room_restrictions (room TEXT NOT NULL, person TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        until INTEGER, by TEXT NOT NULL, reason TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (room, kind, person));
      CREATE INDEX IF NOT EXISTS room_restrictions_person ON room_restrictions (person, kind);
      -- A report of a message to the room's moderators (handled_by NULL: open); one open report per person and message.
      CREATE TABLE IF NOT EXISTS room_reports (room TEXT NOT NULL, ref INTEGER NOT NULL, reporter TEXT NOT NULL, name TEXT NOT NULL, reason TEXT NOT NULL,
        at INTEGER NOT NULL, handled_by TEXT, outcome TEXT, handled_at INTEGER);
      CREATE UNIQUE INDEX IF NOT EXISTS room_reports_open ON room_reports (room, ref, reporter) WHERE handled_by IS NULL;
      -- A file sent in a message (its bytes in DATA_DIR/files); message NULL: not committed yet.
      CREATE TABLE IF NOT EXISTS room_files (room TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, size INTEGER NOT NULL,
        type TEXT NOT NULL, width INTEGER, height INTEGER, at INTEGER NOT NULL, message INTEGER, thumbnail INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (room, id));
      CREATE INDEX IF NOT EXISTS room_files_owner ON room_files (owner, at);
      CREATE TABLE IF NOT EXISTS read_markers (room TEXT NOT NULL, person TEXT NOT NULL, last_read INTEGER NOT NULL,
        PRIMARY KEY (room, person)) WITHOUT ROWID;
      -- (a, b): the two people in JavaScript's string order (a < b), so each pair has one row.
      CREATE TABLE IF NOT EXISTS direct_rooms (a TEXT NOT NULL, b TEXT NOT NULL, room TEXT NOT NULL, PRIMARY KEY (a, b)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS sessions (hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL,
        address TEXT NOT NULL DEFAULT '', account TEXT NOT NULL DEFAULT '', user_agent TEXT NOT NULL DEFAULT '');
      CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL, skeleton TEXT NOT NULL UNIQUE, password_hash TEXT, email_hash TEXT,
        created_at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS passkeys (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts (id), public_key TEXT NOT NULL,
        counter INTEGER NOT NULL, transports TEXT NOT NULL, created_at INTEGER NOT NULL, last_used_at INTEGER);
      CREATE INDEX IF NOT EXISTS passkeys_account ON passkeys (account_id);
      CREATE TABLE IF NOT EXISTS account_links (provider TEXT NOT NULL, provider_user_id TEXT NOT NULL, account_id TEXT NOT NULL,
        PRIMARY KEY (provider, provider_user_id));
    `)
    try {
      this.moveOneRoomLog()
    } catch (error) {
      this.db.close()
      throw error
    }
    // Files made before sessions were bounded per address, or belonged to accounts.
    const columns = new Set(this.db.prepare<[], string>("SELECT name FROM pragma_table_info('sessions')").pluck().all())
    for (const column of ['address', 'account', 'user_agent']) {
      if (!columns.has(column)) this.db.exec(`ALTER TABLE sessions ADD COLUMN ${column} TEXT NOT NULL DEFAULT ''`)
    }
    // Files made before rooms had rules (slow mode, closed).
    const roomColumns = new Set(this.db.prepare<[], string>("SELECT name FROM pragma_table_info('rooms')").pluck().all())
    for (const column of ['slow', 'closed']) if (!roomColumns.has(column)) this.db.exec(`ALTER TABLE rooms ADD COLUMN ${column} INTEGER NOT NULL DEFAULT 0`)
    // Files made before members' names were kept.
    if (!this.db.prepare<[], string>("SELECT name FROM pragma_table_info('room_members')").pluck().all().includes('name')) {
      this.db.exec(`ALTER TABLE room_members ADD COLUMN name TEXT NOT NULL DEFAULT ''`)
    }
    this.db.exec(`
      CREATE INDEX IF NOT EXISTS sessions_address ON sessions (address, seen_at);
      -- Most sessions are guests' (''): only accounts' are looked up by account.
      CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account, seen_at) WHERE account <> '';
    `)
    this.addMessageColumns()
    this.sessions = this.sessionStore()
    this.accounts = this.accountStore()
    this.rooms = this.roomStore()
    this.files = this.fileStore()
    this.statements = this.logStatements()
    this.committer = new Committer(
      this.statements,
      () => {
        if (!this.intact()) throw this.lost
      },
      () => this.scrub(),
      () => this.indexSoon(),
    )
    // Messages a crash left out of the search index.
    this.indexSoon()
  }

  /** When the messages waiting for the search index are indexed, unless a search comes first. */
  private indexTimer: NodeJS.Timeout | undefined
  /** Whether messages may wait for the index (at open: a crash may have left some). */
  private unindexed = true

  /**
   * Messages committed since the last indexing go into the search index within INDEX_DELAY_MS,
   * all in one transaction: at a trickle of one message per commit, indexing each in its own
   * commit cost as much as the rest of the commit but its sync to disk. A search indexes what
   * waits first, so it finds every message acknowledged before it.
   */
  private indexSoon(): void {
    this.unindexed = true
    this.indexTimer ??= setTimeout(() => {
      this.indexTimer = undefined
      try {
        this.indexWaiting()
      } catch (error) {
        // The messages stay marked: the next commit, search or start indexes them.
        this.options.onError?.(new Error(`Could not index messages for search: ${(error as Error).message}`))
      }
    }, INDEX_DELAY_MS).unref()
  }

  /** Indexes every message that waits (a thousand per transaction). Not on a file lost under the server: nothing more is written to it. */
  private indexWaiting(): void {
    if (!this.unindexed || !this.db.open || !this.intact()) return
    while (this.statements.indexPending(INDEX_BATCH) === INDEX_BATCH);
    this.unindexed = false
  }

  /**
   * The write-ahead file still holds the pages as they were before an edit or a deletion: they go
   * into the main file (whose freed bytes are zeros, secure_delete) and the write-ahead file is
   * emptied, so the words taken away are in neither file. One process owns the file, so no
   * reader holds the checkpoint back.
   */
  private scrub(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)')
  }

  /**
   * Who sent each message and its client id (a resend answers the first), what an edit or a
   * deletion refers to, and the search index. Files made before these gain them, and their
   * messages are indexed once.
   */
  private addMessageColumns(): void {
    const columns = new Set(this.db.prepare<[], string>("SELECT name FROM pragma_table_info('room_events')").pluck().all())
    const index = !columns.has('search_row')
    let unsecured = false
    this.db.transaction(() => {
      for (const [column, type] of [['sender', 'TEXT'], ['client_id', 'TEXT'], ['ref', 'INTEGER'], ['search_row', 'INTEGER'], ['to_index', 'INTEGER']] as const) {
        if (!columns.has(column)) this.db.exec(`ALTER TABLE room_events ADD COLUMN ${column} ${type}`)
      }
      this.db.exec(`
        CREATE UNIQUE INDEX IF NOT EXISTS room_events_client ON room_events (room, sender, client_id) WHERE client_id IS NOT NULL;
        CREATE INDEX IF NOT EXISTS room_events_ref ON room_events (room, ref) WHERE ref IS NOT NULL;
        -- Messages committed and not yet in the search index (to_index = 1): few at any time.
        CREATE INDEX IF NOT EXISTS room_events_to_index ON room_events (room, id) WHERE to_index IS NOT NULL;
        CREATE VIRTUAL TABLE IF NOT EXISTS message_search USING fts5(text, room UNINDEXED, id UNINDEXED, user UNINDEXED, at UNINDEXED,
          tokenize = 'unicode61 remove_diacritics 2');
      `)
      // A row taken out of the index takes its words out of the index's segments at once (FTS5
      // otherwise keeps them until a merge, from which the text could be rebuilt). A file made
      // before has its segments merged once, which drops what was deleted before.
      const secured = this.db.prepare<[], number>("SELECT count(*) FROM message_search_config WHERE k = 'secure-delete'").pluck().get()
      this.db.exec("INSERT INTO message_search (message_search, rank) VALUES ('secure-delete', 1)")
      if (!secured) {
        this.db.exec("INSERT INTO message_search (message_search) VALUES ('optimize')")
        unsecured = true
      }
      if (!index) return
      const rows = this.db
        .prepare<[], { room: string; id: number; json: string }>("SELECT room, id, json FROM room_events WHERE json LIKE '%\"type\":\"message\"%'")
        .all()
      const add = this.db.prepare<[string, string, number, string, number]>('INSERT INTO message_search (text, room, id, user, at) VALUES (?, ?, ?, ?, ?)')
      const link = this.db.prepare<[number | bigint, string, number]>('UPDATE room_events SET search_row = ? WHERE room = ? AND id = ?')
      for (const row of rows) {
        const e = fromJson(row.json).event
        if (e.type === 'message' && e.text !== undefined) link.run(add.run(e.text, row.room, row.id, e.user.toLocaleLowerCase(), e.timestamp).lastInsertRowid, row.room, row.id)
      }
    })()
    // And its free pages, written before secure_delete, rewritten once (VACUUM: no free page left).
    if (unsecured) this.db.exec('VACUUM')
  }

  /**
   * Files made before rooms had one log: `events`, with its epoch and last id in `meta`. It
   * becomes the lobby's log, ids and epoch unchanged, in one transaction that also drops the old
   * tables, so it is moved once and never read again.
   */
  private moveOneRoomLog(): void {
    const has = this.db.prepare<[string], number>("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?").pluck()
    if (!has.get('events')) return
    this.db.transaction(() => {
      const meta = (key: string) =>
        has.get('meta') ? this.db.prepare<[string], string>('SELECT value FROM meta WHERE key = ?').pluck().get(key) : undefined
      const moved = this.db.prepare<[string], number>('SELECT count(*) FROM room_logs WHERE room = ?').pluck().get(LOBBY)
      const left = this.db.prepare<[], number>('SELECT count(*) FROM events').pluck().get()
      // Only an older version started on this file after the move writes there again: its ids
      // would clash with the lobby's, so it is left for a person to look at.
      if (moved && left) throw new Error(`${this.file}: the old events table has ${left} events beside the lobby's log (written by an older version after the upgrade)`)
      if (!moved) {
        const newest = this.db.prepare<[], number | null>('SELECT max(id) FROM events').pluck().get() ?? 0
        this.db
          .prepare('INSERT INTO room_logs (room, epoch, last_id) VALUES (?, ?, ?)')
          .run(LOBBY, meta('epoch') ?? newEpoch(), Math.max(Number(meta('last_id') ?? 0), newest))
        this.db.prepare('INSERT INTO room_events (room, id, at, json) SELECT ?, id, at, json FROM events ORDER BY id').run(LOBBY)
      }
      this.db.exec('DROP TABLE events; DROP TABLE IF EXISTS meta')
    })()
  }

  private logStatements(): LogStatements {
    const db = this.db
    const insert = db.prepare<[string, number, number, string, string | null, string | null, number | null, 1 | null]>(
      'INSERT INTO room_events (room, id, at, json, sender, client_id, ref, to_index) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    )
    const setLast = db.prepare<[number, string]>('UPDATE room_logs SET last_id = ? WHERE room = ?')
    const deleteThrough = db.prepare<[string, number]>('DELETE FROM room_events WHERE room = ? AND id <= ?')
    const unindexThrough = db.prepare<[string, number]>(
      'DELETE FROM message_search WHERE rowid IN (SELECT search_row FROM room_events WHERE room = ? AND id <= ? AND search_row IS NOT NULL)',
    )
    const bySender = db.prepare<[string, string, string], string>('SELECT json FROM room_events WHERE room = ? AND sender = ? AND client_id = ?').pluck()
    const selectMessage = db.prepare<[string, number], { json: string; sender: string | null }>('SELECT json, sender FROM room_events WHERE room = ? AND id = ?')
    const index = db.prepare<[string, string, number, string, number]>('INSERT INTO message_search (text, room, id, user, at) VALUES (?, ?, ?, ?, ?)')
    const rewrite = db.prepare<[string, string, number]>('UPDATE room_events SET json = ? WHERE room = ? AND id = ?')
    const searchRow = db.prepare<[string, number], number | null>('SELECT search_row FROM room_events WHERE room = ? AND id = ?').pluck()
    const reindex = db.prepare<[string, number]>('UPDATE message_search SET text = ? WHERE rowid = ?')
    const unindex = db.prepare<[number]>('DELETE FROM message_search WHERE rowid = ?')
    const editsOf = db.prepare<[string, number], { id: number; json: string }>("SELECT id, json FROM room_events WHERE room = ? AND ref = ? AND json LIKE '%\"type\":\"edit\"%'")
    const waiting = db.prepare<[number], { room: string; id: number; json: string }>('SELECT room, id, json FROM room_events WHERE to_index IS NOT NULL LIMIT ?')
    const indexed = db.prepare<[number | bigint | null, string, number]>('UPDATE room_events SET search_row = ?, to_index = NULL WHERE room = ? AND id = ?')
    return {
      // A commit writes the events (and what they change) and nothing else: one transaction for every room's batch of a tick.
      appendAll: db.transaction((batches: { room: string; from: number; drafts: readonly EventDraft[] }[], at: number) => {
        const next = new Map<string, number>()
        return batches.map(({ room, from, drafts }) => {
          const plan = planAppend(drafts, Math.max(from, next.get(room) ?? 0), at, {
            sent: (sender, clientId) => {
              const json = bySender.get(room, sender, clientId)
              return json === undefined ? undefined : fromJson(json)
            },
            message: (id) => {
              const row = selectMessage.get(room, id)
              return row && { stored: fromJson(row.json), sender: row.sender ?? undefined }
            },
          })
          next.set(room, plan.last + 1)
          for (const [id, stored] of plan.changed) {
            rewrite.run(stored.json, room, id)
            // A reaction or a reply changes no words.
            if (!plan.deleted.includes(id) && !plan.edited.has(id)) continue
            const row = searchRow.get(room, id)
            if (row === null || row === undefined) continue
            const words = searchableText(stored.event)
            if (words === undefined) unindex.run(row)
            else reindex.run(words, row)
          }
          for (const ref of plan.deleted) for (const edit of editsOf.all(room, ref)) rewrite.run(withoutText(fromJson(edit.json)).json, room, edit.id)
          for (const [ref, text] of plan.edited) for (const edit of editsOf.all(room, ref)) rewrite.run(withText(fromJson(edit.json), text).json, room, edit.id)
          // A message's words go into the search index a moment later, with others (indexPending):
          // the index writes pages of its own at every transaction, a third of a commit's cost.
          // to_index marks it in this transaction, so a crash before then leaves it to index.
          for (const { stored, sender, clientId, ref } of plan.rows) {
            const e = stored.event
            insert.run(room, e.id, e.timestamp, stored.json, sender ?? null, clientId ?? null, ref ?? null, searchableText(e) !== undefined ? 1 : null)
          }
          return plan
        })
      }),
      selectMessage,
      selectAfter: db.prepare('SELECT json FROM room_events WHERE room = ? AND id > ? ORDER BY id LIMIT ?'),
      // A reply's row refers to its thread's first message (edits, deletions and reactions refer to theirs).
      selectThread: db.prepare<[string, number, number, number], { json: string }>(
        `SELECT json FROM room_events WHERE room = ? AND ref = ? AND id > ? AND json LIKE '%"type":"message"%' ORDER BY id LIMIT ?`,
      ),
      selectBefore: db.prepare(
        'SELECT json FROM (SELECT id, json FROM room_events WHERE room = ? AND id < ? ORDER BY id DESC LIMIT ?) ORDER BY id',
      ),
      // The words of each as it reads now: an edit or a deletion made since is already in its row.
      indexPending: db.transaction((limit: number) => {
        const rows = waiting.all(limit)
        for (const { room, id, json } of rows) {
          const e = fromJson(json).event
          const words = searchableText(e)
          indexed.run(words !== undefined ? index.run(words, room, id, e.user.toLocaleLowerCase(), e.timestamp).lastInsertRowid : null, room, id)
        }
        return rows.length
      }),
      // The newest id is kept before its events may go, so an id is never given out twice.
      pruneThrough: db.transaction((room: string, last: number, through: number) => {
        setLast.run(last, room)
        unindexThrough.run(room, through)
        return deleteThrough.run(room, through).changes
      }),
      atOf: db.prepare<[string, number], number>('SELECT at FROM room_events WHERE room = ? AND id >= ? ORDER BY id LIMIT 1').pluck(),
      firstId: db.prepare<[string], number | null>('SELECT min(id) FROM room_events WHERE room = ?').pluck(),
    }
  }

  /**
   * Messages in the rooms given, by words (FTS5, the last word a prefix), newest first. Words
   * are quoted, so nothing a person types is FTS5 syntax.
   */
  async search(query: SearchQuery): Promise<SearchHit[]> {
    const terms = searchTerms(query.words)
    if (terms.length === 0 || query.rooms.length === 0) return []
    // What was committed and waits for the index is found too (if it cannot be indexed now, the search still answers).
    try {
      this.indexWaiting()
    } catch (error) {
      this.options.onError?.(new Error(`Could not index messages for search: ${(error as Error).message}`))
    }
    const match = terms.map((t, i) => `"${t.replace(/"/g, '""')}"${i === terms.length - 1 ? '*' : ''}`).join(' ')
    const where = ['message_search MATCH ?', 's.room IN (SELECT value FROM json_each(?))']
    const values: (string | number)[] = [match, JSON.stringify(query.rooms)]
    if (query.user !== undefined) where.push('s.user = ?'), values.push(query.user.toLocaleLowerCase())
    if (query.before !== undefined) where.push('s.at < ?'), values.push(query.before)
    if (query.after !== undefined) where.push('s.at > ?'), values.push(query.after)
    values.push(query.limit)
    const rows = this.db
      .prepare<(string | number)[], { room: string; json: string }>(
        `SELECT s.room AS room, e.json AS json FROM message_search s JOIN room_events e ON e.room = s.room AND e.id = s.id
         WHERE ${where.join(' AND ')} ORDER BY s.at DESC, s.id DESC LIMIT ?`,
      )
      .all(...values)
    return rows.map((row) => ({ room: row.room, stored: fromJson(row.json) }))
  }

  /**
   * After the file was lost, writes would go to files a restart never reads (or worse, a
   * write-ahead file replayed onto the restored one): sign-ins and sign-outs are refused, and
   * housekeeping waits for the restart.
   */
  private sessionStore(): SessionStore {
    const db = this.db
    type Row = { user: string; created_at: number; seen_at: number; address: string; account: string; user_agent: string }
    const columns = 'user, created_at, seen_at, address, account, user_agent'
    const record = (row: Row): SessionRecord => ({
      user: row.user,
      createdAt: row.created_at,
      seenAt: row.seen_at,
      address: row.address,
      account: row.account,
      userAgent: row.user_agent,
    })
    const read = db.prepare<[string], Row>(`SELECT ${columns} FROM sessions WHERE hash = ?`)
    const create = db.prepare<[string, string, number, number, string, string, string]>(`INSERT INTO sessions (hash, ${columns}) VALUES (?, ?, ?, ?, ?, ?, ?)`)
    const touch = db.prepare<[number, string]>('UPDATE sessions SET seen_at = ? WHERE hash = ?')
    const remove = db.prepare<[string]>('DELETE FROM sessions WHERE hash = ?')
    const prune = db.prepare<[number, number]>('DELETE FROM sessions WHERE seen_at < ? OR created_at < ?')
    const trim = db
      .prepare<[{ address: string; current: string; others: number }], string>(
        `DELETE FROM sessions WHERE address = @address AND hash <> @current AND hash NOT IN
           (SELECT hash FROM sessions WHERE address = @address AND hash <> @current ORDER BY seen_at DESC LIMIT @others)
         RETURNING hash`,
      )
      .pluck()
    const count = db.prepare<[], number>('SELECT count(*) FROM sessions').pluck()
    // A guest's sessions ('') are nobody's to list or end (the condition also lets the partial index serve).
    const list = db.prepare<[string], Row & { hash: string }>(`SELECT hash, ${columns} FROM sessions WHERE account = ? AND account <> '' ORDER BY seen_at DESC`)
    const endAccount = db.prepare<[string, string | null], string>("DELETE FROM sessions WHERE account = ? AND account <> '' AND hash IS NOT ? RETURNING hash").pluck()
    return {
      create: async (hash, r) => void create.run(this.writable(hash), r.user, r.createdAt, r.seenAt, r.address, r.account, r.userAgent),
      read: async (hash) => {
        const row = read.get(hash)
        return row && record(row)
      },
      touch: async (hash, seenAt) => {
        if (!this.lost) touch.run(seenAt, hash)
      },
      delete: async (hash) => void remove.run(this.writable(hash)),
      prune: async (idleBefore, createdBefore) => (this.lost ? 0 : prune.run(idleBefore, createdBefore).changes),
      trim: async (address, keep, current) => trim.all({ address: this.writable(address), current, others: Math.max(0, keep - 1) }),
      count: async () => count.get() ?? 0,
      list: async (account) => list.all(account).map((row) => ({ ...record(row), hash: row.hash })),
      endAccount: async (account, except) => endAccount.all(this.writable(account), except ?? null),
    }
  }

  /** Accounts, their passkeys and links: written like sessions (refused once the file is lost). */
  private accountStore(): AccountStore {
    const db = this.db
    type AccountRow = { id: string; name: string; skeleton: string; password_hash: string | null; email_hash: string | null; created_at: number }
    type PasskeyRow = { id: string; account_id: string; public_key: string; counter: number; transports: string; created_at: number; last_used_at: number | null }
    const account = (row: AccountRow): AccountRecord => ({
      id: row.id,
      name: row.name,
      skeleton: row.skeleton,
      passwordHash: row.password_hash,
      ...(row.email_hash === null ? {} : { emailHash: row.email_hash }),
      createdAt: row.created_at,
    })
    const passkey = (row: PasskeyRow): PasskeyRecord => ({
      id: row.id,
      accountId: row.account_id,
      publicKey: row.public_key,
      counter: row.counter,
      transports: JSON.parse(row.transports) as string[],
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
    })
    // A duplicate (id or skeleton, credential id, provider user) is an answer, not an error: nothing is written.
    const create = db.prepare<[string, string, string, string | null, string | null, number]>(
      'INSERT INTO accounts (id, name, skeleton, password_hash, email_hash, created_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    )
    const byId = db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE id = ?')
    const bySkeleton = db.prepare<[string], AccountRow>('SELECT * FROM accounts WHERE skeleton = ?')
    const setPassword = db.prepare<[string, string]>('UPDATE accounts SET password_hash = ? WHERE id = ?')
    const addPasskey = db.prepare<[string, string, string, number, string, number, number | null]>(
      'INSERT INTO passkeys (id, account_id, public_key, counter, transports, created_at, last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    )
    const passkeyById = db.prepare<[string], PasskeyRow>('SELECT * FROM passkeys WHERE id = ?')
    const passkeys = db.prepare<[string], PasskeyRow>('SELECT * FROM passkeys WHERE account_id = ? ORDER BY created_at, rowid')
    const usePasskey = db.prepare<[number, number, string]>('UPDATE passkeys SET counter = ?, last_used_at = ? WHERE id = ?')
    const removePasskey = db.prepare<[string, string]>('DELETE FROM passkeys WHERE id = ? AND account_id = ?')
    const link = db.prepare<[string, string, string]>('INSERT INTO account_links (provider, provider_user_id, account_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
    const linked = db.prepare<[string, string], string>('SELECT account_id FROM account_links WHERE provider = ? AND provider_user_id = ?').pluck()
    return {
      create: async (r) => create.run(this.writable(r.id), r.name, r.skeleton, r.passwordHash, r.emailHash ?? null, r.createdAt).changes === 1,
      byId: async (id) => {
        const row = byId.get(id)
        return row && account(row)
      },
      bySkeleton: async (skeleton) => {
        const row = bySkeleton.get(skeleton)
        return row && account(row)
      },
      setPassword: async (id, passwordHash) => void setPassword.run(passwordHash, this.writable(id)),
      addPasskey: async (k) =>
        addPasskey.run(this.writable(k.id), k.accountId, k.publicKey, k.counter, JSON.stringify(k.transports), k.createdAt, k.lastUsedAt).changes === 1,
      passkey: async (id) => {
        const row = passkeyById.get(id)
        return row && passkey(row)
      },
      passkeys: async (accountId) => passkeys.all(accountId).map(passkey),
      usePasskey: async (id, counter, at) => void usePasskey.run(counter, at, this.writable(id)),
      removePasskey: async (accountId, id) => removePasskey.run(this.writable(id), accountId).changes === 1,
      link: async (provider, providerUserId, accountId) => link.run(this.writable(provider), providerUserId, accountId).changes === 1,
      linked: async (provider, providerUserId) => linked.get(provider, providerUserId),
    }
  }

  /** Rooms, their members, read markers and direct rooms: written like accounts (refused once the file is lost). */
  private roomStore(): RoomStore {
    const db = this.db
    type RoomRow = { name: string; skeleton: string; title: string; topic: string; visibility: RoomVisibility; created_by: string; created_at: number; slow: number; closed: number }
    const room = (row: RoomRow): RoomRecord =>
      withRules(
        { name: row.name, skeleton: row.skeleton, title: row.title, topic: row.topic, visibility: row.visibility, createdBy: row.created_by, createdAt: row.created_at },
        { slow: row.slow, closed: row.closed === 1 },
      )
    // A duplicate (name or skeleton, member, direct pair) is an answer, not an error: nothing is written.
    const create = db.prepare<[string, string, string, string, string, string, number]>(
      'INSERT INTO rooms (name, skeleton, title, topic, visibility, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    )
    const get = db.prepare<[string], RoomRow>('SELECT * FROM rooms WHERE name = ?')
    const describe = db.prepare<[string, string, string]>('UPDATE rooms SET title = ?, topic = ? WHERE name = ?')
    const setRules = db.prepare<[number, number, string]>('UPDATE rooms SET slow = ?, closed = ? WHERE name = ?')
    const bySkeleton = db.prepare<[string], RoomRow>('SELECT * FROM rooms WHERE skeleton = ?')
    const visibleTo = db.prepare<[string], RoomRow>(
      `SELECT * FROM rooms r WHERE visibility = 'public' OR EXISTS (SELECT 1 FROM room_members m WHERE m.room = r.name AND m.person = ?)
       ORDER BY name`,
    )
    const counts = db.prepare<[string], { created: number; total: number }>('SELECT count(*) FILTER (WHERE created_by = ?) AS created, count(*) AS total FROM rooms')
    const addMember = db.prepare<[string, string, string, number, string]>('INSERT INTO room_members (room, person, role, joined_at, name) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING')
    const named = db.prepare<[string, number], RoomMember>('SELECT person, name, role FROM room_members WHERE room = ? ORDER BY joined_at, rowid LIMIT ?')
    const removeMember = db.prepare<[string, string]>('DELETE FROM room_members WHERE room = ? AND person = ?')
    const role = db.prepare<[string, string], RoomRole>('SELECT role FROM room_members WHERE room = ? AND person = ?').pluck()
    const members = db.prepare<[string], string>('SELECT person FROM room_members WHERE room = ? ORDER BY joined_at, rowid').pluck()
    const memberOf = db.prepare<[string], string>('SELECT room FROM room_members WHERE person = ? ORDER BY room').pluck()
    const setRole = db.prepare<[string, string, string]>('UPDATE room_members SET role = ? WHERE room = ? AND person = ?')
    const restrict = db.prepare<[string, string, string, string, number | null, string, string, number]>(
      `INSERT INTO room_restrictions (room, person, kind, name, until, by, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (room, kind, person) DO UPDATE SET name = excluded.name, until = excluded.until, by = excluded.by, reason = excluded.reason, at = excluded.at`,
    )
    const lift = db.prepare<[string, string, string]>('DELETE FROM room_restrictions WHERE room = ? AND kind = ? AND person = ?')
    const restrictions = db.prepare<[string, number], { person: string; name: string; kind: Restriction['kind']; until: number | null; by: string; reason: string; at: number }>(
      'SELECT person, name, kind, until, by, reason, at FROM room_restrictions WHERE room = ? AND (until IS NULL OR until > ?) ORDER BY at, rowid',
    )
    const barred = db
      .prepare<[string, number], string>("SELECT room FROM room_restrictions WHERE person = ? AND kind = 'ban' AND (until IS NULL OR until > ?) ORDER BY room")
      .pluck()
    const report = db.prepare<[string, number, string, string, string, number]>(
      'INSERT INTO room_reports (room, ref, reporter, name, reason, at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING',
    )
    type ReportRow = { ref: number; reporter: string; name: string; reason: string; at: number; handled_by: string | null; outcome: string | null }
    const asReport = (r: ReportRow): Report => ({ ref: r.ref, reporter: r.reporter, name: r.name, reason: r.reason, at: r.at, handledBy: r.handled_by ?? undefined, outcome: r.outcome ?? undefined })
    const reports = db.prepare<[string, number], ReportRow>('SELECT * FROM room_reports WHERE room = ? AND handled_by IS NULL ORDER BY at, rowid LIMIT ?')
    const handleReports = db.prepare<[string, string, number, string, number], ReportRow>(
      'UPDATE room_reports SET handled_by = ?, outcome = ?, handled_at = ? WHERE room = ? AND ref = ? AND handled_by IS NULL RETURNING *',
    )
    const readMarker = db.prepare<[string, string], number>('SELECT last_read FROM read_markers WHERE room = ? AND person = ?').pluck()
    const markRead = db.prepare<[string, string, number]>(
      `INSERT INTO read_markers (room, person, last_read) VALUES (?, ?, ?)
       ON CONFLICT (room, person) DO UPDATE SET last_read = excluded.last_read WHERE excluded.last_read > last_read`,
    )
    const direct = db.prepare<[string, string], RoomRow>('SELECT r.* FROM direct_rooms d JOIN rooms r ON r.name = d.room WHERE d.a = ? AND d.b = ?')
    const setDirect = db.prepare<[string, string, string]>('INSERT INTO direct_rooms (a, b, room) VALUES (?, ?, ?) ON CONFLICT DO NOTHING')
    return {
      create: async (r) => create.run(this.writable(r.name), r.skeleton, r.title, r.topic, r.visibility, r.createdBy, r.createdAt).changes === 1,
      get: async (name) => {
        const row = get.get(name)
        return row && room(row)
      },
      describe: async (name, title, topic) => describe.run(title, topic, this.writable(name)).changes === 1,
      setRules: async (name, rules) => setRules.run(rules.slow, rules.closed ? 1 : 0, this.writable(name)).changes === 1,
      bySkeleton: async (skeleton) => {
        const row = bySkeleton.get(skeleton)
        return row && room(row)
      },
      visibleTo: async (person) => visibleTo.all(person).map(room),
      counts: async (person) => counts.get(person) ?? { created: 0, total: 0 },
      addMember: async (name, person, r, as = '') => addMember.run(this.writable(name), person, r, Date.now(), as).changes === 1,
      named: async (name, limit) => named.all(name, limit),
      removeMember: async (name, person) => removeMember.run(this.writable(name), person).changes === 1,
      role: async (name, person) => role.get(name, person),
      setRole: async (name, person, r) => setRole.run(r, this.writable(name), person).changes === 1,
      restrict: async (name, r) => {
        restrict.run(this.writable(name), r.person, r.kind, r.name, r.until ?? null, r.by, r.reason, r.at)
      },
      lift: async (name, person, kind) => lift.run(this.writable(name), kind, person).changes === 1,
      restrictions: async (name, now) => restrictions.all(name, now).map((r) => ({ ...r, until: r.until ?? undefined })),
      barred: async (person, now) => barred.all(person, now),
      report: async (name, r) => report.run(this.writable(name), r.ref, r.reporter, r.name, r.reason, r.at).changes === 1,
      reports: async (name, limit) => reports.all(name, limit).map(asReport),
      handleReports: async (name, ref, by, outcome, at) => handleReports.all(by, outcome, at, this.writable(name), ref).map(asReport),
      members: async (name) => members.all(name),
      memberOf: async (person) => memberOf.all(person),
      readMarker: async (name, person) => readMarker.get(name, person) ?? 0,
      markRead: async (name, person, id) => {
        if (id > 0) markRead.run(this.writable(name), person, id)
      },
      direct: async (a, b) => {
        const row = direct.get(...pair(a, b))
        return row && room(row)
      },
      setDirect: async (a, b, name) => setDirect.run(...pair(this.writable(a), b), name).changes === 1,
    }
  }

  async open(): Promise<void> {
    this.lobby = this.load(LOBBY)
  }

  /** The lobby's epoch (after open). */
  get epoch(): string {
    return this.lobby?.epoch ?? ''
  }

  /** A room's log, made with a fresh epoch the first time it is asked for. */
  private load(room: string): SqliteLog {
    let log = this.loaded.get(room)
    if (log) return log
    const row = this.db.prepare<[string], { epoch: string; last_id: number }>('SELECT epoch, last_id FROM room_logs WHERE room = ?').get(room)
    if (!row) this.db.prepare('INSERT INTO room_logs (room, epoch, last_id) VALUES (?, ?, 0)').run(this.writable(room), newEpoch())
    const epoch = row?.epoch ?? this.db.prepare<[string], string>('SELECT epoch FROM room_logs WHERE room = ?').pluck().get(room)!
    const newest = this.db.prepare<[string], number | null>('SELECT max(id) FROM room_events WHERE room = ?').pluck().get(room) ?? 0
    log = new SqliteLog(room, epoch, Math.max(row?.last_id ?? 0, newest), this.statements, this.committer, () => this.lost !== undefined)
    this.loaded.set(room, log)
    return log
  }

  protected get lobbyLog(): SqliteLog {
    return (this.lobby ??= this.load(LOBBY))
  }

  async log(room: string): Promise<RoomLog> {
    return this.load(room)
  }

  async logs(): Promise<string[]> {
    return this.db.prepare<[], string>('SELECT room FROM room_logs ORDER BY room').pluck().all()
  }

  async lastIds(rooms: readonly string[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>()
    const counted = this.db.prepare<[string], number>('SELECT last_id FROM room_logs WHERE room = ?').pluck()
    const newest = this.db.prepare<[string], number | null>('SELECT max(id) FROM room_events WHERE room = ?').pluck()
    for (const room of rooms) {
      // A log this process writes knows where it stands; another's (never opened here) is read, not made.
      const loaded = this.loaded.get(room)
      ids.set(room, loaded ? await loaded.lastId() : Math.max(counted.get(room) ?? 0, newest.get(room) ?? 0))
    }
    return ids
  }

  ready(): Promise<boolean> {
    return Promise.resolve(this.db.open && this.intact())
  }

  /**
   * Whether the files at the log's paths are still the ones this connection writes to. The
   * first time they are not (deleted or replaced under the running server: a cleanup job, a
   * mistake), what the connection holds is saved, the operator is told once, and from then on
   * nothing is acknowledged: a commit to a file the next start does not open would be lost.
   */
  private intact(): boolean {
    if (this.lost) return false
    const main = fileAt(this.file)
    const wal = fileAt(`${this.file}-wal`)
    this.wal ??= wal
    if (sameFile(main, this.opened) && (this.wal === undefined || sameFile(wal, this.wal))) return true
    const what = main === undefined ? 'deleted' : !sameFile(main, this.opened) ? 'replaced' : 'wal'
    // Told once in full; every refusal after says it shortly.
    this.options.onError?.(new Error(`${this.describe(what)} ${this.rescue(what)} Messages are refused until the server is restarted.`))
    this.lost = new Error(`The room's log ${this.file} is no longer the file this process opened: restart the server.`)
    return false
  }

  private describe(what: 'deleted' | 'replaced' | 'wal'): string {
    if (what === 'wal') return `The room's log's write-ahead file ${this.file}-wal was deleted or replaced while the server ran.`
    return `The room's log ${this.file} was ${what === 'deleted' ? 'deleted' : 'replaced by another file'} while the server ran.`
  }

  /** Saves what this connection holds where a restart finds it (a replacement is not overwritten); says where. */
  private rescue(what: 'deleted' | 'replaced' | 'wal'): string {
    try {
      // Everything into the main file this connection holds, and the write-ahead file at the
      // path emptied: a restart must not replay it onto another main file.
      this.db.pragma('wal_checkpoint(TRUNCATE)')
      if (what === 'wal') return `What it held is saved in ${this.file}.`
      const target = what === 'deleted' ? this.file : `${this.file}.rescued-${new Date().toISOString().replace(/[:.]/g, '-')}`
      mkdirSync(dirname(target), { recursive: true })
      this.db.prepare('VACUUM INTO ?').run(target)
      const fd = openSync(target, 'r')
      try {
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      return what === 'deleted'
        ? `It was written back from this process's open copy, with every message acknowledged.`
        : `The log as it stood is saved as ${target}: move it to ${this.file} (server stopped) to keep those messages.`
    } catch (error) {
      return `Saving a copy failed (${(error as Error).message}).`
    }
  }

  /**
   * The key, if sessions and accounts may still be written (else why not, thrown). The files
   * are looked at, not just the last verdict: a sign-in or a registration written to a deleted
   * file would be gone after the restart.
   */
  /** Files: bytes written to DATA_DIR/files and synced before their row says they are there; a row goes before its bytes. */
  private fileStore(): FileStore {
    const db = this.db
    type FileRow = { room: string; id: string; owner: string; name: string; size: number; type: string; width: number | null; height: number | null; at: number; message: number | null; thumbnail: number }
    const record = (r: FileRow): FileRecord => ({ room: r.room, id: r.id, owner: r.owner, name: r.name, size: r.size, type: r.type, width: r.width ?? undefined, height: r.height ?? undefined, at: r.at, message: r.message ?? undefined })
    const insert = db.prepare('INSERT INTO room_files (room, id, owner, name, size, type, width, height, at, thumbnail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
    const attach = db.prepare<[number, string, string]>('UPDATE room_files SET message = ? WHERE room = ? AND id = ?')
    const select = db.prepare<[string, string], FileRow>('SELECT * FROM room_files WHERE room = ? AND id = ?')
    const remove = db.prepare<[string, string]>('DELETE FROM room_files WHERE room = ? AND id = ?')
    const used = db.prepare<[string, number], number>('SELECT coalesce(sum(size), 0) FROM room_files WHERE owner = ? AND at >= ?').pluck()
    const pruned = db.prepare<[string, number, number], { id: string }>('SELECT id FROM room_files WHERE room = ? AND (message <= ? OR (message IS NULL AND at < ?))')
    // Ids are random hex: safe as file names.
    const path = (id: string, which: 'file' | 'thumbnail') => join(this.filesDir, which === 'file' ? id : `${id}.thumb`)
    const write = async (to: string, bytes: Buffer) => {
      const temporary = `${to}.part`
      const handle = await openFile(temporary, 'w')
      try {
        await handle.writeFile(bytes)
        await handle.sync()
      } finally {
        await handle.close()
      }
      await rename(temporary, to)
    }
    // A deleted file is overwritten with zeros (and synced) before it is unlinked: its bytes are not left in free blocks, as a deleted message's text is not left in free pages.
    const unlink = async (id: string) => {
      for (const which of ['file', 'thumbnail'] as const) {
        const at = path(id, which)
        const handle = await openFile(at, 'r+').catch(() => undefined)
        if (handle) {
          try {
            const { size } = await handle.stat()
            const zeros = Buffer.alloc(Math.min(size, 1 << 20))
            for (let done = 0; done < size; done += zeros.length) await handle.write(zeros, 0, Math.min(zeros.length, size - done), done)
            await handle.sync()
          } finally {
            await handle.close()
          }
        }
        await rm(at, { force: true })
      }
    }
    return {
      put: async (r, bytes, thumbnail) => {
        if (!/^[0-9a-f]{16,64}$/.test(r.id)) throw new Error('a file id is hex')
        await write(path(r.id, 'file'), bytes)
        if (thumbnail) await write(path(r.id, 'thumbnail'), thumbnail)
        insert.run(this.writable(r.room), r.id, r.owner, r.name, r.size, r.type, r.width ?? null, r.height ?? null, r.at, thumbnail ? 1 : 0)
      },
      attach: async (room, id, message) => void attach.run(message, this.writable(room), id),
      get: async (room, id) => {
        const row = select.get(room, id)
        return row && record(row)
      },
      bytes: async (room, id, which) => {
        const row = select.get(room, id)
        if (!row || (which === 'thumbnail' && !row.thumbnail)) return undefined
        return readFile(path(id, which)).catch(() => undefined)
      },
      remove: async (room, id) => {
        const gone = remove.run(this.writable(room), id).changes === 1
        await unlink(id)
        return gone
      },
      usedSince: async (owner, since) => used.get(owner, since) ?? 0,
      prune: async (room, through, staleBefore) => {
        const ids = pruned.all(room, through, staleBefore).map((r) => r.id)
        for (const id of ids) {
          remove.run(this.writable(room), id)
          await unlink(id)
        }
        return ids.length
      },
    }
  }

  private writable(key: string): string {
    if (!this.intact()) throw this.lost
    return key
  }

  async close(): Promise<void> {
    clearTimeout(this.indexTimer)
    this.indexTimer = undefined
    if (!this.db.open) return
    // What waits for the index is indexed now rather than at the next start.
    try {
      this.indexWaiting()
    } catch {
      // Left marked: indexed at the next start.
    }
    this.db.close()
  }
}
