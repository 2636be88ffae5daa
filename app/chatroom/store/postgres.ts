import pg from 'pg'
import { deadline, DeadlineError } from '../deadline.js'
import { hidePassword, lostPrimary, postgresHosts } from './pg-hosts.js'
import { withoutText, withText, type EventDraft, type StoredEvent } from '../event.js'
import {
  fromJson,
  LOBBY,
  LobbyMethods,
  newEpoch,
  planAppend,
  searchTerms,
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
  type RoomRules,
  withRules,
} from './store.js'

export interface PostgresStoreOptions {
  url: string
  /** Told about connection trouble (logged by the app). */
  onError?: (error: unknown) => void
  /** Longest wait for a connection, a query or a whole commit, in ms (default 2000). */
  timeoutMs?: number
  /** Connections this process keeps open at most (PG_POOL_SIZE, default 4). */
  poolSize?: number
}

type FileRow = { room: string; id: string; owner: string; name: string; size: string; type: string; width: number | null; height: number | null; at: string; message: string | null }
const fileRecord = (r: FileRow): FileRecord => ({
  room: r.room, id: r.id, owner: r.owner, name: r.name, size: Number(r.size), type: r.type, width: r.width ?? undefined, height: r.height ?? undefined, at: Number(r.at),
  message: r.message === null ? undefined : Number(r.message),
})

/** How often a database that stopped answering is probed. */
const PROBE_MS = 250

/** No host of DATABASE_URL takes writes (the primary is gone and no standby has been promoted yet): 503. */
export class NoPrimaryError extends Error {
  readonly statusCode = 503
  constructor() {
    super('PostgreSQL: no host takes writes right now (failing over)')
    this.name = 'NoPrimaryError'
  }
}

// Several processes create the schema at once: one at a time, under an advisory lock.
const SCHEMA_LOCK = 0x63686174 // "chat"
/**
 * The version of the tables open() makes: bump it with every change to them. A database already
 * at it skips the DDL, whose locks (ALTER TABLE takes the table whole) would otherwise meet the
 * commits of processes already running: a process restarting beside a busy one failed to start
 * with "deadlock detected".
 */
const SCHEMA_VERSION = 5
/** Waiting for the schema lock, and moving a long log into the lobby, may take longer than a request. */
const SCHEMA_MS = 10 * 60_000
/** A query given SCHEMA_MS instead of the pool's deadline (pg reads query_timeout per query; its types leave it out). */
const slow = (text: string, values: unknown[] = []): pg.QueryConfig => Object.assign({ text, values }, { query_timeout: SCHEMA_MS })

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

type ReportRow = { ref: string; reporter: string; name: string; reason: string; at: string; handled_by: string | null; outcome: string | null }
const asReport = (r: ReportRow): Report => ({ ref: Number(r.ref), reporter: r.reporter, name: r.name, reason: r.reason, at: Number(r.at), handledBy: r.handled_by ?? undefined, outcome: r.outcome ?? undefined })

const ROOM_COLUMNS = 'name, skeleton, title, topic, visibility, created_by, created_at'
/** What a room is read with: its columns and its rules. */
const ROOM_READ = `${ROOM_COLUMNS}, slow, closed`
type RoomRow = { name: string; skeleton: string; title: string; topic: string; visibility: RoomVisibility; created_by: string; created_at: string; slow: number; closed: boolean }
const roomRecord = (row: RoomRow): RoomRecord =>
  withRules(
    { name: row.name, skeleton: row.skeleton, title: row.title, topic: row.topic, visibility: row.visibility, createdBy: row.created_by, createdAt: Number(row.created_at) },
    { slow: row.slow, closed: row.closed },
  )

/** The two people of a direct room in one order (JavaScript's), whichever order they are given in. */
const pair = (a: string, b: string): [string, string] => (a < b ? [a, b] : [b, a])

/** One room's log: its counter row in chat_room_logs, its events in chat_room_events. */
class PostgresLog implements RoomLog {
  constructor(
    readonly room: string,
    readonly epoch: string,
    private readonly pool: pg.Pool,
    /** The store's commit: one transaction under one deadline, refused at once while the database is hung. */
    private readonly commit: (room: string, drafts: readonly EventDraft[]) => Promise<StoredEvent[]>,
  ) {}

  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    return this.commit(this.room, drafts)
  }

  async after(after: number, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{ json: string }>('SELECT json FROM chat_room_events WHERE room = $1 AND id > $2 ORDER BY id LIMIT $3', [
      this.room,
      after,
      limit,
    ])
    return rows.map((row) => fromJson(row.json))
  }

  async before(before: number, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{ json: string }>(
      'SELECT json FROM (SELECT id, json FROM chat_room_events WHERE room = $1 AND id < $2 ORDER BY id DESC LIMIT $3) newest ORDER BY id',
      [this.room, before, limit],
    )
    return rows.map((row) => fromJson(row.json))
  }

  async message(id: number): Promise<SentMessage | undefined> {
    const { rows } = await this.pool.query<{ json: string; sender: string | null }>('SELECT json, sender FROM chat_room_events WHERE room = $1 AND id = $2', [
      this.room,
      id,
    ])
    const stored = rows[0] && fromJson(rows[0].json)
    return stored?.event.type === 'message' ? { stored, sender: rows[0]!.sender ?? undefined } : undefined
  }

  async thread(root: number, after: number, limit: number): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<{ json: string }>(
      "SELECT json FROM chat_room_events WHERE room = $1 AND ref = $2 AND id > $3 AND json::jsonb->>'type' = 'message' ORDER BY id LIMIT $4",
      [this.room, root, Math.max(root, after), limit],
    )
    return rows.map((row) => fromJson(row.json))
  }

  async lastId(): Promise<number> {
    const { rows } = await this.pool.query<{ last_id: string }>('SELECT last_id FROM chat_room_logs WHERE room = $1', [this.room])
    return Number(rows[0]?.last_id ?? 0)
  }

  async prune(maxEvents: number, maxAgeMs: number): Promise<number> {
    let deleted = 0
    if (maxEvents > 0) {
      deleted +=
        (
          await this.pool.query('DELETE FROM chat_room_events WHERE room = $1 AND id <= (SELECT last_id FROM chat_room_logs WHERE room = $1) - $2', [
            this.room,
            maxEvents,
          ])
        ).rowCount ?? 0
    }
    if (maxAgeMs > 0) {
      deleted += (await this.pool.query('DELETE FROM chat_room_events WHERE room = $1 AND at < $2', [this.room, Date.now() - maxAgeMs])).rowCount ?? 0
    }
    return deleted
  }
}

