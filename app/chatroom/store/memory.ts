import { withoutText, withText, type EventDraft, type StoredEvent } from '../event.js'
import {
  planAppend,
  searchableText,
  searchTerms,
  type FileRecord,
  type FileStore,
  textMatches,
  type SearchHit,
  type SearchQuery,
  type SentMessage,
  LOBBY,
  LobbyMethods,
  newEpoch,
  type AccountRecord,
  type AccountStore,
  type ListedSession,
  type PasskeyRecord,
  type RoomLog,
  type RoomRecord,
  type RoomMember,
  type RoomRole,
  type RoomStore,
  type Restriction,
  type SessionRecord,
  type SessionStore,
  type Store,
  type Report,
  type RoomRules,
  withRules,
} from './store.js'

/** Sessions in a Map (STORE=memory). */
export class MemorySessions implements SessionStore {
  private readonly map = new Map<string, SessionRecord>()
  /** Each address's sessions, so a sign-in's trim looks at that address only. */
  private readonly byAddress = new Map<string, Set<string>>()
  async create(hash: string, record: SessionRecord): Promise<void> {
    this.map.set(hash, { ...record })
    const mine = this.byAddress.get(record.address) ?? new Set()
    this.byAddress.set(record.address, mine.add(hash))
  }
  async read(hash: string): Promise<SessionRecord | undefined> {
    const record = this.map.get(hash)
    return record && { ...record }
  }
  async touch(hash: string, seenAt: number): Promise<void> {
    const record = this.map.get(hash)
    if (record) record.seenAt = seenAt
  }
  async delete(hash: string): Promise<void> {
    this.remove(hash)
  }
  async prune(idleBefore: number, createdBefore: number): Promise<number> {
    let n = 0
    for (const [hash, r] of this.map) if (r.seenAt < idleBefore || r.createdAt < createdBefore) n += Number(this.remove(hash))
    return n
  }
  async trim(address: string, keep: number, current: string): Promise<string[]> {
    const others = [...(this.byAddress.get(address) ?? [])].filter((hash) => hash !== current)
    if (others.length < keep) return []
    const newestFirst = others.sort((a, b) => this.map.get(b)!.seenAt - this.map.get(a)!.seenAt)
    const ended = newestFirst.slice(Math.max(0, keep - 1))
    for (const hash of ended) this.remove(hash)
    return ended
  }
  async count(): Promise<number> {
    return this.map.size
  }
  async list(account: string): Promise<ListedSession[]> {
    const mine: ListedSession[] = []
    for (const [hash, record] of this.map) if (account && record.account === account) mine.push({ ...record, hash })
    return mine.sort((a, b) => b.seenAt - a.seenAt)
  }
  async endAccount(account: string, except?: string): Promise<string[]> {
    const ended: string[] = []
    for (const [hash, record] of this.map) if (account && record.account === account && hash !== except) ended.push(hash)
    for (const hash of ended) this.remove(hash)
    return ended
  }
  private remove(hash: string): boolean {
    const record = this.map.get(hash)
    if (!record) return false
    this.map.delete(hash)
    const mine = this.byAddress.get(record.address)
    mine?.delete(hash)
    if (mine?.size === 0) this.byAddress.delete(record.address)
    return true
  }
}

