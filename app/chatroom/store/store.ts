import { randomBytes } from 'node:crypto'
import { applyChange, createEvent, restored, withoutText, withReaction, withReply, withText, type Event, type EventDraft, type StoredEvent } from '../event.js'

/**
 * The logs (one per room: the one place ids come from), and what else the chat keeps. An event
 * is acknowledged only after the transaction that gave it its id has committed. Each log has
 * an epoch, made when the log is created: a cursor is (epoch, id), and a cursor from another
 * epoch means another log. The store's own log methods are the lobby's (see RoomLog).
 */
export interface Store extends Omit<RoomLog, 'room'> {
  /** Creates the tables if needed (moving an older single log into the lobby), and reads where the lobby stands. */
  open(): Promise<void>
  /** Whether the log can take events now (for /readyz). */
  ready(): Promise<boolean>
  close(): Promise<void>

  /** Server-side sessions (the cookie holds only the id; the store keeps a hash of it). */
  sessions: SessionStore
  /** Registered names: accounts, their passkeys and their OAuth links. */
  accounts: AccountStore
  /**
   * One room's log, made (with an epoch of its own) the first time it is asked for. The
   * store's own append/after/before/lastId/prune/epoch are the lobby's: `log(LOBBY)` is that
   * same log. Commits to different rooms never wait for each other's ids.
   */
  log(room: string): Promise<RoomLog>
  /** The rooms that have a log (for background pruning). */
  logs(): Promise<string[]>
  /**
   * Where each of these rooms' logs stands (its last id; 0 for a room with no log yet), in one
   * read where the store can: the catch-up of every room a process holds, every second.
   */
  lastIds(rooms: readonly string[]): Promise<Map<string, number>>
  /** What the rooms are: names, titles, who may read them, members, read markers. */
  rooms: RoomStore
  /** Messages with the words, newest first, in the given rooms only. */
  search(query: SearchQuery): Promise<SearchHit[]>
  /** Files and images sent in messages: every process reads the same bytes. */
  files: FileStore
}

/** A file kept for a message of a room (its bytes apart). */
export interface FileRecord {
  room: string
  /** Random, unguessable, unique in the store. */
  id: string
  /** Who sent it (their person id): the quota counts it against them. */
  owner: string
  name: string
  size: number
  /** The type its bytes were sniffed as. */
  type: string
  width?: number | undefined
  height?: number | undefined
  at: number
  /** The message it was sent in, once committed (none yet: a send still under way, or one that never committed). */
  message?: number | undefined
}

/**
 * The bytes of files sent in messages, and an image's thumbnail. A file is put before its message
 * is committed and attached to it after; one never attached (the send failed, the process died
 * between) goes with prune. Deleting the message deletes its file.
 */
export interface FileStore {
  put(record: FileRecord, bytes: Buffer, thumbnail?: Buffer): Promise<void>
  attach(room: string, id: string, message: number): Promise<void>
  get(room: string, id: string): Promise<FileRecord | undefined>
  bytes(room: string, id: string, which: 'file' | 'thumbnail'): Promise<Buffer | undefined>
  /** Deletes the file and its thumbnail; false when there was none. */
  remove(room: string, id: string): Promise<boolean>
  /** Bytes the person stored since then (ms since the epoch): the upload quota. */
  usedSince(owner: string, since: number): Promise<number>
  /** Deletes the files of a room's messages up to `through` (pruned from the log), and files never attached that were put before `staleBefore`; how many went. */
  prune(room: string, through: number, staleBefore: number): Promise<number>
}

/** The words search finds a message by: its text, and its file's name. */
export function searchableText(event: Event): string | undefined {
  if (event.type !== 'message' || event.deleted) return undefined
  const words = [event.text, event.file?.name].filter((w) => w !== undefined && w !== '')
  return words.length > 0 ? words.join('\n') : undefined
}

/**
 * What every store shares: its own log methods are its lobby's log's (each store says how it
 * holds the lobby), so the one room's callers and the per-room ones meet in the same log.
 */
export abstract class LobbyMethods {
  protected abstract get lobbyLog(): RoomLog

  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    return this.lobbyLog.append(drafts)
  }

  after(after: number, limit: number): Promise<StoredEvent[]> {
    return this.lobbyLog.after(after, limit)
  }

  before(before: number, limit: number): Promise<StoredEvent[]> {
    return this.lobbyLog.before(before, limit)
  }

  lastId(): Promise<number> {
    return this.lobbyLog.lastId()
  }

  prune(maxEvents: number, maxAgeMs: number): Promise<number> {
    return this.lobbyLog.prune(maxEvents, maxAgeMs)
  }

  message(id: number): Promise<SentMessage | undefined> {
    return this.lobbyLog.message(id)
  }

  thread(root: number, after: number, limit: number): Promise<StoredEvent[]> {
    return this.lobbyLog.thread(root, after, limit)
  }
}