/** Rooms asked in one statement by lastIds(). */
const LAST_IDS_SLICE = 5000

/**
 * The logs in PostgreSQL (STORE=postgres), shared by every process. Each room's ids come from
 * its counter row, updated in the insert's transaction: the row lock orders that room's
 * transactions, so ids are consecutive, never reused, and commit in id order (a SEQUENCE would
 * leave gaps on rollback and could commit out of order); different rooms' rows never wait for
 * each other.
 */
export class PostgresStore extends LobbyMethods implements Store {
  private readonly pool: pg.Pool
  readonly files: FileStore = {
    put: async (r: FileRecord, bytes: Buffer, thumbnail?: Buffer) => {
      await this.pool.query(
        'INSERT INTO chat_room_files (room, id, owner, name, size, type, width, height, at, bytes, thumbnail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
        [r.room, r.id, r.owner, r.name, r.size, r.type, r.width ?? null, r.height ?? null, r.at, bytes, thumbnail ?? null],
      )
    },
    attach: async (room: string, id: string, message: number) => {
      await this.pool.query('UPDATE chat_room_files SET message = $1 WHERE room = $2 AND id = $3', [message, room, id])
    },
    get: async (room: string, id: string) => {
      const { rows } = await this.pool.query<FileRow>('SELECT room, id, owner, name, size, type, width, height, at, message FROM chat_room_files WHERE room = $1 AND id = $2', [room, id])
      const row = rows[0]
      return row && fileRecord(row)
    },
    bytes: async (room: string, id: string, which: 'file' | 'thumbnail') => {
      const column = which === 'file' ? 'bytes' : 'thumbnail'
      const { rows } = await this.pool.query<{ data: Buffer | null }>(`SELECT ${column} AS data FROM chat_room_files WHERE room = $1 AND id = $2`, [room, id])
      return rows[0]?.data ?? undefined
    },
    remove: async (room: string, id: string) => ((await this.pool.query('DELETE FROM chat_room_files WHERE room = $1 AND id = $2', [room, id])).rowCount ?? 0) === 1,
    usedSince: async (owner: string, since: number) => {
      const { rows } = await this.pool.query<{ used: string }>('SELECT coalesce(sum(size), 0) AS used FROM chat_room_files WHERE owner = $1 AND at >= $2', [owner, since])
      return Number(rows[0]?.used ?? 0)
    },
    prune: async (room: string, through: number, staleBefore: number) =>
      (await this.pool.query('DELETE FROM chat_room_files WHERE room = $1 AND (message <= $2 OR (message IS NULL AND at < $3))', [room, through, staleBefore])).rowCount ?? 0,
  }
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