/** Accounts in Maps (STORE=memory): gone with the process. */
export class MemoryAccounts implements AccountStore {
  private readonly byIds = new Map<string, AccountRecord>()
  private readonly bySkeletons = new Map<string, AccountRecord>()
  private readonly keys = new Map<string, PasskeyRecord>()
  private readonly links = new Map<string, string>()
  async create(record: AccountRecord): Promise<boolean> {
    if (this.bySkeletons.has(record.skeleton) || this.byIds.has(record.id)) return false
    const copy = { ...record }
    this.byIds.set(copy.id, copy)
    this.bySkeletons.set(copy.skeleton, copy)
    return true
  }
  async byId(id: string): Promise<AccountRecord | undefined> {
    const record = this.byIds.get(id)
    return record && { ...record }
  }
  async bySkeleton(skeleton: string): Promise<AccountRecord | undefined> {
    const record = this.bySkeletons.get(skeleton)
    return record && { ...record }
  }
  async setPassword(id: string, passwordHash: string): Promise<void> {
    const record = this.byIds.get(id)
    if (record) record.passwordHash = passwordHash
  }
  async addPasskey(passkey: PasskeyRecord): Promise<boolean> {
    if (this.keys.has(passkey.id)) return false
    this.keys.set(passkey.id, { ...passkey, transports: [...passkey.transports] })
    return true
  }
  async passkey(id: string): Promise<PasskeyRecord | undefined> {
    const key = this.keys.get(id)
    return key && { ...key, transports: [...key.transports] }
  }
  async passkeys(accountId: string): Promise<PasskeyRecord[]> {
    return [...this.keys.values()]
      .filter((k) => k.accountId === accountId)
      .sort((a, b) => a.createdAt - b.createdAt)
      .map((k) => ({ ...k, transports: [...k.transports] }))
  }
  async usePasskey(id: string, counter: number, at: number): Promise<void> {
    const key = this.keys.get(id)
    if (key) Object.assign(key, { counter, lastUsedAt: at })
  }
  async removePasskey(accountId: string, id: string): Promise<boolean> {
    if (this.keys.get(id)?.accountId !== accountId) return false
    return this.keys.delete(id)
  }
  async link(provider: string, providerUserId: string, accountId: string): Promise<boolean> {
    const key = JSON.stringify([provider, providerUserId])
    if (this.links.has(key)) return false
    this.links.set(key, accountId)
    return true
  }
  async linked(provider: string, providerUserId: string): Promise<string | undefined> {
    return this.links.get(JSON.stringify([provider, providerUserId]))
  }
}

