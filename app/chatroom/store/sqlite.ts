import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { EventDraft, StoredEvent } from '../event.js'
import { fromJson, newEpoch, numbered, type SessionRecord, type SessionStore, type Store } from './store.js'

/**
 * The default log: one SQLite file in `dir`, made on first start (STORE=sqlite). One process
 * owns it (an exclusive lock). better-sqlite3 is synchronous, so statements are prepared once and a batch is one
 * transaction; WAL with synchronous=FULL makes a commit durable before it is acknowledged.
 */
export class SqliteStore implements Store {
  epoch = ''
  readonly file: string
  readonly sessions: SessionStore
  private readonly db: Database.Database
  private last = 0
  private readonly insert: Database.Statement<[number, number, string]>
  private readonly setLast: Database.Statement<[string]>
  private readonly selectAfter: Database.Statement<[number, number], { json: string }>
  private readonly selectBefore: Database.Statement<[number, number], { json: string }>
  private readonly appendAll: (events: StoredEvent[]) => void
  private readonly pruneThrough: (through: number) => number
  private readonly deleteThrough: Database.Statement<[number]>
  private readonly atOf: Database.Statement<[number], number>
  private readonly firstId: Database.Statement<[], number | null>

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true })
    this.file = join(dir, 'chat.sqlite')
    this.db = new Database(this.file)
    // One process owns the file: a second one started on the same DATA_DIR fails at start
    // ("database is locked") instead of handing out the same ids.
    this.db.pragma('locking_mode = EXCLUSIVE')
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = FULL')
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, at INTEGER NOT NULL, json TEXT NOT NULL);
      -- Not needed (pruning by age finds its cutoff by id): one page less to write per commit.
      DROP INDEX IF EXISTS events_at;
      CREATE TABLE IF NOT EXISTS sessions (hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL, address TEXT NOT NULL DEFAULT '');
    `)
    // Files made before sessions were bounded per address.
    const columns = this.db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('sessions')").all()
    if (!columns.some((c) => c.name === 'address')) this.db.exec("ALTER TABLE sessions ADD COLUMN address TEXT NOT NULL DEFAULT ''")
    this.db.exec('CREATE INDEX IF NOT EXISTS sessions_address ON sessions (address, seen_at)')
    const db = this.db
    const read = db.prepare<[string], { user: string; created_at: number; seen_at: number; address: string }>('SELECT user, created_at, seen_at, address FROM sessions WHERE hash = ?')
    const create = db.prepare<[string, string, number, number, string]>('INSERT INTO sessions (hash, user, created_at, seen_at, address) VALUES (?, ?, ?, ?, ?)')
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
    this.sessions = {
      create: async (hash: string, r: SessionRecord) => void create.run(hash, r.user, r.createdAt, r.seenAt, r.address),
      read: async (hash: string) => {
        const row = read.get(hash)
        return row && { user: row.user, createdAt: row.created_at, seenAt: row.seen_at, address: row.address }
      },
      touch: async (hash: string, seenAt: number) => void touch.run(seenAt, hash),
      delete: async (hash: string) => void remove.run(hash),
      prune: async (idleBefore: number, createdBefore: number) => prune.run(idleBefore, createdBefore).changes,
      trim: async (address: string, keep: number, current: string) => trim.all({ address, current, others: Math.max(0, keep - 1) }),
      count: async () => count.get() ?? 0,
    }
    this.insert = this.db.prepare('INSERT INTO events (id, at, json) VALUES (?, ?, ?)')
    this.setLast = this.db.prepare("INSERT INTO meta (key, value) VALUES ('last_id', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    this.selectAfter = this.db.prepare('SELECT json FROM events WHERE id > ? ORDER BY id LIMIT ?')
    this.selectBefore = this.db.prepare('SELECT json FROM (SELECT id, json FROM events WHERE id < ? ORDER BY id DESC LIMIT ?) ORDER BY id')
    // A commit writes the events and nothing else: the newest id is the table's, and meta's
    // last_id keeps it only across pruning (see prune), so an id is never given out twice.
    this.appendAll = this.db.transaction((events: StoredEvent[]) => {
      for (const { event, json } of events) this.insert.run(event.id, event.timestamp, json)
    })
    this.pruneThrough = this.db.transaction((through: number) => {
      this.setLast.run(String(this.last))
      return this.deleteThrough.run(through).changes
    })
    this.deleteThrough = this.db.prepare('DELETE FROM events WHERE id <= ?')
    this.atOf = this.db.prepare<[number], number>('SELECT at FROM events WHERE id >= ? ORDER BY id LIMIT 1').pluck()
    this.firstId = this.db.prepare<[], number | null>('SELECT min(id) FROM events').pluck()
  }

  async open(): Promise<void> {
    const read = (key: string) => (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('epoch', ?) ON CONFLICT (key) DO NOTHING").run(newEpoch())
    this.epoch = read('epoch')!
    const newest = this.db.prepare('SELECT max(id) FROM events').pluck().get() as number | null
    this.last = Math.max(Number(read('last_id') ?? 0), newest ?? 0)
  }

  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    try {
      const stored = numbered(drafts, this.last + 1, Date.now())
      this.appendAll(stored)
      this.last += stored.length
      return Promise.resolve(stored)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  after(after: number, limit: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.selectAfter.all(after, limit).map((row) => fromJson(row.json)))
  }

  before(before: number, limit: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.selectBefore.all(before, limit).map((row) => fromJson(row.json)))
  }

  lastId(): Promise<number> {
    return Promise.resolve(this.last)
  }

  prune(maxEvents: number, maxAgeMs: number): Promise<number> {
    let through = maxEvents > 0 ? this.last - maxEvents : 0
    if (maxAgeMs > 0) through = Math.max(through, this.olderThan(Date.now() - maxAgeMs))
    return Promise.resolve(through > 0 ? this.pruneThrough(through) : 0)
  }

  /**
   * The newest id committed before `cutoff`: a binary search by id, since ids and commit times
   * rise together (a clock set back may leave a few old events a round longer).
   */
  private olderThan(cutoff: number): number {
    let lo = (this.firstId.get() as number | null) ?? 0
    let hi = this.last
    if (lo === 0 || (this.atOf.get(lo) as number) >= cutoff) return 0
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2)
      if ((this.atOf.get(mid) as number | undefined ?? Infinity) < cutoff) lo = mid
      else hi = mid - 1
    }
    return lo
  }

  ready(): Promise<boolean> {
    return Promise.resolve(this.db.open)
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}
