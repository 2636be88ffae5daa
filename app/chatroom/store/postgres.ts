import pg from 'pg'
import { deadline, DeadlineError } from '../deadline.js'
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

export interface PostgresStoreOptions {
  url: string
  /** Told about connection trouble (logged by the app). */
  onError?: (error: unknown) => void
  /** Longest wait for a connection, a query or a whole commit, in ms (default 2000). */
  timeoutMs?: number
}

/** How often a database that stopped answering is probed. */
const PROBE_MS = 250

// Several processes create the schema at once: one at a time, under an advisory lock.
const SCHEMA_LOCK = 0x63686174 // "chat"

// BIGINT columns come back as strings.
const SESSION_COLUMNS = '"user", created_at, seen_at, address, account, user_agent'
type SessionRow = { user: string; created_at: string; seen_at: string; address: string; account: string; user_agent: string }
const sessionRecord = (row: SessionRow): SessionRecord => ({
  user: row.user,
  createdAt: Number(row.created_at),
  seenAt: Number(row.seen_at),
  address: row.address,
  account: row.account,
  userAgent: row.user_agent,
})

const ACCOUNT_COLUMNS = 'id, name, skeleton, password_hash, email_hash, created_at'
type AccountRow = { id: string; name: string; skeleton: string; password_hash: string | null; email_hash: string | null; created_at: string }
const accountRecord = (row: AccountRow): AccountRecord => ({
  id: row.id,
  name: row.name,
  skeleton: row.skeleton,
  passwordHash: row.password_hash,
  ...(row.email_hash === null ? {} : { emailHash: row.email_hash }),
  createdAt: Number(row.created_at),
})

const PASSKEY_COLUMNS = 'id, account_id, public_key, counter, transports, created_at, last_used_at'
type PasskeyRow = { id: string; account_id: string; public_key: string; counter: string; transports: string[]; created_at: string; last_used_at: string | null }
const passkeyRecord = (row: PasskeyRow): PasskeyRecord => ({
  id: row.id,
  accountId: row.account_id,
  publicKey: row.public_key,
  counter: Number(row.counter),
  transports: row.transports,
  createdAt: Number(row.created_at),
  lastUsedAt: row.last_used_at === null ? null : Number(row.last_used_at),
})

/**
 * The log in PostgreSQL (STORE=postgres), shared by every process. Ids come from a counter row
 * updated in the insert's transaction: the row lock orders the transactions, so ids are
 * consecutive, never reused, and commit in id order (a SEQUENCE would leave gaps on rollback
 * and could commit out of order).
 */