/** Rooms, members and read markers in Maps (STORE=memory). */
export class MemoryRooms implements RoomStore {
  private readonly byName = new Map<string, RoomRecord>()
  private readonly bySkeletons = new Map<string, RoomRecord>()
  /** room -> person -> role, in the order they joined. */
  private readonly memberships = new Map<string, Map<string, RoomRole>>()
  /** Each member's name as they joined ("room\nperson"). */
  private readonly memberNames = new Map<string, string>()
  /** Per room, by kind and person: their ban or mute. */
  private readonly restricted = new Map<string, Map<string, Restriction>>()
  private readonly reported = new Map<string, Report[]>()
  private readonly markers = new Map<string, number>()
  private readonly directs = new Map<string, string>()
  async create(room: RoomRecord): Promise<boolean> {
    if (this.byName.has(room.name) || this.bySkeletons.has(room.skeleton)) return false
    const copy = { ...room }
    this.byName.set(copy.name, copy)
    this.bySkeletons.set(copy.skeleton, copy)
    return true
  }
  async get(name: string): Promise<RoomRecord | undefined> {
    const room = this.byName.get(name)
    return room && { ...room }
  }
  async describe(name: string, title: string, topic: string): Promise<boolean> {
    const room = this.byName.get(name)
    if (!room) return false
    room.title = title
    room.topic = topic
    return true
  }
  async setRules(name: string, rules: RoomRules): Promise<boolean> {
    const room = this.byName.get(name)
    if (!room) return false
    withRules(room, rules)
    return true
  }
  async bySkeleton(skeleton: string): Promise<RoomRecord | undefined> {
    const room = this.bySkeletons.get(skeleton)
    return room && { ...room }
  }
  async visibleTo(person: string): Promise<RoomRecord[]> {
    return [...this.byName.values()]
      .filter((r) => r.visibility === 'public' || this.memberships.get(r.name)?.has(person))
      .map((r) => ({ ...r }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }
  async counts(person: string): Promise<{ created: number; total: number }> {
    let created = 0
    for (const r of this.byName.values()) if (r.createdBy === person) created++
    return { created, total: this.byName.size }
  }
  async addMember(room: string, person: string, role: RoomRole, name = ''): Promise<boolean> {
    const members = this.memberships.get(room) ?? new Map<string, RoomRole>()
    this.memberships.set(room, members)
    if (members.has(person)) return false
    members.set(person, role)
    this.memberNames.set(`${room}\n${person}`, name)
    return true
  }
  async removeMember(room: string, person: string): Promise<boolean> {
    this.memberNames.delete(`${room}\n${person}`)
    return this.memberships.get(room)?.delete(person) ?? false
  }
  async named(room: string, limit: number): Promise<RoomMember[]> {
    return [...(this.memberships.get(room) ?? [])].slice(0, limit).map(([person, role]) => ({ person, role, name: this.memberNames.get(`${room}\n${person}`) ?? '' }))
  }
  async role(room: string, person: string): Promise<RoomRole | undefined> {
    return this.memberships.get(room)?.get(person)
  }
  async setRole(room: string, person: string, role: RoomRole): Promise<boolean> {
    const members = this.memberships.get(room)
    if (!members?.has(person)) return false
    members.set(person, role)
    return true
  }
  async restrict(room: string, restriction: Restriction): Promise<void> {
    const of = this.restricted.get(room) ?? new Map<string, Restriction>()
    this.restricted.set(room, of)
    const key = `${restriction.kind}\n${restriction.person}`
    of.delete(key)
    of.set(key, { ...restriction })
  }
  async lift(room: string, person: string, kind: Restriction['kind']): Promise<boolean> {
    return this.restricted.get(room)?.delete(`${kind}\n${person}`) ?? false
  }
  async barred(person: string, now: number): Promise<string[]> {
    const rooms: string[] = []
    for (const [room, of] of this.restricted) {
      const ban = of.get(`ban\n${person}`)
      if (ban && (ban.until === undefined || ban.until > now)) rooms.push(room)
    }
    return rooms.sort()
  }
  async report(room: string, report: Report): Promise<boolean> {
    const of = this.reported.get(room) ?? []
    this.reported.set(room, of)
    if (of.some((r) => r.ref === report.ref && r.reporter === report.reporter && r.handledBy === undefined)) return false
    of.push({ ...report })
    return true
  }
  async reports(room: string, limit: number): Promise<Report[]> {
    return (this.reported.get(room) ?? []).filter((r) => r.handledBy === undefined).slice(0, limit).map((r) => ({ ...r }))
  }
  async handleReports(room: string, ref: number, by: string, outcome: string): Promise<Report[]> {
    const handled: Report[] = []
    for (const r of this.reported.get(room) ?? []) {
      if (r.ref !== ref || r.handledBy !== undefined) continue
      r.handledBy = by
      r.outcome = outcome
      handled.push({ ...r })
    }
    return handled
  }
  async restrictions(room: string, now: number): Promise<Restriction[]> {
    return [...(this.restricted.get(room)?.values() ?? [])].filter((r) => r.until === undefined || r.until > now).map((r) => ({ ...r }))
  }
  async members(room: string): Promise<string[]> {
    return [...(this.memberships.get(room)?.keys() ?? [])]
  }
  async memberOf(person: string): Promise<string[]> {
    return [...this.memberships].filter(([, members]) => members.has(person)).map(([room]) => room).sort()
  }
  async readMarker(room: string, person: string): Promise<number> {
    return this.markers.get(JSON.stringify([room, person])) ?? 0
  }
  async markRead(room: string, person: string, id: number): Promise<void> {
    const key = JSON.stringify([room, person])
    if (id > (this.markers.get(key) ?? 0)) this.markers.set(key, id)
  }
  async direct(a: string, b: string): Promise<RoomRecord | undefined> {
    const name = this.directs.get(JSON.stringify([a, b].sort()))
    return name === undefined ? undefined : this.get(name)
  }
  async setDirect(a: string, b: string, room: string): Promise<boolean> {
    const key = JSON.stringify([a, b].sort())
    if (this.directs.has(key)) return false
    this.directs.set(key, room)
    return true
  }
}

/** Files in a map (tests; a single process). */
export class MemoryFiles implements FileStore {
  private readonly files = new Map<string, { record: FileRecord; bytes: Buffer; thumbnail: Buffer | undefined }>()
  private key = (room: string, id: string) => `${room}\n${id}`
  async put(record: FileRecord, bytes: Buffer, thumbnail?: Buffer): Promise<void> {
    this.files.set(this.key(record.room, record.id), { record: { ...record }, bytes, thumbnail })
  }
  async attach(room: string, id: string, message: number): Promise<void> {
    const file = this.files.get(this.key(room, id))
    if (file) file.record.message = message
  }
  async get(room: string, id: string): Promise<FileRecord | undefined> {
    const file = this.files.get(this.key(room, id))
    return file && { ...file.record }
  }
  async bytes(room: string, id: string, which: 'file' | 'thumbnail'): Promise<Buffer | undefined> {
    const file = this.files.get(this.key(room, id))
    return which === 'file' ? file?.bytes : file?.thumbnail
  }
  async remove(room: string, id: string): Promise<boolean> {
    return this.files.delete(this.key(room, id))
  }
  async usedSince(owner: string, since: number): Promise<number> {
    let total = 0
    for (const { record } of this.files.values()) if (record.owner === owner && record.at >= since) total += record.size
    return total
  }
  async prune(room: string, through: number, staleBefore: number): Promise<number> {
    let gone = 0
    for (const [key, { record }] of this.files) {
      if (record.room !== room) continue
      if (record.message === undefined ? record.at < staleBefore : record.message <= through) {
        this.files.delete(key)
        gone++
      }
    }
    return gone
  }
}

/** One room's log in an array. */
export class MemoryLog implements RoomLog {
  readonly epoch = newEpoch()
  private events: StoredEvent[] = []
  private last = 0
  /** Who sent each message still kept, and the message a (sender, clientId) was. */
  private readonly senders = new Map<number, string | undefined>()
  private readonly sentIds = new Map<string, number>()
  constructor(readonly room: string) {}

  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const plan = planAppend(drafts, this.last + 1, Date.now(), {
      sent: (sender, clientId) => {
        const id = this.sentIds.get(`${sender}\n${clientId}`)
        return id === undefined ? undefined : this.at(id)
      },
      message: (id) => {
        const stored = this.at(id)
        return stored && { stored, sender: this.senders.get(id) }
      },
    })
    const first = this.events[0]?.event.id ?? this.last + 1
    for (const [id, stored] of plan.changed) this.events[id - first] = stored
    for (const ref of plan.deleted) {
      for (let i = Math.max(0, ref - first); i < this.events.length; i++) {
        const e = this.events[i]!.event
        if (e.type === 'edit' && e.ref === ref) this.events[i] = withoutText(this.events[i]!)
      }
    }
    for (const [ref, text] of plan.edited) {
      for (let i = Math.max(0, ref - first); i < this.events.length; i++) {
        const e = this.events[i]!.event
        if (e.type === 'edit' && e.ref === ref) this.events[i] = withText(this.events[i]!, text)
      }
    }
    for (const row of plan.rows) {
      this.events.push(row.stored)
      if (row.stored.event.type === 'message') this.senders.set(row.stored.event.id, row.sender)
      if (row.sender !== undefined && row.clientId !== undefined) this.sentIds.set(`${row.sender}\n${row.clientId}`, row.stored.event.id)
    }
    this.last = plan.last
    return Promise.resolve(plan.results)
  }

  private at(id: number): StoredEvent | undefined {
    const first = this.events[0]?.event.id ?? this.last + 1
    return id >= first ? this.events[id - first] : undefined
  }

  message(id: number): Promise<SentMessage | undefined> {
    const stored = this.at(id)
    return Promise.resolve(stored?.event.type === 'message' ? { stored, sender: this.senders.get(id) } : undefined)
  }

  thread(root: number, after: number, limit: number): Promise<StoredEvent[]> {
    const first = this.events[0]?.event.id ?? this.last + 1
    const out: StoredEvent[] = []
    for (let i = Math.max(0, Math.max(root, after) + 1 - first); i < this.events.length && out.length < limit; i++) {
      const e = this.events[i]!.event
      if (e.type === 'message' && e.thread === root) out.push(this.events[i]!)
    }
    return Promise.resolve(out)
  }

  /** The messages kept with every term, newest first. */
  search(terms: readonly string[], query: SearchQuery): SearchHit[] {
    const hits: SearchHit[] = []
    const user = query.user?.toLocaleLowerCase()
    for (let i = this.events.length - 1; i >= 0 && hits.length < query.limit; i--) {
      const stored = this.events[i]!
      const e = stored.event
      const words = searchableText(e)
      if (words === undefined) continue
      if (query.before !== undefined && e.timestamp >= query.before) continue
      if (query.after !== undefined && e.timestamp <= query.after) continue
      if (user !== undefined && e.user.toLocaleLowerCase() !== user) continue
      if (textMatches(words, terms)) hits.push({ room: this.room, stored })
    }
    return hits
  }

  after(after: number, limit: number): Promise<StoredEvent[]> {
    const first = this.events[0]?.event.id ?? this.last + 1
    const from = Math.max(0, after - first + 1)
    return Promise.resolve(this.events.slice(from, from + limit))
  }

  before(before: number, limit: number): Promise<StoredEvent[]> {
    const first = this.events[0]?.event.id ?? this.last + 1
    const end = Math.max(0, Math.min(this.events.length, before - first))
    return Promise.resolve(this.events.slice(Math.max(0, end - limit), end))
  }

  lastId(): Promise<number> {
    return Promise.resolve(this.last)
  }

  prune(maxEvents: number, maxAgeMs: number): Promise<number> {
    const before = this.events.length
    if (maxEvents > 0 && this.events.length > maxEvents) this.events = this.events.slice(-maxEvents)
    if (maxAgeMs > 0) {
      const cutoff = Date.now() - maxAgeMs
      const keep = this.events.findIndex((s) => s.event.timestamp >= cutoff)
      this.events = keep < 0 ? [] : this.events.slice(keep)
    }
    this.forget()
    return Promise.resolve(before - this.events.length)
  }

  /** Senders and client ids of pruned messages go with them. */
  private forget(): void {
    const first = this.events[0]?.event.id ?? this.last + 1
    for (const id of this.senders.keys()) if (id < first) this.senders.delete(id)
    for (const [key, id] of this.sentIds) if (id < first) this.sentIds.delete(key)
  }
}

/** A log that lives as long as the process (STORE=memory): tests, or explicitly ephemeral rooms. */
export class MemoryStore extends LobbyMethods implements Store {
  private readonly lobby = new MemoryLog(LOBBY)
  private readonly others = new Map<string, MemoryLog>([[LOBBY, this.lobby]])
  readonly rooms = new MemoryRooms()
  readonly files: FileStore = new MemoryFiles()
  readonly epoch = this.lobby.epoch
  readonly sessions: MemorySessions
  readonly accounts: MemoryAccounts