/** The default room: the Revel sample's one room, and every `/…/room…` route's. */
export const LOBBY = 'lobby'

/** One room's log: ids consecutive from 1 within the room, an epoch of its own. */
export interface RoomLog {
  readonly room: string
  /** The log's epoch (made with the log). */
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
  /** The message `id` as it stands (edited or deleted) and whose it is; undefined when there is none (or it was pruned). */
  message(id: number): Promise<SentMessage | undefined>
  /** The replies in the thread of message `root` (deleted ones too, as they stand) with id > after, oldest first, at most `limit`. */
  thread(root: number, after: number, limit: number): Promise<StoredEvent[]>
}

/** A message and its sender's id (never shown: only the sender edits or deletes it). */
export interface SentMessage {
  stored: StoredEvent
  sender: string | undefined
}

/** What `search` looks for: words (all of them, the last one as a prefix), in some rooms. */
export interface SearchQuery {
  /** The rooms to look in: those the person can read (never more). */
  rooms: readonly string[]
  words: string
  /** Only this person's messages (their name, case folded). */
  user?: string | undefined
  /** Only messages sent before / after these times (ms since the epoch). */
  before?: number | undefined
  after?: number | undefined
  limit: number
}

export interface SearchHit {
  room: string
  stored: StoredEvent
}

/** The words of a search (letters, digits and _; at most 16): each store quotes them its own way, the last one a prefix. */
export function searchTerms(words: string): string[] {
  return words
    .split(/[^\p{L}\p{N}_]+/u)
    .filter((w) => w.length > 0)
    .slice(0, 16)
}

/** Whether a message's text has every term (the last one as a prefix): the memory store's search, and the others' rule. */
export function textMatches(text: string, terms: readonly string[]): boolean {
  const words = text.toLocaleLowerCase().split(/[^\p{L}\p{N}_]+/u)
  return terms.every((term, i) => {
    const t = term.toLocaleLowerCase()
    return words.some((w) => (i === terms.length - 1 ? w.startsWith(t) : w === t))
  })
}

/** What a store looks up before numbering a batch (see planAppend). */
export interface Known {
  /** The event a sender's clientId was first sent as, as it stands now. */
  sent(sender: string, clientId: string): StoredEvent | undefined
  /** A message of the room (for an edit or a deletion). */
  message(id: number): SentMessage | undefined
}

/** A new row of a log. */
export interface Row {
  stored: StoredEvent
  sender: string | undefined
  clientId: string | undefined
  ref: number | undefined
}

/** How a batch of drafts goes into a log (the same rules for every store). */
export interface AppendPlan {
  /** Per draft, in order: the new event, or for a resend the event first sent (marked duplicate). */
  results: StoredEvent[]
  /** The new events, in id order (their json final: an edit in the same batch is applied). */
  rows: Row[]
  /** Messages from before this batch that it edits or deletes: their new json. */
  changed: Map<number, StoredEvent>
  /** Messages this batch deletes: the text of the edits that refer to them goes too. */
  deleted: number[]
  /** Messages this batch edits, with their newest text: the edits before it carry that text instead of theirs (none edited away stays). */
  edited: Map<number, string>
  /** The newest id given out (firstId - 1 when every draft was a resend). */
  last: number
}

/**
 * The one rule for a batch, whatever the store: a draft whose (sender, clientId) was sent
 * before, or earlier in the batch, takes no id and answers the first event; an edit or a
 * deletion of the sender's own message rewrites it (a deleted message keeps no text, nor do its
 * edits; an edited one's earlier edits carry its newest text). The store has already checked the rest (the room: that the message is theirs).
 */