  // A duplicate (name or skeleton, member, direct pair) is an answer, not an error, as for accounts.
  readonly rooms: RoomStore = {
    create: async (r: RoomRecord) =>
      (
        await this.pool.query(`INSERT INTO chat_rooms (${ROOM_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`, [
          r.name,
          r.skeleton,
          r.title,
          r.topic,
          r.visibility,
          r.createdBy,
          r.createdAt,
        ])
      ).rowCount === 1,
    get: async (name: string) => {
      const { rows } = await this.pool.query<RoomRow>(`SELECT ${ROOM_READ} FROM chat_rooms WHERE name = $1`, [name])
      return rows[0] && roomRecord(rows[0])
    },
    describe: async (name: string, title: string, topic: string) => (await this.pool.query('UPDATE chat_rooms SET title = $1, topic = $2 WHERE name = $3', [title, topic, name])).rowCount === 1,
    setRules: async (name: string, rules: RoomRules) => (await this.pool.query('UPDATE chat_rooms SET slow = $1, closed = $2 WHERE name = $3', [rules.slow, rules.closed, name])).rowCount === 1,
    bySkeleton: async (skeleton: string) => {
      const { rows } = await this.pool.query<RoomRow>(`SELECT ${ROOM_READ} FROM chat_rooms WHERE skeleton = $1`, [skeleton])
      return rows[0] && roomRecord(rows[0])
    },
    // By name in code-unit order (COLLATE "C"), whatever the database's collation.
    visibleTo: async (person: string) => {
      const { rows } = await this.pool.query<RoomRow>(
        `SELECT ${ROOM_READ} FROM chat_rooms r
         WHERE visibility = 'public' OR EXISTS (SELECT 1 FROM chat_room_members m WHERE m.room = r.name AND m.person = $1)
         ORDER BY name COLLATE "C"`,
        [person],
      )
      return rows.map(roomRecord)
    },
    counts: async (person: string) => {
      const { rows } = await this.pool.query<{ created: string; total: string }>(
        'SELECT count(*) FILTER (WHERE created_by = $1) AS created, count(*) AS total FROM chat_rooms',
        [person],
      )
      return { created: Number(rows[0]!.created), total: Number(rows[0]!.total) }
    },
    addMember: async (room: string, person: string, role: RoomRole, name = '') =>
      (
        await this.pool.query('INSERT INTO chat_room_members (room, person, role, joined_at, name) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING', [
          room,
          person,
          role,
          Date.now(),
          name,
        ])
      ).rowCount === 1,
    named: async (room: string, limit: number) =>
      (await this.pool.query<RoomMember>('SELECT person, name, role FROM chat_room_members WHERE room = $1 ORDER BY seq LIMIT $2', [room, limit])).rows,
    removeMember: async (room: string, person: string) =>
      (await this.pool.query('DELETE FROM chat_room_members WHERE room = $1 AND person = $2', [room, person])).rowCount === 1,
    role: async (room: string, person: string) => {
      const { rows } = await this.pool.query<{ role: RoomRole }>('SELECT role FROM chat_room_members WHERE room = $1 AND person = $2', [room, person])
      return rows[0]?.role
    },
    setRole: async (room: string, person: string, role: RoomRole) =>
      (await this.pool.query('UPDATE chat_room_members SET role = $3 WHERE room = $1 AND person = $2', [room, person, role])).rowCount === 1,
    restrict: async (room: string, r: Restriction) => {
      await this.pool.query(
        `INSERT INTO chat_room_restrictions (room, person, kind, name, until, by_name, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (room, kind, person) DO UPDATE SET name = excluded.name, until = excluded.until, by_name = excluded.by_name, reason = excluded.reason, at = excluded.at`,
        [room, r.person, r.kind, r.name, r.until ?? null, r.by, r.reason, r.at],
      )
    },
    lift: async (room: string, person: string, kind: Restriction['kind']) =>
      (await this.pool.query('DELETE FROM chat_room_restrictions WHERE room = $1 AND kind = $2 AND person = $3', [room, kind, person])).rowCount === 1,
    restrictions: async (room: string, now: number) => {
      const { rows } = await this.pool.query<{ person: string; name: string; kind: Restriction['kind']; until: string | null; by_name: string; reason: string; at: string }>(
        'SELECT person, name, kind, until, by_name, reason, at FROM chat_room_restrictions WHERE room = $1 AND (until IS NULL OR until > $2) ORDER BY at, seq',
        [room, now],
      )
      return rows.map((r) => ({ person: r.person, name: r.name, kind: r.kind, until: r.until === null ? undefined : Number(r.until), by: r.by_name, reason: r.reason, at: Number(r.at) }))
    },
    barred: async (person: string, now: number) =>
      (await this.pool.query<{ room: string }>("SELECT room FROM chat_room_restrictions WHERE person = $1 AND kind = 'ban' AND (until IS NULL OR until > $2) ORDER BY room", [person, now])).rows.map((r) => r.room),
    report: async (room: string, r: Report) =>
      (await this.pool.query('INSERT INTO chat_room_reports (room, ref, reporter, name, reason, at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING', [room, r.ref, r.reporter, r.name, r.reason, r.at])).rowCount === 1,
    reports: async (room: string, limit: number) =>
      (await this.pool.query<ReportRow>('SELECT ref, reporter, name, reason, at, handled_by, outcome FROM chat_room_reports WHERE room = $1 AND handled_by IS NULL ORDER BY at, seq LIMIT $2', [room, limit])).rows.map(asReport),
    handleReports: async (room: string, ref: number, by: string, outcome: string, at: number) =>
      (
        await this.pool.query<ReportRow>(
          'UPDATE chat_room_reports SET handled_by = $1, outcome = $2, handled_at = $3 WHERE room = $4 AND ref = $5 AND handled_by IS NULL RETURNING ref, reporter, name, reason, at, handled_by, outcome',
          [by, outcome, at, room, ref],
        )
      ).rows.map(asReport),
    memberOf: async (person: string) => {
      const { rows } = await this.pool.query<{ room: string }>('SELECT room FROM chat_room_members WHERE person = $1 ORDER BY room', [person])
      return rows.map((row) => row.room)
    },
    members: async (room: string) => {
      const { rows } = await this.pool.query<{ person: string }>('SELECT person FROM chat_room_members WHERE room = $1 ORDER BY seq', [room])
      return rows.map((row) => row.person)
    },
    readMarker: async (room: string, person: string) => {
      const { rows } = await this.pool.query<{ last_read: string }>('SELECT last_read FROM chat_read_markers WHERE room = $1 AND person = $2', [room, person])
      return Number(rows[0]?.last_read ?? 0)
    },
    markRead: async (room: string, person: string, id: number) => {
      if (id <= 0) return
      await this.pool.query(
        `INSERT INTO chat_read_markers (room, person, last_read) VALUES ($1, $2, $3)
         ON CONFLICT (room, person) DO UPDATE SET last_read = EXCLUDED.last_read WHERE chat_read_markers.last_read < EXCLUDED.last_read`,
        [room, person, id],
      )
    },
    direct: async (a: string, b: string) => {
      const { rows } = await this.pool.query<RoomRow>(
        'SELECT r.* FROM chat_direct_rooms d JOIN chat_rooms r ON r.name = d.room WHERE d.a = $1 AND d.b = $2',
        pair(a, b),
      )
      return rows[0] && roomRecord(rows[0])
    },
    setDirect: async (a: string, b: string, room: string) =>
      (await this.pool.query('INSERT INTO chat_direct_rooms (a, b, room) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [...pair(a, b), room])).rowCount === 1,
  }

  constructor(options: PostgresStoreOptions) {
    super()
    // Fail fast while the database is away or stopped (a clear 503) instead of queueing for long.
    this.timeoutMs = options.timeoutMs ?? 2000
    this.onError = options.onError ?? (() => {})
    this.hosts = postgresHosts(options.url)
    // Every connection the pool opens goes to the host that takes writes now (hosts[current]),
    // and one that cannot be opened sets the search for it going. Each remembers its host: one
    // left from before a switch is let go when it is handed back, and its errors are old news.
    const store = this
    class PrimaryClient extends pg.Client {
      readonly target = store.current
      constructor(config?: string | pg.ClientConfig) {
        super({ ...(typeof config === 'string' ? {} : config), connectionString: store.hosts[store.current] })
      }
      override connect(): Promise<pg.Client>
      override connect(callback: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): void
      override connect(callback?: ((err: Error) => void) | ((err: null, c: pg.Client) => void)): Promise<pg.Client> | void {
        if (!callback) {
          return super.connect().catch((error: unknown) => {
            store.lost(error, this.target)
            throw error
          })
        }
        const done = callback as (err: Error | null, c?: pg.Client) => void
        super.connect((error: Error | null, c?: pg.Client) => {
          if (error) store.lost(error, this.target)
          done(error, c)
        })
      }
    }
    this.pool = new pg.Pool({
      connectionString: this.hosts[0],
      max: options.poolSize ?? 4,
      connectionTimeoutMillis: this.timeoutMs,
      query_timeout: this.timeoutMs,
      idleTimeoutMillis: 10_000,
      Client: PrimaryClient,
    })
    this.pool.on('error', (error, client) => {
      this.onError(error)
      this.lost(error, (client as { target?: number }).target)
    })
    // Every query's client comes back here, with the error if it failed: any write refused as
    // read-only, any connection lost, on every path (not only commits).
    this.pool.on('release', (error: Error | undefined, client) => {
      const target = (client as { target?: number }).target
      if (error) this.lost(error, target)
      // A connection to a host that no longer takes writes is not kept: pg-pool ends and drops a
      // released client marked as ending (its check, as of pg-pool 3; it calls end() once).
      if (this.hosts.length > 1 && target !== undefined && target !== this.current) (client as { _ending?: boolean })._ending = true
    })
  }

  /** One URL per host of DATABASE_URL; `current` is the one that takes writes (the primary). */
  private readonly hosts: string[]
  private current = 0
  /** The search for the host that takes writes, while one is under way. */
  private locating: Promise<boolean> | undefined
  /** Set once a search found no host that takes writes, until one does: commits are refused at once. */
  private noPrimary = false

  /**
   * An error that says the primary went away (or is one no longer): with several hosts, look for
   * the one that is. An error from a connection to a host that is no longer the one is old news.
   */
  private lost(error: unknown, target?: number): void {
    if (this.hosts.length < 2 || this.closing || (target !== undefined && target !== this.current) || !lostPrimary(error)) return
    void this.locate()
  }

  /**
   * Looks for the host that takes writes, the current one first, until one does (or the store
   * closes); one search at a time. After a first round that finds none, writes are refused at once,
   * and the rounds slow down to one every 2 s; what each host answered is logged then and every minute.
   */
  private locate(): Promise<boolean> {
    if (this.closing) return Promise.resolve(false)
    this.locating ??= (async () => {
      try {
        for (let round = 0; !this.closing; round++) {
          const why: string[] = []
          const seen = { currentSlow: false }
          const found = await this.findPrimary(why, seen)
          if (found !== undefined) {
            if (found !== this.current) this.onError(new Error(`PostgreSQL: writes now go to ${hidePassword(this.hosts[found]!)} (it took over as primary)`))
            this.current = found
            this.noPrimary = false
            return true
          }
          // Refused at once only when the primary is gone or a standby now; one that is merely slow
          // (overloaded) keeps taking commits, each bounded by its deadline, while the search goes on.
          this.noPrimary = !seen.currentSlow
          const wait = Math.min(2000, PROBE_MS * (round + 1))
          if (round % Math.ceil(60_000 / wait) === 0) this.onError(new Error(`PostgreSQL: none of the ${this.hosts.length} hosts takes writes; refusing them until one does (${why.join('; ')})`))
          await new Promise((resolve) => setTimeout(resolve, wait).unref())
        }
        return false
      } finally {
        this.locating = undefined
      }
    })()
    return this.locating
  }

  /** The index of the first host (the current one first) that answers and is not in recovery; what each said, in `why`. */
  private async findPrimary(why: string[] = [], seen = { currentSlow: false }): Promise<number | undefined> {
    const order = [this.current, ...this.hosts.keys()].filter((i, at, all) => all.indexOf(i) === at)
    for (const i of order) {
      const client = new pg.Client({ connectionString: this.hosts[i], connectionTimeoutMillis: this.timeoutMs, query_timeout: this.timeoutMs })
      client.on('error', () => {})
      try {
        await client.connect()
        const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby')
        if (rows[0]?.standby === false) return i
        why.push(`${hidePassword(this.hosts[i]!)}: a standby`)
      } catch (error) {
        why.push(`${hidePassword(this.hosts[i]!)}: ${(error as Error).message}`)
        if (i === this.current && /time(d)? ?out/i.test((error as Error).message)) seen.currentSlow = true
      } finally {
        await deadline(client.end(), this.timeoutMs, 'PostgreSQL').catch(() => {})
      }
    }
    return undefined
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
    if (this.hosts.length > 1) {
      const why: string[] = []
      const found = await this.findPrimary(why)
      if (found === undefined) throw new Error(`none of the ${this.hosts.length} hosts of DATABASE_URL takes writes (${why.join('; ')})`)
      this.current = found
    }
    const client = await this.pool.connect()
    client.on('error', () => {})
    try {
      await client.query(slow('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK]))
      if (!(await this.schemaCurrent(client))) await this.createSchema(client)
      await client.query('INSERT INTO chat_room_logs (room, epoch, last_id) VALUES ($1, $2, 0) ON CONFLICT (room) DO NOTHING', [LOBBY, newEpoch()])
      const { rows } = await client.query<{ epoch: string }>('SELECT epoch FROM chat_room_logs WHERE room = $1', [LOBBY])
      this.lobby = new PostgresLog(LOBBY, rows[0]!.epoch, this.pool, this.commit)
      this.loaded.set(LOBBY, Promise.resolve(this.lobby))
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK]).catch(() => {})
      client.release()
    }
  }

  /** Whether the database's tables are at SCHEMA_VERSION (read without taking any table's lock). */
  private async schemaCurrent(client: pg.PoolClient): Promise<boolean> {
    const { rows } = await client.query<{ made: boolean }>("SELECT to_regclass('chat_schema') IS NOT NULL AS made")
    if (!rows[0]!.made) return false
    const version = await client.query<{ version: number }>('SELECT max(version) AS version FROM chat_schema')
    return (version.rows[0]?.version ?? 0) >= SCHEMA_VERSION
  }

  /** Makes the tables (or brings older ones up to date), under the schema lock, then records SCHEMA_VERSION. */
  private async createSchema(client: pg.PoolClient): Promise<void> {
    await client.query(`
        -- One counter row per room (its epoch, the newest id given out) and every room's events.
        CREATE TABLE IF NOT EXISTS chat_room_logs (room TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_id BIGINT NOT NULL);
        CREATE TABLE IF NOT EXISTS chat_room_events (room TEXT NOT NULL, id BIGINT NOT NULL, at BIGINT NOT NULL, json TEXT NOT NULL,
          PRIMARY KEY (room, id));
        CREATE INDEX IF NOT EXISTS chat_room_events_at ON chat_room_events (room, at);
        -- Who sent a message and its client id (a resend answers the first), what an edit or a deletion refers to.
        ALTER TABLE chat_room_events ADD COLUMN IF NOT EXISTS sender TEXT;
        ALTER TABLE chat_room_events ADD COLUMN IF NOT EXISTS client_id TEXT;
        ALTER TABLE chat_room_events ADD COLUMN IF NOT EXISTS ref BIGINT;
        CREATE UNIQUE INDEX IF NOT EXISTS chat_room_events_client ON chat_room_events (room, sender, client_id) WHERE client_id IS NOT NULL;
        CREATE INDEX IF NOT EXISTS chat_room_events_ref ON chat_room_events (room, ref) WHERE ref IS NOT NULL;
        -- Search: a message's words and its file's name, made from its JSON (an edit or a deletion rewrites both).
        -- Made before files (version 4): its words had no file names; made again.
        DO $$ BEGIN
          IF EXISTS (SELECT 1 FROM pg_attribute a JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
                     WHERE a.attrelid = 'chat_room_events'::regclass AND a.attname = 'words' AND pg_get_expr(d.adbin, d.adrelid) NOT LIKE '%file%') THEN
            ALTER TABLE chat_room_events DROP COLUMN words;
          END IF;
        END $$;
        ALTER TABLE chat_room_events ADD COLUMN IF NOT EXISTS words tsvector GENERATED ALWAYS AS (
          CASE WHEN json::jsonb->>'type' = 'message' THEN to_tsvector('simple', coalesce(json::jsonb->>'text', '') || ' ' ||
            regexp_replace(coalesce(json::jsonb->'file'->>'name', ''), '[^[:alnum:]_]+', ' ', 'g')) END) STORED;
        CREATE INDEX IF NOT EXISTS chat_room_events_words ON chat_room_events USING GIN (words);
        CREATE TABLE IF NOT EXISTS chat_rooms (name TEXT PRIMARY KEY, skeleton TEXT NOT NULL UNIQUE, title TEXT NOT NULL, topic TEXT NOT NULL,
          visibility TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL);
        -- seq: the order members joined in, whatever the clocks of the processes that added them.
        CREATE TABLE IF NOT EXISTS chat_room_members (room TEXT NOT NULL, person TEXT NOT NULL, role TEXT NOT NULL, joined_at BIGINT NOT NULL,
          seq BIGINT GENERATED ALWAYS AS IDENTITY, PRIMARY KEY (room, person));
        CREATE INDEX IF NOT EXISTS chat_room_members_person ON chat_room_members (person);
        ALTER TABLE chat_room_members ADD COLUMN IF NOT EXISTS name TEXT NOT NULL DEFAULT '';
        ALTER TABLE chat_rooms ADD COLUMN IF NOT EXISTS slow INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE chat_rooms ADD COLUMN IF NOT EXISTS closed BOOLEAN NOT NULL DEFAULT false;
        -- A ban or a mute of a person in a room (until NULL: for good).
        CREATE TABLE IF NOT EXISTS chat_room_restrictions (room TEXT NOT NULL, person TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
          until BIGINT, by_name TEXT NOT NULL, reason TEXT NOT NULL, at BIGINT NOT NULL, seq BIGINT GENERATED ALWAYS AS IDENTITY,
          PRIMARY KEY (room, kind, person));
        CREATE INDEX IF NOT EXISTS chat_room_restrictions_person ON chat_room_restrictions (person, kind);
        CREATE TABLE IF NOT EXISTS chat_read_markers (room TEXT NOT NULL, person TEXT NOT NULL, last_read BIGINT NOT NULL, PRIMARY KEY (room, person));
        -- A report of a message to the room's moderators (handled_by NULL: open); one open report per person and message.
        CREATE TABLE IF NOT EXISTS chat_room_reports (room TEXT NOT NULL, ref BIGINT NOT NULL, reporter TEXT NOT NULL, name TEXT NOT NULL, reason TEXT NOT NULL,
          at BIGINT NOT NULL, handled_by TEXT, outcome TEXT, handled_at BIGINT, seq BIGINT GENERATED ALWAYS AS IDENTITY);
        CREATE UNIQUE INDEX IF NOT EXISTS chat_room_reports_open ON chat_room_reports (room, ref, reporter) WHERE handled_by IS NULL;
        -- (a, b): the two people in JavaScript's string order (a < b), so each pair has one row.
        CREATE TABLE IF NOT EXISTS chat_direct_rooms (a TEXT NOT NULL, b TEXT NOT NULL, room TEXT NOT NULL, PRIMARY KEY (a, b));
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
        CREATE TABLE IF NOT EXISTS chat_schema (version INT NOT NULL);
        -- A file sent in a message, its bytes and an image's thumbnail (every process serves the same); message NULL: not committed yet.
        CREATE TABLE IF NOT EXISTS chat_room_files (room TEXT NOT NULL, id TEXT NOT NULL, owner TEXT NOT NULL, name TEXT NOT NULL, size BIGINT NOT NULL,
          type TEXT NOT NULL, width INT, height INT, at BIGINT NOT NULL, message BIGINT, bytes BYTEA NOT NULL, thumbnail BYTEA, PRIMARY KEY (room, id));
        CREATE INDEX IF NOT EXISTS chat_room_files_owner ON chat_room_files (owner, at);
    `)
    await this.moveOneRoomLog(client)
    await client.query('INSERT INTO chat_schema (version) VALUES ($1)', [SCHEMA_VERSION])
  }

  /**
   * Databases made before rooms had one log: chat_log (its epoch and last id) and chat_events.
   * It becomes the lobby's log, ids and epoch unchanged, once: only while the lobby has no log
   * yet, in one transaction that also drops the old tables (the schema lock keeps other new
   * processes out; the table lock holds off, then fails, processes of the older version).
   */
  private async moveOneRoomLog(client: pg.PoolClient): Promise<void> {
    const query = (text: string, values: unknown[] = []) => client.query(slow(text, values))
    const { rows } = await query("SELECT to_regclass('chat_log') IS NOT NULL AND to_regclass('chat_events') IS NOT NULL AS old")
    if (!(rows[0] as { old: boolean }).old) return
    await query('BEGIN')
    try {
      await query('LOCK TABLE chat_log, chat_events IN ACCESS EXCLUSIVE MODE')
      const moved = await query(
        `INSERT INTO chat_room_logs (room, epoch, last_id)
         SELECT $1, epoch, GREATEST(last_id, (SELECT coalesce(max(id), 0) FROM chat_events)) FROM chat_log
         ON CONFLICT (room) DO NOTHING`,
        [LOBBY],
      )
      // A lobby that has a log already was moved before: the old tables are not read again.
      if (moved.rowCount === 1) {
        await query('INSERT INTO chat_room_events (room, id, at, json) SELECT $1, id, at, json FROM chat_events', [LOBBY])
        await query('DROP TABLE chat_events, chat_log')
      }
      await query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {})
      throw error
    }
  }

  /** The lobby's log (made in open): the store's own append, after, before, lastId and prune are its. */
  private lobby: PostgresLog | undefined
  /** Logs asked for by this process (their epochs never change). */
  private readonly loaded = new Map<string, Promise<PostgresLog>>()

  get epoch(): string {
    return this.lobby?.epoch ?? ''
  }

  protected get lobbyLog(): PostgresLog {
    if (!this.lobby) throw new Error('PostgresStore: open() first')
    return this.lobby
  }

  log(room: string): Promise<RoomLog> {
    let log = this.loaded.get(room)
    if (!log) {
      log = this.load(room)
      this.loaded.set(room, log)
      // Asked again after a failure, it is tried again.
      log.catch(() => this.loaded.delete(room))
    }
    return log
  }

  /**
   * A room's log, made with a fresh epoch if it has none. Two processes asking at once agree:
   * the second insert waits for the first's commit and does nothing, then both read the row.
   */
  private async load(room: string): Promise<PostgresLog> {
    if (this.hung) throw new DeadlineError('PostgreSQL', this.timeoutMs)
    await this.pool.query('INSERT INTO chat_room_logs (room, epoch, last_id) VALUES ($1, $2, 0) ON CONFLICT (room) DO NOTHING', [room, newEpoch()])
    const { rows } = await this.pool.query<{ epoch: string }>('SELECT epoch FROM chat_room_logs WHERE room = $1', [room])
    return new PostgresLog(room, rows[0]!.epoch, this.pool, this.commit)
  }

  async logs(): Promise<string[]> {
    const { rows } = await this.pool.query<{ room: string }>('SELECT room FROM chat_room_logs ORDER BY room')
    return rows.map((row) => row.room)
  }

  /**
   * Every room's append. The whole transaction has one deadline: past it the connection is
   * destroyed, so the database rolls the transaction back (unless its COMMIT was already on the
   * way, when the event stands and is delivered by the catch-up: refused, yet in the log, never lost).
   */
  private readonly commit = async (room: string, drafts: readonly EventDraft[]): Promise<StoredEvent[]> => {
    if (this.hung) throw new DeadlineError('PostgreSQL', this.timeoutMs)
    if (this.noPrimary) throw new NoPrimaryError()
    let client: pg.PoolClient | undefined
    let late = false
    try {
      return await deadline(this.transaction(room, drafts, (c) => (client = c), () => late), this.timeoutMs, 'PostgreSQL', () => {
        late = true
        ;(client as (pg.PoolClient & { connection?: { stream?: { destroy(): void } } }) | undefined)?.connection?.stream?.destroy()
      })
    } catch (error) {
      if (late || /timeout/i.test((error as Error).message)) this.markHung()
      // (The client's own errors reach lost() as it is released; a deadline here has no client to say it.)
      if (late) this.lost(error)
      throw error
    }
  }

  private async transaction(
    room: string,
    drafts: readonly EventDraft[],
    checkedOut: (client: pg.PoolClient) => void,
    late: () => boolean,
  ): Promise<StoredEvent[]> {
    const client = await this.pool.connect()
    checkedOut(client)
    // A connection that breaks while checked out reports here; the query's rejection says the rest.
    const ignore = () => {}
    client.on('error', ignore)
    let broken: Error | undefined
    try {
      if (late()) throw new DeadlineError('PostgreSQL', this.timeoutMs)
      await client.query('BEGIN')
      // The room's row lock orders its commits; another room's row is another lock.
      const { rows } = await client.query<{ last_id: string }>('UPDATE chat_room_logs SET last_id = last_id + $1 WHERE room = $2 RETURNING last_id', [
        drafts.length,
        room,
      ])
      if (!rows[0]) throw new Error(`PostgreSQL: room ${JSON.stringify(room)} has no log`)
      const from = Number(rows[0].last_id) - drafts.length + 1
      // Under the row lock, what earlier commits (on any process) sent with these client ids, and the messages edited or deleted.
      const sent = new Map<string, StoredEvent>()
      const targets = new Map<number, SentMessage>()
      const clients = drafts.filter((d) => d.clientId !== undefined && d.sender !== undefined)
      if (clients.length > 0) {
        const found = await client.query<{ sender: string; client_id: string; json: string }>(
          `SELECT sender, client_id, json FROM chat_room_events WHERE room = $1 AND client_id IS NOT NULL
           AND (sender, client_id) IN (SELECT * FROM unnest($2::text[], $3::text[]))`,
          [room, clients.map((d) => d.sender), clients.map((d) => d.clientId)],
        )
        for (const row of found.rows) sent.set(`${row.sender}\n${row.client_id}`, fromJson(row.json))
      }
      // The messages edited, deleted, reacted to or replied to in their thread; then the threads of replies deleted (one fewer each).
      const load = async (ids: number[]) => {
        const wanted = [...new Set(ids)].filter((id) => id < from && !targets.has(id))
        if (wanted.length === 0) return
        const found = await client.query<{ id: string; json: string; sender: string | null }>(
          'SELECT id, json, sender FROM chat_room_events WHERE room = $1 AND id = ANY($2::bigint[])',
          [room, wanted],
        )
        for (const row of found.rows) targets.set(Number(row.id), { stored: fromJson(row.json), sender: row.sender ?? undefined })
      }
      await load(drafts.flatMap((d) => [d.ref, d.thread].filter((id): id is number => id !== undefined)))
      await load(drafts.flatMap((d) => (d.type === 'delete' && d.ref !== undefined ? [targets.get(d.ref)?.stored.event.thread] : []).filter((id): id is number => id !== undefined)))
      const plan = planAppend(drafts, from, Date.now(), {
        sent: (sender, clientId) => sent.get(`${sender}\n${clientId}`),
        message: (id) => targets.get(id),
      })
      // Resends took no id: the counter goes back to the last one given out (the lock is still ours).
      if (plan.last !== from + drafts.length - 1) await client.query('UPDATE chat_room_logs SET last_id = $1 WHERE room = $2', [plan.last, room])
      if (plan.rows.length > 0) {
        const r = plan.rows
        await client.query(
          `INSERT INTO chat_room_events (room, id, at, json, sender, client_id, ref)
           SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bigint[])`,
          [
            room,
            r.map((x) => x.stored.event.id),
            r.map((x) => x.stored.event.timestamp),
            r.map((x) => x.stored.json),
            r.map((x) => x.sender ?? null),
            r.map((x) => x.clientId ?? null),
            r.map((x) => x.ref ?? null),
          ],
        )
      }
      if (plan.changed.size > 0) {
        await client.query('UPDATE chat_room_events e SET json = c.json FROM unnest($2::bigint[], $3::text[]) AS c (id, json) WHERE e.room = $1 AND e.id = c.id', [
          room,
          [...plan.changed.keys()],
          [...plan.changed.values()].map((x) => x.json),
        ])
      }
      if (plan.deleted.length > 0 || plan.edited.size > 0) {
        const edits = await client.query<{ id: string; json: string }>(
          "SELECT id, json FROM chat_room_events WHERE room = $1 AND ref = ANY($2::bigint[]) AND json::jsonb->>'type' = 'edit'",
          [room, [...plan.deleted, ...plan.edited.keys()]],
        )
        // A deleted message's edits keep no text; an edited one's carry its newest.
        const bare = edits.rows.map((row) => {
          const stored = fromJson(row.json)
          const text = plan.edited.get(stored.event.ref!)
          return text === undefined ? withoutText(stored) : withText(stored, text)
        })
        if (bare.length > 0) {
          await client.query('UPDATE chat_room_events e SET json = c.json FROM unnest($2::bigint[], $3::text[]) AS c (id, json) WHERE e.room = $1 AND e.id = c.id', [
            room,
            bare.map((x) => x.event.id),
            bare.map((x) => x.json),
          ])
        }
      }
      const stored = plan.results
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

  /** One read for many rooms (their counter rows by primary key), in slices that keep a statement small. */
  async lastIds(rooms: readonly string[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>(rooms.map((room) => [room, 0]))
    for (let at = 0; at < rooms.length; at += LAST_IDS_SLICE) {
      const { rows } = await this.pool.query<{ room: string; last_id: string }>('SELECT room, last_id FROM chat_room_logs WHERE room = ANY($1::text[])', [
        rooms.slice(at, at + LAST_IDS_SLICE),
      ])
      for (const row of rows) ids.set(row.room, Number(row.last_id))
    }
    return ids
  }

  /** Messages in the rooms given, by words (the last a prefix), newest first: the GIN index on their words. */
  async search(query: SearchQuery): Promise<SearchHit[]> {
    const terms = searchTerms(query.words)
    if (terms.length === 0 || query.rooms.length === 0) return []
    // Terms are letters, digits and _ only: quoted, nothing typed is tsquery syntax.
    const match = terms.map((t, i) => `'${t}'${i === terms.length - 1 ? ':*' : ''}`).join(' & ')
    const where = ["words @@ to_tsquery('simple', $1)", 'room = ANY($2::text[])']
    const values: unknown[] = [match, query.rooms]
    if (query.user !== undefined) values.push(query.user), where.push(`lower(json::jsonb->>'user') = lower($${values.length})`)
    if (query.before !== undefined) values.push(query.before), where.push(`at < $${values.length}`)
    if (query.after !== undefined) values.push(query.after), where.push(`at > $${values.length}`)
    values.push(query.limit)
    const { rows } = await this.pool.query<{ room: string; json: string }>(
      `SELECT room, json FROM chat_room_events WHERE ${where.join(' AND ')} ORDER BY at DESC, id DESC LIMIT $${values.length}`,
      values,
    )
    return rows.map((row) => ({ room: row.room, stored: fromJson(row.json) }))
  }

  /** Within a second, whatever the database does. */
  async ready(): Promise<boolean> {
    if (this.hung || this.noPrimary) return false
    return deadline(this.probe(), Math.min(this.timeoutMs, 900), 'PostgreSQL').catch(() => false)
  }

  async close(): Promise<void> {
    this.closing = true
    // end() waits for every connection to be given back; one stuck on a stopped database is not waited for.
    await deadline(this.pool.end(), this.timeoutMs, 'PostgreSQL').catch(() => {})
  }
}