  /** `sessions` and `accounts`: another store's, to keep people signed in across a new log (tests). */
  constructor(sessions = new MemorySessions(), accounts = new MemoryAccounts()) {
    super()
    this.sessions = sessions
    this.accounts = accounts
  }
  async open(): Promise<void> {}

  protected get lobbyLog(): RoomLog {
    return this.lobby
  }

  /** The lobby's log as the store's own methods (so a store that overrides them, in tests, is the lobby's). */
  private readonly lobbyView: RoomLog = {
    room: LOBBY,
    epoch: this.lobby.epoch,
    append: (drafts) => this.append(drafts),
    after: (after, limit) => this.after(after, limit),
    before: (before, limit) => this.before(before, limit),
    lastId: () => this.lastId(),
    prune: (maxEvents, maxAgeMs) => this.prune(maxEvents, maxAgeMs),
    message: (id) => this.message(id),
    thread: (root, after, limit) => this.thread(root, after, limit),
  }

  async log(room: string): Promise<RoomLog> {
    if (room === LOBBY) return this.lobbyView
    let log = this.others.get(room)
    if (!log) this.others.set(room, (log = new MemoryLog(room)))
    return log
  }

  async logs(): Promise<string[]> {
    return [...this.others.keys()]
  }

  async lastIds(rooms: readonly string[]): Promise<Map<string, number>> {
    const ids = new Map<string, number>()
    for (const room of rooms) ids.set(room, room === LOBBY ? await this.lastId() : ((await this.others.get(room)?.lastId()) ?? 0))
    return ids
  }

  async search(query: SearchQuery): Promise<SearchHit[]> {
    const terms = searchTerms(query.words)
    if (terms.length === 0) return []
    const hits: SearchHit[] = []
    for (const room of query.rooms) {
      const log = this.others.get(room)
      if (log) hits.push(...log.search(terms, query))
    }
    return hits.sort((a, b) => b.stored.event.timestamp - a.stored.event.timestamp || b.stored.event.id - a.stored.event.id).slice(0, query.limit)
  }

  ready(): Promise<boolean> {
    return Promise.resolve(true)
  }

  async close(): Promise<void> {}
}
