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
  /** Registered names: accounts, their passkeys and their OAuth links. */
  accounts: AccountStore
}

/** A registered name. The chatroom never reads these: a person reaches it as an id and a name. */
export interface AccountRecord {
  /** Random (base64url): the person's id everywhere (presence, limits, name claims, sessions). */
  id: string
  name: string
  /** The name's look-alike skeleton (identity.ts): unique among accounts. */
  skeleton: string
  /** An argon2id PHC string; null for an account that signs in by passkey or OAuth only. */
  passwordHash: string | null
  /** MD5 of the trimmed, lower-cased email (Gravatar's key), when one was given. */
  emailHash?: string | undefined
  createdAt: number
}

/** A WebAuthn credential of an account. */
export interface PasskeyRecord {
  /** The credential id, base64url: unique. */
  id: string
  accountId: string
  /** The COSE public key, base64url. */
  publicKey: string
  /** The authenticator's signature counter (0 when it keeps none). */
  counter: number
  /** How the browser may reach the authenticator (usb, internal, hybrid, ...). */
  transports: string[]
  createdAt: number
  lastUsedAt: number | null
}

export interface AccountStore {
  /** Creates the account; false (and nothing written) when one with the same skeleton exists. */
  create(record: AccountRecord): Promise<boolean>
  byId(id: string): Promise<AccountRecord | undefined>
  bySkeleton(skeleton: string): Promise<AccountRecord | undefined>
  setPassword(id: string, passwordHash: string): Promise<void>
  /** Adds a passkey; false when a passkey with that credential id exists already. */
  addPasskey(passkey: PasskeyRecord): Promise<boolean>
  passkey(id: string): Promise<PasskeyRecord | undefined>
  /** The account's passkeys, oldest first. */
  passkeys(accountId: string): Promise<PasskeyRecord[]>
  /** After a sign-in with it: the new counter and when. */
  usePasskey(id: string, counter: number, at: number): Promise<void>
  /** Removes one of the account's passkeys; false when it has no such passkey. */
  removePasskey(accountId: string, id: string): Promise<boolean>
  /** Links a provider's user to an account; false when that provider user is linked already (to any account). */
  link(provider: string, providerUserId: string, accountId: string): Promise<boolean>
  /** The account a provider's user is linked to. */
  linked(provider: string, providerUserId: string): Promise<string | undefined>
}

export interface SessionRecord {
  /** The signed-in user, as JSON. */
  user: string
  createdAt: number
  seenAt: number
  /** The address it was signed in from: one address holds a bounded number of sessions. */
  address: string
  /** The account signed in ('' for a guest): its owner lists and ends its sessions. */
  account: string
  /** The browser's User-Agent at sign-in (cut to 256 characters), to tell devices apart in the list. */
  userAgent: string
}

/** A session as its owner sees it listed. */
export interface ListedSession extends SessionRecord {
  hash: string
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
  /** The account's sessions, most recently used first. */
  list(account: string): Promise<ListedSession[]>
  /** Deletes every session of the account except `except`; returns their hashes, to be signed out everywhere. */
  endAccount(account: string, except?: string): Promise<string[]>
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