export function planAppend(drafts: readonly EventDraft[], firstId: number, at: number, known: Known): AppendPlan {
  const results: StoredEvent[] = []
  const rows: Row[] = []
  const changed = new Map<number, StoredEvent>()
  const deleted: number[] = []
  const edited = new Map<number, string>()
  const sentNow = new Map<string, Row>()
  const byId = new Map<number, Row>()
  let id = firstId
  for (const draft of drafts) {
    const key = draft.clientId !== undefined && draft.sender !== undefined ? `${draft.sender}\n${draft.clientId}` : undefined
    if (key !== undefined) {
      const first = sentNow.get(key)?.stored ?? known.sent(draft.sender!, draft.clientId!)
      if (first) {
        results.push({ event: first.event, json: first.json, duplicate: true })
        continue
      }
    }
    /** Message `ref` as it stands in this batch so far (a row of it, an earlier change, or the store's). */
    const current = (ref: number): { stored: StoredEvent; sender: string | undefined } | undefined => {
      const inBatch = byId.get(ref)
      if (inBatch) return inBatch
      const earlier = changed.get(ref)
      return earlier ? { stored: earlier, sender: known.message(ref)?.sender } : known.message(ref)
    }
    const update = (ref: number, after: StoredEvent) => {
      const inBatch = byId.get(ref)
      if (inBatch) inBatch.stored = after
      else changed.set(ref, after)
    }
    let stored = createEvent(id++, at, draft)
    if (draft.type === 'reaction' && draft.ref !== undefined) {
      // A reaction that changes nothing (added twice, or taken back when there was none) takes no id.
      const target = current(draft.ref)
      const after = target && target.stored.event.type === 'message' && !target.stored.event.deleted ? withReaction(target.stored.event, stored.event) : undefined
      if (after === undefined) {
        id--
        results.push({ event: stored.event, json: stored.json, duplicate: true })
        continue
      }
      update(draft.ref, after)
    }
    if (draft.type === 'message' && draft.thread !== undefined) {
      const root = current(draft.thread)
      if (root && root.stored.event.type === 'message') {
        const after = withReply(root.stored.event, stored.event, 1)
        update(draft.thread, after)
        stored = restored({ ...stored.event, threadReplies: after.event.replies ?? 1 })
      }
    }
    if ((draft.type === 'edit' || draft.type === 'delete') && draft.ref !== undefined) {
      const ref = draft.ref
      const inBatch = byId.get(ref)
      const target = current(ref)
      if (target && target.stored.event.type === 'message' && target.sender === draft.sender) {
        const wasStanding = !target.stored.event.deleted
        const after = applyChange(target.stored.event, stored.event)
        update(ref, after)
        if (after.event.deleted) {
          deleted.push(ref)
          edited.delete(ref)
          stored = withoutText(stored)
          for (const row of rows) if (row.ref === ref && row.stored.event.type === 'edit') row.stored = withoutText(row.stored)
          // A reply deleted is one fewer in its thread: its deletion says the thread and its count now.
          const rootId = after.event.thread
          const root = rootId === undefined || !wasStanding ? undefined : current(rootId)
          if (root && root.stored.event.type === 'message') {
            const rootAfter = withReply(root.stored.event, after.event, -1)
            update(rootId!, rootAfter)
            stored = restored({ ...stored.event, thread: rootId, threadReplies: rootAfter.event.replies ?? 0 })
          }
        } else if (after.event.text !== undefined) {
          const text = after.event.text
          if (!inBatch) edited.set(ref, text)
          for (const row of rows) if (row.ref === ref && row.stored.event.type === 'edit') row.stored = withText(row.stored, text)
        }
      }
    }
    // A reply's row refers to its thread's first message (the store finds a thread by it).
    const row: Row = { stored, sender: draft.sender, clientId: draft.clientId, ref: draft.ref ?? draft.thread }
    rows.push(row)
    byId.set(stored.event.id, row)
    if (key !== undefined) sentNow.set(key, row)
    results.push(stored)
  }
  // What a later edit in the batch rewrote is what the reader gets.
  for (let i = 0; i < results.length; i++) {
    const r = results[i]!
    if (!r.duplicate) results[i] = byId.get(r.event.id)!.stored
  }
  return { results, rows, changed, deleted, edited, last: id - 1 }
}

export type RoomVisibility = 'public' | 'private' | 'direct'
export type RoomRole = 'owner' | 'moderator' | 'member'

/** Someone's report of a message to the room's moderators, and once handled, by whom and how. */
export interface Report {
  /** The message's id. */
  ref: number
  /** Who reported it (their person key: an account's id or a guest's), by their name then. */
  reporter: string
  name: string
  reason: string
  at: number
  handledBy?: string | undefined
  outcome?: string | undefined
}

/** A person barred from a room (ban) or from writing in it (mute), until a time or for good; by whom and why. */
export interface Restriction {
  /** Who: an account's id, or a guest's session-bound id (a new guest name in the same session is still them). */
  person: string
  /** Their name when it was decided (to list it). */
  name: string
  kind: 'ban' | 'mute'
  /** Milliseconds since the epoch; undefined: for good. */
  until: number | undefined
  /** Who decided it (their name), and why ('' when not said). */
  by: string
  reason: string
  at: number
}

