import { randomBytes } from 'node:crypto'
import { createEvent, type Event, type EventDraft, type StoredEvent } from '../event.js'

/**
 * The room's log: the one place ids come from. An event is acknowledged only after the
 * transaction that gave it its id has committed. Each log has an epoch, made when the log is
 * created: a cursor is (epoch, id), and a cursor from another epoch means another log.
 */
export interface Store {
  /** Creates the log if needed (and its epoch), and reads where it stands. */
  open(): Promise<void>
  /** The log's epoch (after open). */
  readonly epoch: string
  /**
   * Appends the drafts in order in one transaction, giving each the next consecutive id and a
   * timestamp; resolves once committed (the caller batches: one transaction per tick).
   */
  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]>
  /** Events with id > after, oldest first, at most `limit`. */
  after(after: number, limit: number): Promise<StoredEvent[]>
  /** The `limit` newest events with id < before, oldest first. */
  before(before: number, limit: number): Promise<StoredEvent[]>
  /** The newest id given out (0 for a new log). */
  lastId(): Promise<number>
  /** Deletes events beyond the newest `maxEvents` or older than `maxAgeMs` (0: no bound); how many went. */
  prune(maxEvents: number, maxAgeMs: number): Promise<number>
  /** Whether the log can take events now (for /readyz). */
  ready(): Promise<boolean>
  close(): Promise<void>

  /** Server-side sessions (the cookie holds only the id; the store keeps a hash of it). */
  sessions: SessionStore
}

export interface SessionRecord {
  /** The signed-in user, as JSON. */
  user: string
  createdAt: number
  seenAt: number
  /** The address it was signed in from: one address holds a bounded number of sessions. */
  address: string
}

export interface SessionStore {
  create(hash: string, record: SessionRecord): Promise<void>
  read(hash: string): Promise<SessionRecord | undefined>
  /** Marks the session used now (for idle expiry). */
  touch(hash: string, seenAt: number): Promise<void>
  /** Deletes it at once (sign-out). */
  delete(hash: string): Promise<void>
  /** Deletes sessions idle since before `idleBefore` or made before `createdBefore`. */
  prune(idleBefore: number, createdBefore: number): Promise<number>
  /**
   * Deletes the least recently used sessions of `address` beyond `keep`, never `current` (the
   * one just made); returns their hashes, to be signed out everywhere.
   */
  trim(address: string, keep: number, current: string): Promise<string[]>
  /** How many sessions are kept. */
  count(): Promise<number>
}

/** A new log's epoch: random, short, URL-safe. */
export function newEpoch(): string {
  return randomBytes(9).toString('base64url')
}

/** An event read back from the log (its JSON was made by createEvent and is trusted). */
export function fromJson(json: string): StoredEvent {
  return { event: JSON.parse(json) as Event, json }
}

/** The events for drafts given ids from `firstId`, all stamped `timestamp`. */
export function numbered(drafts: readonly EventDraft[], firstId: number, timestamp: number): StoredEvent[] {
  return drafts.map((draft, i) => createEvent(firstId + i, timestamp, draft))
}
