import { closeSync, fsyncSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import Database from 'better-sqlite3'
import type { EventDraft, StoredEvent } from '../event.js'
import {
  fromJson,
  newEpoch,
  numbered,
  type AccountRecord,
  type AccountStore,
  type PasskeyRecord,
  type SessionRecord,
  type SessionStore,
  type Store,
} from './store.js'

export interface SqliteStoreOptions {
  /** Told once, when the file is found deleted or replaced under the running server (logged by the app). */
  onError?: (error: Error) => void
}

/** Which file a path names now (undefined: none). */
function fileAt(path: string): { dev: bigint; ino: bigint } | undefined {
  const stat = statSync(path, { bigint: true, throwIfNoEntry: false })
  return stat && { dev: stat.dev, ino: stat.ino }
}

const sameFile = (a: { dev: bigint; ino: bigint } | undefined, b: { dev: bigint; ino: bigint } | undefined) =>
  a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino

/**
 * The default log: one SQLite file in `dir`, made on first start (STORE=sqlite). One process
 * owns it (an exclusive lock). better-sqlite3 is synchronous, so statements are prepared once and a batch is one
 * transaction; WAL with synchronous=FULL makes a commit durable before it is acknowledged.
 * A file deleted or replaced under it is noticed before a commit is acknowledged (see intact).
 */
export class SqliteStore implements Store {
  epoch = ''
  readonly file: string
  readonly sessions: SessionStore
  readonly accounts: AccountStore
  private readonly db: Database.Database
  private readonly options: SqliteStoreOptions
  /** The files this connection writes to (the write-ahead one once it exists). */
  private readonly opened: { dev: bigint; ino: bigint } | undefined
  private wal: { dev: bigint; ino: bigint } | undefined
  /** Set once the files at the paths are no longer the ones written to: then nothing more is acknowledged. */
  private lost: Error | undefined
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

  constructor(dir: string, options: SqliteStoreOptions = {}) {
    mkdirSync(dir, { recursive: true })
    this.file = join(dir, 'chat.sqlite')
    this.options = options
    this.db = new Database(this.file)
    this.opened = fileAt(this.file)
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
    // Files made before sessions were bounded per address, or belonged to accounts.
    const columns = new Set(this.db.prepare<[], string>("SELECT name FROM pragma_table_info('sessions')").pluck().all())
    for (const column of ['address', 'account', 'user_agent']) {
      if (!columns.has(column)) this.db.exec(`ALTER TABLE sessions ADD COLUMN ${column} TEXT NOT NULL DEFAULT ''`)
    }
    this.db.exec(`
      CREATE INDEX IF NOT EXISTS sessions_address ON sessions (address, seen_at);
      -- Most sessions are guests' (''): only accounts' are looked up by account.
      CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account, seen_at) WHERE account <> '';
    `)
    this.sessions = this.sessionStore()
    this.accounts = this.accountStore()
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

  async open(): Promise<void> {
    const read = (key: string) => (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value
    this.db.prepare("INSERT INTO meta (key, value) VALUES ('epoch', ?) ON CONFLICT (key) DO NOTHING").run(newEpoch())
    this.epoch = read('epoch')!
    const newest = this.db.prepare('SELECT max(id) FROM events').pluck().get() as number | null
    this.last = Math.max(Number(read('last_id') ?? 0), newest ?? 0)
  }

  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    try {
      if (!this.intact()) throw this.lost
      const stored = numbered(drafts, this.last + 1, Date.now())
      this.appendAll(stored)
      this.last += stored.length
      // Acknowledged only if the file committed to is still the one a restart opens.
      if (!this.intact()) throw this.lost
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
    if (this.lost) return Promise.resolve(0)
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
  private writable(key: string): string {
    if (!this.intact()) throw this.lost
    return key
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close()
  }
}