export class PostgresStore implements Store {
  epoch = ''
  private readonly pool: pg.Pool
  readonly sessions: SessionStore = {
    create: async (hash: string, r: SessionRecord) => {
      await this.pool.query(
        'INSERT INTO chat_sessions (hash, "user", created_at, seen_at, address, account, user_agent) VALUES ($1, $2, $3, $4, $5, $6, $7)',
        [hash, r.user, r.createdAt, r.seenAt, r.address, r.account, r.userAgent],
      )
    },
    read: async (hash: string) => {
      const { rows } = await this.pool.query<SessionRow>(`SELECT ${SESSION_COLUMNS} FROM chat_sessions WHERE hash = $1`, [hash])
      const row = rows[0]
      return row && sessionRecord(row)
    },
    touch: async (hash: string, seenAt: number) => {
      await this.pool.query('UPDATE chat_sessions SET seen_at = $1 WHERE hash = $2', [seenAt, hash])
    },
    delete: async (hash: string) => {
      await this.pool.query('DELETE FROM chat_sessions WHERE hash = $1', [hash])
    },
    prune: async (idleBefore: number, createdBefore: number) =>
      (await this.pool.query('DELETE FROM chat_sessions WHERE seen_at < $1 OR created_at < $2', [idleBefore, createdBefore])).rowCount ?? 0,
    trim: async (address: string, keep: number, current: string) => {
      const { rows } = await this.pool.query<{ hash: string }>(
        `DELETE FROM chat_sessions WHERE address = $1 AND hash <> $2 AND hash NOT IN
           (SELECT hash FROM chat_sessions WHERE address = $1 AND hash <> $2 ORDER BY seen_at DESC LIMIT $3)
         RETURNING hash`,
        [address, current, Math.max(0, keep - 1)],
      )
      return rows.map((row) => row.hash)
    },
    count: async () => Number((await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM chat_sessions')).rows[0]!.n),
    // A guest's sessions ('') are nobody's to list or end (the condition also lets the partial index serve).
    list: async (account: string) => {
      const { rows } = await this.pool.query<SessionRow & { hash: string }>(
        `SELECT hash, ${SESSION_COLUMNS} FROM chat_sessions WHERE account = $1 AND account <> '' ORDER BY seen_at DESC`,
        [account],
      )
      return rows.map((row) => ({ ...sessionRecord(row), hash: row.hash }))
    },
    endAccount: async (account: string, except?: string) => {
      const { rows } = await this.pool.query<{ hash: string }>(
        "DELETE FROM chat_sessions WHERE account = $1 AND account <> '' AND hash IS DISTINCT FROM $2 RETURNING hash",
        [account, except ?? null],
      )
      return rows.map((row) => row.hash)
    },
  }

  // A duplicate (id or skeleton, credential id, provider user) is an answer, not an error:
  // ON CONFLICT DO NOTHING writes nothing, and a concurrent insert of the same key waits for
  // the first to commit, so exactly one of them is told true.
  readonly accounts: AccountStore = {
    create: async (r: AccountRecord) =>
      (
        await this.pool.query(
          'INSERT INTO chat_accounts (id, name, skeleton, password_hash, email_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
          [r.id, r.name, r.skeleton, r.passwordHash, r.emailHash ?? null, r.createdAt],
        )
      ).rowCount === 1,
    byId: async (id: string) => {
      const { rows } = await this.pool.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM chat_accounts WHERE id = $1`, [id])
      return rows[0] && accountRecord(rows[0])
    },
    bySkeleton: async (skeleton: string) => {
      const { rows } = await this.pool.query<AccountRow>(`SELECT ${ACCOUNT_COLUMNS} FROM chat_accounts WHERE skeleton = $1`, [skeleton])
      return rows[0] && accountRecord(rows[0])
    },
    setPassword: async (id: string, passwordHash: string) => {
      await this.pool.query('UPDATE chat_accounts SET password_hash = $1 WHERE id = $2', [passwordHash, id])
    },
    addPasskey: async (k: PasskeyRecord) =>
      (
        await this.pool.query(
          `INSERT INTO chat_passkeys (${PASSKEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
          [k.id, k.accountId, k.publicKey, k.counter, k.transports, k.createdAt, k.lastUsedAt],
        )
      ).rowCount === 1,
    passkey: async (id: string) => {
      const { rows } = await this.pool.query<PasskeyRow>(`SELECT ${PASSKEY_COLUMNS} FROM chat_passkeys WHERE id = $1`, [id])
      return rows[0] && passkeyRecord(rows[0])
    },
    passkeys: async (accountId: string) => {
      const { rows } = await this.pool.query<PasskeyRow>(`SELECT ${PASSKEY_COLUMNS} FROM chat_passkeys WHERE account_id = $1 ORDER BY created_at, id`, [accountId])
      return rows.map(passkeyRecord)
    },
    usePasskey: async (id: string, counter: number, at: number) => {
      await this.pool.query('UPDATE chat_passkeys SET counter = $1, last_used_at = $2 WHERE id = $3', [counter, at, id])
    },
    removePasskey: async (accountId: string, id: string) =>
      (await this.pool.query('DELETE FROM chat_passkeys WHERE id = $1 AND account_id = $2', [id, accountId])).rowCount === 1,
    link: async (provider: string, providerUserId: string, accountId: string) =>
      (
        await this.pool.query(
          'INSERT INTO chat_account_links (provider, provider_user_id, account_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [provider, providerUserId, accountId],
        )
      ).rowCount === 1,
    linked: async (provider: string, providerUserId: string) => {
      const { rows } = await this.pool.query<{ account_id: string }>(
        'SELECT account_id FROM chat_account_links WHERE provider = $1 AND provider_user_id = $2',
        [provider, providerUserId],
      )
      return rows[0]?.account_id
    },
  }

  constructor(options: PostgresStoreOptions) {
    // Fail fast while the database is away or stopped (a clear 503) instead of queueing for long.
    this.timeoutMs = options.timeoutMs ?? 2000
    this.onError = options.onError ?? (() => {})
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: 4,
      connectionTimeoutMillis: this.timeoutMs,
      query_timeout: this.timeoutMs,
      idleTimeoutMillis: 10_000,
    })
    this.pool.on('error', (error) => this.onError(error))
  }

  private readonly timeoutMs: number
  private readonly onError: (error: unknown) => void
  /** Set while the database does not answer: commits are refused at once until a probe answers. */
  private hung: Promise<void> | undefined
  private closing = false

  private markHung(): void {
    if (this.hung || this.closing) return
    this.onError(new Error(`PostgreSQL did not answer within ${this.timeoutMs} ms: refusing commits until it answers again`))
    this.hung = (async () => {
      while (!this.closing) {
        await new Promise((resolve) => setTimeout(resolve, PROBE_MS).unref())
        if (await this.probe()) break
      }
      this.hung = undefined
    })()
  }

  private async probe(): Promise<boolean> {
    try {
      await this.pool.query('SELECT 1')
      return true
    } catch {
      return false
    }
  }

  async open(): Promise<void> {
    const client = await this.pool.connect()
    client.on('error', () => {})
    try {
      await client.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK])
      await client.query(`
        CREATE TABLE IF NOT EXISTS chat_log (id INT PRIMARY KEY DEFAULT 1 CHECK (id = 1), epoch TEXT NOT NULL, last_id BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS chat_events (id BIGINT PRIMARY KEY, at BIGINT NOT NULL, json TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS chat_events_at ON chat_events (at);
        CREATE TABLE IF NOT EXISTS chat_sessions (hash TEXT PRIMARY KEY, "user" TEXT NOT NULL, created_at BIGINT NOT NULL, seen_at BIGINT NOT NULL);
        ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS address TEXT NOT NULL DEFAULT '';
        CREATE INDEX IF NOT EXISTS chat_sessions_address ON chat_sessions (address, seen_at);
        ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS account TEXT NOT NULL DEFAULT '';
        ALTER TABLE chat_sessions ADD COLUMN IF NOT EXISTS user_agent TEXT NOT NULL DEFAULT '';
        -- Most sessions are guests' (''): only accounts' are looked up by account.
        CREATE INDEX IF NOT EXISTS chat_sessions_account ON chat_sessions (account, seen_at) WHERE account <> '';
        CREATE TABLE IF NOT EXISTS chat_accounts (id TEXT PRIMARY KEY, name TEXT NOT NULL, skeleton TEXT NOT NULL UNIQUE, password_hash TEXT, email_hash TEXT,
          created_at BIGINT NOT NULL);
        -- counter: the authenticator's is 32 bits unsigned, beyond INT.
        CREATE TABLE IF NOT EXISTS chat_passkeys (id TEXT PRIMARY KEY, account_id TEXT NOT NULL REFERENCES chat_accounts (id), public_key TEXT NOT NULL,
          counter BIGINT NOT NULL, transports TEXT[] NOT NULL, created_at BIGINT NOT NULL, last_used_at BIGINT);
        CREATE INDEX IF NOT EXISTS chat_passkeys_account ON chat_passkeys (account_id);
        CREATE TABLE IF NOT EXISTS chat_account_links (provider TEXT NOT NULL, provider_user_id TEXT NOT NULL, account_id TEXT NOT NULL,
          PRIMARY KEY (provider, provider_user_id));
      `)
      await client.query('INSERT INTO chat_log (epoch, last_id) VALUES ($1, 0) ON CONFLICT (id) DO NOTHING', [newEpoch()])
      this.epoch = (await client.query<{ epoch: string }>('SELECT epoch FROM chat_log')).rows[0]!.epoch
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK]).catch(() => {})
      client.release()
    }
  }

  /**
   * The whole transaction has one deadline: past it the connection is destroyed, so the
   * database rolls the transaction back (unless its COMMIT was already on the way, when the
   * event stands and is delivered by the catch-up: refused, yet in the log, never lost).
   */
  async append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    if (this.hung) throw new DeadlineError('PostgreSQL', this.timeoutMs)
    let client: pg.PoolClient | undefined
    let late = false
    try {
      return await deadline(this.transaction(drafts, (c) => (client = c), () => late), this.timeoutMs, 'PostgreSQL', () => {
        late = true
        ;(client as (pg.PoolClient & { connection?: { stream?: { destroy(): void } } }) | undefined)?.connection?.stream?.destroy()
      })
    } catch (error) {
      if (late || /timeout/i.test((error as Error).message)) this.markHung()
      throw error
    }
  }

  private async transaction(drafts: readonly EventDraft[], checkedOut: (client: pg.PoolClient) => void, late: () => boolean): Promise<StoredEvent[]> {
    const client = await this.pool.connect()
    checkedOut(client)
    // A connection that breaks while checked out reports here; the query's rejection says the rest.
    const ignore = () => {}
    client.on('error', ignore)
    let broken: Error | undefined
    try {
      if (late()) throw new DeadlineError('PostgreSQL', this.timeoutMs)
      await client.query('BEGIN')
      const { rows } = await client.query<{ last_id: string }>('UPDATE chat_log SET last_id = last_id + $1 RETURNING last_id', [drafts.length])
      const stored = numbered(drafts, Number(rows[0]!.last_id) - drafts.length + 1, Date.now())
      await client.query(
        'INSERT INTO chat_events (id, at, json) SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[])',
        [stored.map((s) => s.event.id), stored.map((s) => s.event.timestamp), stored.map((s) => s.json)],
      )
      await client.query('COMMIT')
      return stored
    } catch (error) {
      // No ROLLBACK (a stopped database would not answer it either): the connection is
      // destroyed on release, and the database rolls back what it had of the transaction.
      broken = error as Error
      throw error
    } finally {
      client.off('error', ignore)
      // A client that failed is not given back to the pool: the next query gets a fresh connection.
      client.release(broken)
    }
  }

  async after(after: number, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{ json: string }>('SELECT json FROM chat_events WHERE id > $1 ORDER BY id LIMIT $2', [after, limit])
    return rows.map((row) => fromJson(row.json))
  }

  async before(before: number, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{ json: string }>(
      'SELECT json FROM (SELECT id, json FROM chat_events WHERE id < $1 ORDER BY id DESC LIMIT $2) newest ORDER BY id',
      [before, limit],
    )
    return rows.map((row) => fromJson(row.json))
  }

  async lastId(): Promise<number> {
    const { rows } = await this.pool.query<{ last_id: string }>('SELECT last_id FROM chat_log')
    return Number(rows[0]?.last_id ?? 0)
  }

  async prune(maxEvents: number, maxAgeMs: number): Promise<number> {
    let deleted = 0
    if (maxEvents > 0) deleted += (await this.pool.query('DELETE FROM chat_events WHERE id <= (SELECT last_id FROM chat_log) - $1', [maxEvents])).rowCount ?? 0
    if (maxAgeMs > 0) deleted += (await this.pool.query('DELETE FROM chat_events WHERE at < $1', [Date.now() - maxAgeMs])).rowCount ?? 0
    return deleted
  }

  /** Within a second, whatever the database does. */
  async ready(): Promise<boolean> {
    if (this.hung) return false
    return deadline(this.probe(), Math.min(this.timeoutMs, 900), 'PostgreSQL').catch(() => false)
  }

  async close(): Promise<void> {
    this.closing = true
    // end() waits for every connection to be given back; one stuck on a stopped database is not waited for.
    await deadline(this.pool.end(), this.timeoutMs, 'PostgreSQL').catch(() => {})
  }
}
