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
      CREATE INDEX IF NOT EXISTS events_at ON events (at);
      CREATE TABLE IF NOT EXISTS sessions (hash TEXT PRIMARY KEY, user TEXT NOT NULL, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL);
    `)
    const db = this.db
    const read = db.prepare<[string], { user: string; created_at: number; seen_at: number }>('SELECT user, created_at, seen_at FROM sessions WHERE hash = ?')
    const create = db.prepare<[string, string, number, number]>('INSERT INTO sessions (hash, user, created_at, seen_at) VALUES (?, ?, ?, ?)')
    const touch = db.prepare<[number, string]>('UPDATE sessions SET seen_at = ? WHERE hash = ?')
    const remove = db.prepare<[string]>('DELETE FROM sessions WHERE hash = ?')
    const prune = db.prepare<[number, number]>('DELETE FROM sessions WHERE seen_at < ? OR created_at < ?')
    this.sessions = {
      create: async (hash: string, r: SessionRecord) => void create.run(hash, r.user, r.createdAt, r.seenAt),
      read: async (hash: string) => {
        const row = read.get(hash)
        return row && { user: row.user, createdAt: row.created_at, seenAt: row.seen_at }
      },
      touch: async (hash: string, seenAt: number) => void touch.run(seenAt, hash),
      delete: async (hash: string) => void remove.run(hash),
      prune: async (idleBefore: number, createdBefore: number) => prune.run(idleBefore, createdBefore).changes,
    }
    this.insert = this.db.prepare('INSERT INTO events (id, at, json) VALUES (?, ?, ?)')
    this.setLast = this.db.prepare("INSERT INTO meta (key, value) VALUES ('last_id', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
    this.selectAfter = this.db.prepare('SELECT json FROM events WHERE id > ? ORDER BY id LIMIT ?')
    this.selectBefore = this.db.prepare('SELECT json FROM (SELECT id, json FROM events WHERE id < ? ORDER BY id DESC LIMIT ?) ORDER BY id')
    this.appendAll = this.db.transaction((events: StoredEvent[]) => {
      for (const { event, json } of events) this.insert.run(event.id, event.timestamp, json)
      this.setLast.run(String(events.at(-1)!.event.id))
    })
  }

  async open(): Promise<void> {
    const read = (key: string) => (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('epoch', ?) ON CONFLICT (key) DO NOTHING").run(newEpoch())
    this.epoch = read('epoch')!
    this.last = Number(read('last_id') ?? 0)
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
    let deleted = 0
    if (maxEvents > 0) deleted += this.db.prepare('DELETE FROM events WHERE id <= ?').run(this.last - maxEvents).changes
    if (maxAgeMs > 0) deleted += this.db.prepare('DELETE FROM events WHERE at < ?').run(Date.now() - maxAgeMs).changes
    return Promise.resolve(deleted)
  }

  ready(): Promise<boolean> {
    return Promise.resolve(this.db.open)
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}