export interface RoomRecord {
  /** As typed at creation (lower-case letters, digits, - and _): the room's address. */
  name: string
  /** The name's look-alike skeleton: unique among rooms. */
  skeleton: string
  title: string
  topic: string
  visibility: RoomVisibility
  /** The person (id) who made it ('' for the lobby). */
  createdBy: string
  createdAt: number
  /** Slow mode: one message per this many seconds per person (moderators excepted); absent: off. */
  slow?: number | undefined
  /** Closed to new members (nobody joins; moderators may still invite). */
  closed?: true | undefined
}

/** What moderators set for a whole room (see RoomRecord). */
export interface RoomRules {
  slow: number
  closed: boolean
}

/** A member as a room lists them. */
export interface RoomMember {
  person: string
  name: string
  role: RoomRole
}

export interface RoomStore {
  /** Creates the room; false (nothing written) when one with the same skeleton exists. */
  create(room: RoomRecord): Promise<boolean>
  get(name: string): Promise<RoomRecord | undefined>
  /** Sets the room's title and topic; false when there is no such room. */
  describe(name: string, title: string, topic: string): Promise<boolean>
  /** Sets the room's slow mode and whether it is closed to new members; false when there is no such room. */
  setRules(name: string, rules: RoomRules): Promise<boolean>
  bySkeleton(skeleton: string): Promise<RoomRecord | undefined>
  /** Public rooms, and the private and direct rooms the person is a member of, by name. */
  visibleTo(person: string): Promise<RoomRecord[]>
  /** How many rooms the person created, and how many there are in all (for the limits). */
  counts(person: string): Promise<{ created: number; total: number }>
  /** Adds (or keeps) a member with a role, and the name they go by (to list them); false when they were a member already. */
  addMember(room: string, person: string, role: RoomRole, name?: string): Promise<boolean>
  /** Removes a member; false when they were not one. */
  removeMember(room: string, person: string): Promise<boolean>
  role(room: string, person: string): Promise<RoomRole | undefined>
  /** Changes a member's role; false when they are not a member. */
  setRole(room: string, person: string, role: RoomRole): Promise<boolean>
  /** Records a ban or a mute of a person in a room, replacing theirs of the same kind. */
  restrict(room: string, restriction: Restriction): Promise<void>
  /** Lifts a person's ban or mute in a room; false when there was none. */
  lift(room: string, person: string, kind: Restriction['kind']): Promise<boolean>
  /** A room's bans and mutes still in force at `now`, oldest first. */
  restrictions(room: string, now: number): Promise<Restriction[]>
  /** The rooms this person is banned from at `now` (by their key), by name. */
  barred(person: string, now: number): Promise<string[]>
  /** Records a person's report of message `ref`; false (nothing written) when they reported it already and it is still open. */
  report(room: string, report: Report): Promise<boolean>
  /** A room's open reports, oldest first, at most `limit`. */
  reports(room: string, limit: number): Promise<Report[]>
  /** Marks the open reports of message `ref` handled (by whom, how); returns them, so their reporters can be told. */
  handleReports(room: string, ref: number, by: string, outcome: string, at: number): Promise<Report[]>
  /** The members' ids, oldest membership first. */
  members(room: string): Promise<string[]>
  /** The first `limit` members, oldest membership first, with the name each joined under ('' when not recorded). */
  named(room: string, limit: number): Promise<RoomMember[]>
  /** The rooms the person is a member of (of any kind), by name. */
  memberOf(person: string): Promise<string[]>
  /** The last event id the person has read in the room (0 when none). */
  readMarker(room: string, person: string): Promise<number>
  /** Moves the person's read marker forward (never back). */
  markRead(room: string, person: string, id: number): Promise<void>
  /** The direct room of two people (ids in any order), if they have one. */
  direct(a: string, b: string): Promise<RoomRecord | undefined>
  /** Records a new direct room for the two people (created with create() first); false when they have one. */
  setDirect(a: string, b: string, room: string): Promise<boolean>
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

/** The record with these rules (an absent field is the default: off, open). */
export function withRules(room: RoomRecord, rules: RoomRules): RoomRecord {
  if (rules.slow > 0) room.slow = rules.slow
  else delete room.slow
  if (rules.closed) room.closed = true
  else delete room.closed
  return room
}
