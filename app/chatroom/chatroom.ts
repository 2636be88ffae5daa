import type { ReplyAsked } from '../validation.js'
import { skeleton } from '../identity.js'
import type { Bus } from './bus/bus.js'
import { deadline } from './deadline.js'
import { moderationActions, type Event, type PresenceState, type StoredEvent } from './event.js'
import type { FloodGuard } from './flood.js'
import { PEOPLE, People } from './person.js'
import { isGuest, memberKey, type Member, type Presence, type Roster } from './presence.js'
import { Room, type EnterOptions, type Entered, type RoomOptions, type RoomShared, type Said } from './room.js'
import { randomBytes } from 'node:crypto'
import { LOBBY, type AccountStore, type FileStore, type Restriction, type RoomLog, type RoomRecord, type SearchHit, type RoomStore, type RoomVisibility, type SessionStore, type Store } from './store/store.js'
import { removalMessage, type Removal, type SubscribeOptions, type Subscription } from './subscription.js'

export type { Entered, EnterOptions, Refusal, Said } from './room.js'

export interface RoomLimits {
  /** Rooms one person may create. */
  perCreator: number
  /** Rooms in all (direct rooms included). */
  total: number
  /** Members of one private room. */
  members: number
}

export interface ChatroomOptions extends RoomOptions {
  /** How many rooms, and how many members in a private one. */
  roomLimits?: RoomLimits
  /** Messages one user may send per window, across all their connections and rooms. */
  flood?: { limit: number; windowMs: number }
  /** Pruning of every room's log, in the background (0: no bound). */
  retention?: { maxEvents: number; maxAgeMs: number; everyMs: number }
  /** With a shared bus: how often this process checks the store for events the bus did not bring. */
  catchUpMs?: number
  /** Accounts (by name) who run the server (`OPERATORS`): every room's moderators, the lobby's owners. */
  operators?: readonly string[]
  /** Reports one person may file per hour (REPORTS_PER_HOUR). */
  reportsPerHour?: number
  /**
   * A room (never the lobby) with no reader and nobody present on this node, and no event or
   * request for this long, is unloaded; its next use loads it again (default 5 minutes; 0: never).
   */
  idleMs?: number
  /** How long the rooms a person's stream follows are kept without asking the store again, unless their own log moves first (default 30 s; 0: asked at every poll). */
  followingTtlMs?: number
  /** How many people's followed rooms are kept at most (default 100,000). */
  followingKept?: number
}

/** How old a file never attached to a message may get before it is deleted. */
const STALE_UPLOAD_MS = 24 * 3600_000

/** A room as a person sees it listed. */
export interface ListedRoom {
  name: string
  title: string
  topic: string
  visibility: RoomVisibility
  /** The newest event id in the room's log. */
  lastId: number
  /** Messages after the person's read marker (join and leave lines do not count), at most UNREAD_CAP. */
  unread: number
  /** Whether the person is a member (public rooms can be read without being one). */
  member: boolean
}

/** Why a room action was refused: the status each HTTP route answers, and the reason to show. */
export type RoomRefusal = { ok: false; status: 400 | 403 | 404 | 409 | 429 | 503; message: string }

/** Room names: letters (any script, lower case), digits, - and _; 1 to 32 characters. */
const ROOM_NAME = /^[\p{Ll}\p{Lo}\p{Lm}\p{N}][\p{Ll}\p{Lo}\p{Lm}\p{N}\p{Mn}_-]{0,31}$/u

/** Why a room name cannot be used, or undefined. */
export function roomNameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'A room needs a name.'
  if (!ROOM_NAME.test(name.normalize('NFKC'))) return 'A room name is 1 to 32 lower-case letters, digits, - or _, starting with a letter or digit.'
  if (name.startsWith('dm-')) return 'Room names starting with "dm-" are kept for direct messages.'
  // The person's stream names their own events' cursor "me".
  if (name.normalize('NFKC') === 'me') return 'The name "me" is kept for your own events.'
  return undefined
}

const notFound: RoomRefusal = { ok: false, status: 404, message: 'No such room.' }

/** A reported message as its room's moderators see it: who wrote it and what (undefined once deleted), and each report. */
export interface OpenReport {
  id: number
  user: string
  text: string | undefined
  reports: { user: string; reason: string; at: number }[]
}

/** Where the server-wide suspensions of accounts are kept: a ban of the account in no room (a name no room can have). */
const SUSPENSIONS = '~suspended'

/** A room's title or topic as given, trimmed, or why it cannot be one. */
function describing(value: unknown, max: number, what: string): string | RoomRefusal {
  if (value === undefined) return ''
  if (typeof value !== 'string' || Array.from(value).length > max || /\p{Cs}|[\p{Cc}]/u.test(value)) return { ok: false, status: 400, message: `A room's ${what} is text of at most ${max} characters.` }
  return value.trim()
}

/**
 * The name of a person's own log: their events (rooms joined, left, invited to, direct rooms
 * opened to them, read markers), in order, with ids and an epoch like a room's (`me` on the
 * person's stream). Never a room's name: those start with a letter or a digit.
 */
export const personLog = (person: string): string => `~${person}`

/** What a person's own event says (see personLog). */
export type PersonNews = { kind: NonNullable<Event['kind']>; room: string; at?: number | undefined; user: string; removal?: Removal }

/** Unread messages are counted up to this many per room (a list shows "99+" past it). */
const UNREAD_CAP = 100
/** The members a members-only room keeps by name (every one of a private room or a DM, in practice). */
const MEMBERS_GUARDED = 100_000

/** How much say a person has in a room (see Chatroom.rankIn). */
const RANK = { member: 0, moderator: 1, owner: 2, operator: 3 } as const

/** The lobby as a room record: everyone's, public, owned by the operators. */
const LOBBY_RECORD: RoomRecord = { name: LOBBY, skeleton: LOBBY, title: LOBBY, topic: '', visibility: 'public', createdBy: '', createdAt: 0 }

/** Members read to list a room's (the online ones come first of these). */
const MEMBERS_READ = 5000
/** Direct rooms whose two people this process keeps (the oldest let go past it). */
const DIRECT_PEOPLE_KEPT = 10_000

/** How often, with several processes, presence is read again from the bus (signals lost meanwhile are mended). */
const PEOPLE_RESYNC_MS = 30_000

/** /readyz answers within a second: each backend's check gets this long. */
const READY_MS = 900

/** How long a name claim lasts unless renewed: reserved at sign-in, renewed while present. */
export const NAME_CLAIM_MS = 10 * 60_000

/** How long past its use what following() read still stands when the store cannot be read again (see following()). */
const FOLLOWING_STALE_MS = 5 * 60_000

/**
 * The chat on this node: its rooms (each a log of its own, loaded when first used), the name
 * claims and the flood limit every room shares, and the background work (retention, catch-up
 * from the store, keeping present people's names). Until the many-rooms routes arrive, its
 * room API (enter, say, typing, leave, archive, history, roster, ...) is the lobby's: the Revel
 * sample's one room, at every `/…/room…` route.
 */
export class Chatroom {
  private readonly store: Store
  private readonly bus: Bus
  private readonly options: ChatroomOptions
  private readonly shared: RoomShared
  private readonly rooms = new Map<string, Room>()
  /** The two people of each direct room read so far (see directPartner). */
  private readonly directPeople = new Map<string, { person: string; name: string }[]>()
  private loading = new Map<string, Promise<Room>>()
  private lobbyRoom: Room | undefined
  private started = false
  private closed = false
  private readonly timers: NodeJS.Timeout[] = []
  /** Presence of people (online, away, offline) across rooms, pages and processes. */
  readonly people: People
  /** Counts for /metrics, summed over every room on this node. */
  readonly stats = { events: 0, deliveries: 0, lagged: 0, gaps: 0, repeats: 0 }
  /** Reports per person and hour (shared across processes as the flood limit is). */
  private readonly reportGuard: FloodGuard
  /** Slow mode's limits, one per length in use (each shared across processes as the flood limit is). */
  private readonly slowGuards = new Map<number, FloodGuard>()
  /** The operators' names, as skeletons (a look-alike is not one). */
  private readonly operators: ReadonlySet<string>

  /** What this process read from the bus (bytes) and how many rooms it watches there; undefined on the local bus. */
  get busReceived(): { bytes: number; rooms: number } | undefined {
    return this.bus.received?.()
  }

  constructor(store: Store, bus: Bus, options: ChatroomOptions) {
    this.store = store
    this.bus = bus
    this.options = options
    this.operators = new Set((options.operators ?? []).map((name) => skeleton(name)))
    const flood = options.flood ?? { limit: 20, windowMs: 10_000 }
    const floodGuard: FloodGuard = bus.floodGuard('flood', flood.limit, flood.windowMs)
    this.reportGuard = bus.floodGuard('report', options.reportsPerHour ?? 30, 3_600_000)
    const presence = options.presence ?? { graceMs: 5000, ttlMs: 15_000, leaseMs: {} }
    this.people = new People(bus, {
      graceMs: presence.graceMs,
      ttlMs: presence.ttlMs,
      churnLimit: presence.churnLimit,
      onError: (error) => options.onError?.(error, 'could not publish presence'),
      // To every person's stream on this node (their own log's readers): each shares the lobby with everyone.
      onChange: (signal) => {
        for (const [name, room] of this.rooms) if (name.startsWith('~')) room.relay(signal)
      },
    })
    this.shared = {
      flood: floodGuard,
      stats: this.stats,
      people: this.people,
      claimName: (member) => this.claimName(member),
      slowGuard: (seconds) => {
        let guard = this.slowGuards.get(seconds)
        if (!guard) this.slowGuards.set(seconds, (guard = bus.floodGuard(`slow${seconds}`, 1, seconds * 1000)))
        return guard
      },
      unhurried: (name, member) => this.hasModeratorRank(name, member),
      files: store.files,
      presence: {
        graceMs: presence.graceMs,
        churnLimit: presence.churnLimit,
        onError: (error) => options.onError?.(error, 'could not publish a join or leave'),
        onGone: (member) => this.shared.onGone?.(member),
      },
      // Gone from a room: their name is free for someone else unless another room of this node still holds them.
      onGone: (member) => {
        if (!member.id || [...this.rooms.values()].some((room) => room.presence.holds(member))) return
        bus.names.release(skeleton(member.name), member.id).catch((error: unknown) => options.onError?.(error, 'could not release a name'))
      },
    }
  }

  /**
   * Opens the store, loads the lobby and starts listening. With a bus of its own, users the
   * log still shows present (the process was killed) are published as gone. Idempotent.
   */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    await this.store.open()
    this.bus.listen({
      event: (stored, room) => this.rooms.get(room)?.deliver(stored),
      signal: (signal, room) => (room === PEOPLE ? this.people.relay(signal) : this.rooms.get(room)?.relay(signal)),
      revoked: (hash) => this.onRevoked?.(hash),
    })
    // The Revel sample's one room: public, there from the first start on.
    if (!(await this.store.rooms.get(LOBBY))) {
      await this.store.rooms.create({ name: LOBBY, skeleton: skeleton(LOBBY), title: 'Lobby', topic: 'Everyone is welcome here.', visibility: 'public', createdBy: '', createdAt: Date.now() })
    }
    this.lobbyRoom = await this.room(LOBBY)
    await this.people.start()
    const every = (ms: number | undefined, task: () => Promise<unknown>) => {
      if (!ms) return
      const timer = setInterval(() => void task().catch((error: unknown) => this.options.onError?.(error, 'background task failed')), ms)
      timer.unref()
      this.timers.push(timer)
    }
    const retention = this.options.retention
    if (retention && (retention.maxEvents > 0 || retention.maxAgeMs > 0)) {
      every(retention.everyMs, async () => {
        for (const name of await this.store.logs()) {
          const log = await this.store.log(name)
          if ((await log.prune(retention.maxEvents, retention.maxAgeMs)) === 0) continue
          // The files of pruned messages go with them.
          const first = (await log.after(0, 1))[0]?.event.id ?? (await log.lastId()) + 1
          await this.store.files.prune(name, first - 1, Date.now() - STALE_UPLOAD_MS)
        }
      })
    }
    // Files put for a send that never committed (refused, or the process died between): gone after a day.
    every(STALE_UPLOAD_MS / 24, async () => {
      for (const name of await this.store.logs()) await this.store.files.prune(name, 0, Date.now() - STALE_UPLOAD_MS)
    })
    if (this.bus.shared) every(this.options.catchUpMs ?? 1000, () => this.catchUp())
    // Presence signals lost while the bus was away are mended from its sets.
    if (this.bus.shared) every(PEOPLE_RESYNC_MS, () => this.people.resync())
    // Names of people still here stay theirs.
    every(NAME_CLAIM_MS / 4, () => Promise.all([...this.rooms.values()].flatMap((room) => room.presence.members().map((m) => this.claimName(m)))))
    // One timer for every room: idle rooms cost nothing (rooms have no timer of their own while nobody is present).
    const idleMs = this.options.idleMs ?? 5 * 60_000
    if (idleMs > 0) every(Math.max(10, Math.min(60_000, idleMs / 2)), async () => this.unloadIdle(idleMs))
  }

  /**
   * Reads where every room loaded here stands in the store (one read, whatever their number: a
   * person's own log is a room, and a process may hold tens of thousands) and has each fetch the
   * events the bus did not bring. A room still loading reads its own window.
   */
  async catchUp(): Promise<void> {
    // One at a time: a slow store is not asked again while it has not answered.
    if (this.catchingUp) return
    const loaded = [...this.rooms].filter(([name]) => !this.loading.has(name))
    if (loaded.length === 0) return
    this.catchingUp = true
    try {
      const ids = await this.store.lastIds(loaded.map(([name]) => name))
      // Not a room unloaded meanwhile.
      for (const [name, room] of loaded) if (this.rooms.get(name) === room) room.caughtUpTo(ids.get(name) ?? 0)
    } finally {
      this.catchingUp = false
    }
  }

  private catchingUp = false

  /**
   * Unloads the rooms idle on this node for at least `idleMs` (see Room.idleSince), never the
   * lobby nor a room still loading: its presence stops, the bus stops bringing its events, the
   * registry forgets it. Synchronous, so a request cannot load the name again halfway through.
   * Returns how many went.
   */
  unloadIdle(idleMs: number): number {
    const before = Date.now() - idleMs
    let unloaded = 0
    for (const [name, room] of this.rooms) {
      if (name === LOBBY || this.loading.has(name)) continue
      const since = room.idleSince
      if (since === undefined || since > before) continue
      this.rooms.delete(name)
      room.unload()
      this.bus.unwatch(name)
      unloaded++
    }
    return unloaded
  }

  /** How many rooms are loaded on this node (the lobby included): for tests and the benchmark. */
  get loadedRooms(): number {
    return this.rooms.size
  }

  /** A room on this node, loaded (its log opened, its window read, its events watched) on first use. */
  room(name: string): Promise<Room> {
    // Listed while it loads (so the bus's events reach it), but nobody uses it before its window is read.
    const pending = this.loading.get(name)
    if (pending) return pending
    const loaded = this.rooms.get(name)
    if (loaded) {
      loaded.touch()
      return Promise.resolve(loaded)
    }
    let loading = this.loading.get(name)
    if (!loading) {
      loading = (async () => {
        const log = await this.store.log(name)
        const room = new Room(name, log, this.bus, this.options, this.shared)
        this.rooms.set(name, room)
        this.bus.watch(name)
        await this.guard(room, log)
        if (!name.startsWith('~')) await room.restrictFrom(this.store.rooms)
        await room.start()
        return room
      })().finally(() => this.loading.delete(name))
      this.loading.set(name, loading)
    }
    return loading
  }

  /**
   * A private or direct room is written by its members alone, and read by them alone on every
   * process: the room keeps the members the store has now, then the join and leave lines that
   * follow (read after subscribing to the bus, so no line is missed between the two).
   */
  private async guard(room: Room, log: RoomLog): Promise<void> {
    if (room.name === LOBBY || room.name.startsWith('~')) return
    const record = await this.store.rooms.get(room.name)
    // Its rules (slow mode, closed) as the store has them; the log's moderation events after this keep them.
    if (record) room.setRules(record)
    if (!record) return
    if (record.visibility !== 'public') {
      const from = await log.lastId()
      const members = await this.store.rooms.named(room.name, MEMBERS_GUARDED)
      // Memberships recorded before names were: the account's name.
      const names = await Promise.all(members.map(async (m) => m.name || (await this.store.accounts.byId(m.person))?.name || ''))
      room.guard(names.filter((name) => name !== ''), from)
    }
    room.recorded = true
  }

  /**
   * The room if this person may read it (public, or they are a member), loaded; undefined
   * otherwise. A room a person may not read does not exist for them: every route answers 404.
   */
  async readable(name: string, member: Member): Promise<Room | undefined> {
    const room = await this.access(name, member)
    return room instanceof Room ? room : undefined
  }

  /**
   * The room if this person may read it, loaded; else why not: 404 where it does not exist for
   * them, 403 with who banned them, until when and why (they were in it: the ban is theirs to
   * know). Every route that reads a room comes through here; the room itself checks a ban again
   * at every entry and write, so one that lands in between is not missed.
   */
  async access(name: string, member: Member): Promise<Room | RoomRefusal> {
    let room: Room
    const loaded = this.loading.has(name) ? undefined : this.rooms.get(name)
    if (name === LOBBY) room = this.lobby
    else if (loaded?.readableBy(member)) {
      // Loaded here: public, or the person a member by the lines this process has applied (the
      // store is asked only for a no, which may be a join not heard yet). A poll asks nothing.
      room = loaded
      room.touch()
    } else {
      const record = await this.store.rooms.get(name)
      if (!record) return notFound
      if (!(await this.mayRead(record, member))) {
        // Banned from a private room (no longer a member): told so, not that it does not exist.
        const ban = record.visibility === 'private' ? await this.storedBan(name, member) : undefined
        return ban ? { ok: false, status: 403, message: removalMessage(ban) } : notFound
      }
      room = await this.room(name)
    }
    const ban = room.bannedNow(member)
    return ban ? { ok: false, status: 403, message: removalMessage(ban) } : room
  }

  /** The ban on this person in a room, as the store has it (for a room this process need not load). */
  private async storedBan(name: string, member: Member): Promise<Removal | undefined> {
    const key = memberKey(member)
    const ban = (await this.store.rooms.restrictions(name, Date.now())).find((r) => r.kind === 'ban' && r.person === key)
    return ban && { action: 'ban', by: ban.by, reason: ban.reason, until: ban.until }
  }

  private async mayRead(record: RoomRecord, member: Member): Promise<boolean> {
    if (record.visibility === 'public') return true
    return member.id !== undefined && (await this.store.rooms.role(record.name, member.id)) !== undefined
  }

  /**
   * Messages with the words, in the rooms this person can read (or in `room` alone: undefined
   * when they cannot read it), newest first, each with its room's epoch (for a link to it).
   */
  async search(
    member: Member,
    query: { words: string; room?: string | undefined; user?: string | undefined; before?: number | undefined; after?: number | undefined; limit: number },
  ): Promise<(SearchHit & { epoch: string })[] | undefined> {
    let rooms: string[]
    if (query.room !== undefined) {
      // A room they may not read, or are banned from: not searched.
      if (!((await this.access(query.room, member)) instanceof Room)) return undefined
      rooms = [query.room]
    } else {
      const barred = new Set(await this.store.rooms.barred(memberKey(member), Date.now()))
      rooms = [...new Set([LOBBY, ...(await this.store.rooms.visibleTo(member.id ?? '')).map((r) => r.name)])].filter((name) => !barred.has(name))
    }
    const hits = await this.store.search({ ...query, rooms })
    const epochs = new Map<string, string>()
    for (const hit of hits) if (!epochs.has(hit.room)) epochs.set(hit.room, (await this.store.log(hit.room)).epoch)
    return hits.map((hit) => ({ ...hit, epoch: epochs.get(hit.room)! }))
  }

  /** The rooms this person can see: public ones and those they are a member of, with their last id and unread count. */
  async listRooms(member: Member): Promise<ListedRoom[]> {
    const id = member.id ?? ''
    const barred = new Set(await this.store.rooms.barred(memberKey(member), Date.now()))
    const rooms = (await this.store.rooms.visibleTo(id)).filter((r) => !barred.has(r.name))
    return Promise.all(
      rooms.map(async (r) => {
        const lastId = this.rooms.get(r.name)?.lastId ?? (await (await this.store.log(r.name)).lastId())
        const read = id ? await this.store.rooms.readMarker(r.name, id) : 0
        const member = id !== '' && (await this.store.rooms.role(r.name, id)) !== undefined
        const unread = lastId > read ? await this.unreadMessages(r.name, read) : 0
        return { name: r.name, title: r.title, topic: r.topic, visibility: r.visibility, lastId, unread, member }
      }),
    )
  }

  /** Messages (not join and leave lines) after the read marker, counted up to UNREAD_CAP: from the window when the room is loaded, else the log. */
  private async unreadMessages(room: string, read: number): Promise<number> {
    const loaded = this.rooms.get(room)
    const window = loaded?.archive(read)
    const events = window && (window.length === 0 || window[0]!.event.id === read + 1) ? window : await (await this.store.log(room)).after(read, UNREAD_CAP)
    let n = 0
    for (const { event } of events) if (event.type === 'message' && ++n >= UNREAD_CAP) break
    return n
  }

  /** A new public or private room; its creator is its owner (and first member). Private rooms need an account. */
  async createRoom(member: Member, input: { name: unknown; title?: unknown; topic?: unknown; visibility?: unknown }): Promise<{ ok: true; room: RoomRecord } | RoomRefusal> {
    if (!member.id) return { ok: false, status: 403, message: 'Sign in first.' }
    const problem = roomNameProblem(input.name)
    if (problem) return { ok: false, status: 400, message: problem }
    const visibility = input.visibility === undefined || input.visibility === '' ? 'public' : input.visibility
    if (visibility !== 'public' && visibility !== 'private') return { ok: false, status: 400, message: 'visibility is public or private.' }
    if (visibility === 'private' && !member.account) return { ok: false, status: 403, message: 'A private room needs an account: register your name first.' }
    const title = describing(input.title, 80, 'title')
    if (typeof title !== 'string') return title
    const topic = describing(input.topic, 300, 'topic')
    if (typeof topic !== 'string') return topic
    const limits = this.options.roomLimits ?? { perCreator: 20, total: 10_000, members: 1000 }
    const counts = await this.store.rooms.counts(member.id)
    if (counts.created >= limits.perCreator) return { ok: false, status: 429, message: `One person may create at most ${limits.perCreator} rooms.` }
    if (counts.total >= limits.total) return { ok: false, status: 429, message: `This chat holds at most ${limits.total} rooms; none can be created now.` }
    const name = (input.name as string).normalize('NFKC')
    const room: RoomRecord = { name, skeleton: skeleton(name), title: title || name, topic, visibility, createdBy: member.id, createdAt: Date.now() }
    if (!(await this.store.rooms.create(room))) return { ok: false, status: 409, message: `A room called "${name}" (or a name that looks the same) exists already.` }
    await this.store.rooms.addMember(name, member.id, 'owner', member.name)
    await this.line(name, 'join', member)
    return { ok: true, room }
  }

  /**
   * The room's owner gives it a new title or topic (what is not given stays); every member hears
   * of it on their stream (`renamed`). Others are refused (403; 404 where they may not read it).
   */
  async describeRoom(member: Member, name: string, input: { title?: unknown; topic?: unknown }): Promise<{ ok: true; room: RoomRecord } | RoomRefusal> {
    const record = await this.store.rooms.get(name)
    if (!record || !member.id || !(await this.mayRead(record, member))) return notFound
    if (record.visibility === 'direct' || (await this.store.rooms.role(name, member.id)) !== 'owner') return { ok: false, status: 403, message: "Only the room's owner can change its title and topic." }
    const title = input.title === undefined ? record.title : describing(input.title, 80, 'title')
    if (typeof title !== 'string') return title
    const topic = input.topic === undefined ? record.topic : describing(input.topic, 300, 'topic')
    if (typeof topic !== 'string') return topic
    await this.store.rooms.describe(name, title || name, topic)
    const members = await this.store.rooms.members(name)
    await Promise.all(members.map((person) => this.tell(person, { kind: 'renamed', room: name, user: member.name })))
    return { ok: true, room: { ...record, title: title || name, topic } }
  }

  /**
   * The other person of a direct room (its two people never change): kept once read, so the
   * room list names each DM's other person without a query per DM on every page.
   */
  async directPartner(room: string, person: string): Promise<string | undefined> {
    let both = this.directPeople.get(room)
    if (!both) {
      both = (await this.store.rooms.named(room, 2)).map((m) => ({ person: m.person, name: m.name }))
      if (both.length === 2 && both.every((m) => m.name !== '')) {
        if (this.directPeople.size >= DIRECT_PEOPLE_KEPT) this.directPeople.delete(this.directPeople.keys().next().value!)
        this.directPeople.set(room, both)
      }
    }
    return both.find((m) => m.person !== person)?.name
  }

  /**
   * A room's members as its list shows them: each with their presence as a person, those online
   * first, then away, then offline (each by name), the first `limit` of them; `count` is all of
   * them. Members recorded before names were kept are left out of the list (still counted).
   */
  async membersOf(room: Room, limit: number): Promise<{ count: number; users: { name: string; avatar?: string; presence: PresenceState }[] }> {
    const named = await this.store.rooms.named(room.name, MEMBERS_READ)
    const here = new Map(room.roster().users.map((u) => [u.name, u.avatar]))
    const rank = { online: 0, away: 1, offline: 2 }
    const users = named
      .filter((m) => m.name !== '')
      .map((m) => {
        const presence = this.people.stateOf(m.name)
        const avatar = here.get(m.name)
        return avatar === undefined ? { name: m.name, presence } : { name: m.name, avatar, presence }
      })
      .sort((a, b) => rank[a.presence] - rank[b.presence] || a.name.localeCompare(b.name))
    const count = named.length < MEMBERS_READ ? named.length : (await this.store.rooms.members(room.name)).length
    return { count, users: users.slice(0, limit) }
  }

  /** Joins a public room (private rooms are joined by invitation only). */
  async joinRoom(member: Member, name: string): Promise<{ ok: true } | RoomRefusal> {
    const record = await this.store.rooms.get(name)
    if (!record || !member.id || !(await this.mayRead(record, member))) return notFound
    if (record.visibility !== 'public') return { ok: true }
    const room = await this.room(name)
    const ban = room.bannedNow(member)
    if (ban) return { ok: false, status: 403, message: removalMessage(ban) }
    if (room.closedToNew && (await this.store.rooms.role(name, member.id)) === undefined && (await this.rankIn(record, member)) < RANK.moderator) {
      return { ok: false, status: 403, message: 'This room is closed to new members.' }
    }
    if (await this.store.rooms.addMember(name, member.id, 'member', member.name)) {
      // Their news points at their join line: their stream follows the room from it on.
      const joined = await this.line(name, 'join', member)
      await this.tell(member.id, { kind: 'joined', room: name, at: joined ? joined.event.id - 1 : await this.lastIdOf(name), user: member.name })
    }
    return { ok: true }
  }

  /**
   * A line in the room's log saying membership changed: someone joined (or was let in) or
   * left. Only membership writes them (never opening, closing or switching to a room); the
   * change is already in the store, so a line that cannot be written is told to onError.
   */
  private async line(room: string, type: 'join' | 'leave', who: Member): Promise<StoredEvent | undefined> {
    try {
      const log = await this.room(room)
      const via = who.provider?.name
      return await (type === 'join' ? log.join(who.name, who.avatar, via, isGuest(who)) : log.left(who.name, who.avatar, via, isGuest(who)))
    } catch (error) {
      this.options.onError?.(error, 'could not record a join or leave')
      return undefined
    }
  }

  /** The newest id of a room's log, as the store has it (this process may not have seen it yet). */
  private async lastIdOf(room: string): Promise<number> {
    return Math.max(this.rooms.get(room)?.lastId ?? 0, await (await this.store.log(room)).lastId())
  }

  /**
   * Records one of the person's own events in their log: every process that follows them (the
   * person's stream) hears it by the bus and adds or drops the room on their connections. The
   * membership it reports is already in the store: an event that could not be recorded is told
   * to onError, and a connection learns the change when it next opens.
   */
  async tell(person: string, news: PersonNews): Promise<StoredEvent | undefined> {
    try {
      const log = await this.room(personLog(person))
      const { removal } = news
      // removed: who put them out, how, until when and why (their pages say it whichever comes first, this or the room's own end).
      const more = removal ? { action: removal.action, ...(removal.reason && { reason: removal.reason }), ...(removal.until !== undefined && { until: removal.until }) } : {}
      return await log.publish({ type: 'person', user: news.user, kind: news.kind, room: news.room, at: news.at, ...more })
    } catch (error) {
      this.options.onError?.(error, "could not record a person's event")
      return undefined
    }
  }

  /**
   * The rooms the person's stream follows: the lobby and every room they are a member of. Asked
   * by every poll of every tab, it is kept for the person while their own log stands where it
   * stood (a join, a leave, an invitation, a kick or a ban anywhere is an event on it, heard here
   * by the bus) and at most `followingTtlMs`; a read under way is shared, not queued again on the
   * store. Someone with no id follows the lobby alone, asking the store nothing. Whether the
   * lobby is followed is the lobby's own bans' say, at every call (a ban that ends writes
   * nothing on the person's log).
   */
  async following(member: Member): Promise<string[]> {
    // Not the lobby while banned from it (a stream would be refused it at every poll).
    const unbarred = (rooms: readonly string[]) => (this.lobby.bannedNow(member) ? rooms.filter((name) => name !== LOBBY) : [...rooms])
    if (!member.id) return unbarred([LOBBY])
    // Loaded (and so watched on the bus) before its position is taken: a change after this is a new key.
    const version = (await this.room(personLog(member.id))).lastId
    const key = `${member.id}\n${version}`
    const known = this.followingKnown.get(key)
    if (known && known.until > Date.now()) return unbarred(known.rooms)
    let read = this.followingReads.get(key)
    if (!read) {
      const started: Promise<string[]> = this.readFollowing(member)
        .then((rooms) => {
          this.keepFollowing(key, rooms)
          return rooms
        })
        .finally(() => {
          if (this.followingReads.get(key) === started) this.followingReads.delete(key)
        })
      read = started
      this.followingReads.set(key, read)
    }
    try {
      return unbarred(await read)
    } catch (error) {
      // The store did not answer in time (overloaded, failing over): what was read for the same
      // version of their log (no room joined or left since) goes on a while longer, so a page's
      // poll still hands over what its rooms said; a ban meanwhile is known to each loaded room.
      const stale = this.followingKnown.get(key)
      if (stale && stale.until + FOLLOWING_STALE_MS > Date.now()) return unbarred(stale.rooms)
      throw error
    }
  }

  private readonly followingReads = new Map<string, Promise<string[]>>()
  /** What following() read, by person and version, oldest first (bounded: the oldest go first). */
  private readonly followingKnown = new Map<string, { rooms: string[]; until: number }>()

  private keepFollowing(key: string, rooms: string[]): void {
    const ttl = this.options.followingTtlMs ?? 30_000
    if (ttl <= 0) return
    this.followingKnown.delete(key)
    this.followingKnown.set(key, { rooms, until: Date.now() + ttl })
    // Bounded: past the cap, the oldest entries (and any past their use when the store fails, at the front) go.
    const cap = this.options.followingKept ?? 100_000
    for (const [old, entry] of this.followingKnown) {
      if (this.followingKnown.size <= cap && entry.until + FOLLOWING_STALE_MS > Date.now()) break
      this.followingKnown.delete(old)
    }
  }

  private async readFollowing(member: Member): Promise<string[]> {
    const barred = new Set(await this.store.rooms.barred(memberKey(member), Date.now()))
    return [...new Set([LOBBY, ...(await this.store.rooms.memberOf(member.id!))])].filter((name) => name === LOBBY || !barred.has(name))
  }

  /** Leaves a room's membership (the lobby cannot be left this way: sign out instead). */
  async leaveRoom(member: Member, name: string): Promise<{ ok: true } | RoomRefusal> {
    const record = await this.store.rooms.get(name)
    if (!record || !member.id || !(await this.mayRead(record, member))) return notFound
    if (name === LOBBY) return { ok: false, status: 400, message: 'Everyone stays in the lobby; sign out to leave it.' }
    const removed = await this.store.rooms.removeMember(name, member.id)
    const room = this.rooms.get(name)
    // Not a member here from now, even if the line below cannot be written (other processes learn it from the line, or from the store).
    if (removed) room?.forget(member.name)
    // A private room's reader who is no longer a member reads no further (not even their own leave line).
    if (room && record.visibility !== 'public') await room.leave(member)
    if (removed) {
      // The line is the fact every process applies: a members-only room's readers of theirs end
      // there too, and their sends are refused (a DM's other person sees that they left).
      await this.line(name, 'leave', member)
      await this.tell(member.id, { kind: 'left', room: name, user: member.name })
    }
    return { ok: true }
  }

  /** A member invites a person (an account) into a private room. */
  async invite(member: Member, name: string, invitee: { id: string; name: string }): Promise<{ ok: true; added: boolean } | RoomRefusal> {
    const person = invitee.id
    const record = await this.store.rooms.get(name)
    if (!record || !member.id || !(await this.mayRead(record, member))) return notFound
    if (record.visibility === 'direct') return { ok: false, status: 400, message: 'A direct room is for its two people.' }
    if (record.visibility === 'private') {
      if ((await this.store.rooms.role(name, member.id)) === undefined) return notFound
      const limits = this.options.roomLimits ?? { perCreator: 20, total: 10_000, members: 1000 }
      if ((await this.store.rooms.members(name)).length >= limits.members) return { ok: false, status: 429, message: `A private room holds at most ${limits.members} members.` }
    }
    const room = await this.room(name)
    if (room.closedToNew && (await this.rankIn(record, member)) < RANK.moderator) return { ok: false, status: 403, message: 'This room is closed to new members: only its moderators let people in.' }
    if (room.bannedNow({ id: person, name: invitee.name, account: true })) {
      return { ok: false, status: 403, message: `${invitee.name} is banned from this room; a moderator can lift the ban first.` }
    }
    const added = await this.store.rooms.addMember(name, person, 'member', invitee.name)
    if (added) {
      const joined = await this.line(name, 'join', { id: person, name: invitee.name, account: true })
      await this.tell(person, { kind: 'invited', room: name, at: joined ? joined.event.id - 1 : await this.lastIdOf(name), user: member.name })
    }
    return { ok: true, added }
  }

  /** The direct room of two people (accounts), made on first use. */
  async direct(member: Member, other: { id: string; name: string }, own: { name: string }): Promise<{ ok: true; room: RoomRecord } | RoomRefusal> {
    if (!member.id || !member.account) return { ok: false, status: 403, message: 'Direct messages need an account: register your name first.' }
    if (other.id === member.id) return { ok: false, status: 400, message: 'A direct room is between two people.' }
    const found = await this.store.rooms.direct(member.id, other.id)
    if (found) {
      // Left by either of them: opened again, they are both in it (a join line, the DM on their stream again).
      for (const person of [{ id: member.id, name: own.name, avatar: member.avatar }, { id: other.id, name: other.name }]) {
        if (!(await this.store.rooms.addMember(found.name, person.id, 'member', person.name))) continue
        const joined = await this.line(found.name, 'join', person)
        await this.tell(person.id, { kind: 'direct', room: found.name, at: joined ? joined.event.id - 1 : await this.lastIdOf(found.name), user: own.name })
      }
      return { ok: true, room: found }
    }
    const name = `dm-${randomBytes(8).toString('hex')}`
    const room: RoomRecord = { name, skeleton: name, title: [own.name, other.name].sort().join(' & '), topic: '', visibility: 'direct', createdBy: member.id, createdAt: Date.now() }
    await this.store.rooms.create(room)
    await this.store.rooms.addMember(name, member.id, 'member', own.name)
    await this.store.rooms.addMember(name, other.id, 'member', other.name)
    // Two people opening it at once: the first one recorded is theirs.
    if (!(await this.store.rooms.setDirect(member.id, other.id, name))) return { ok: true, room: (await this.store.rooms.direct(member.id, other.id))! }
    // Both people's streams gain it at once: the other's (a DM opened to them) and the opener's other devices.
    await Promise.all([other.id, member.id].map((person) => this.tell(person, { kind: 'direct', room: name, at: 0, user: own.name })))
    return { ok: true, room }
  }

  /** Whether this person moderates the room (its moderators, its owner, the operators): the page offers them its tools. */
  async moderates(name: string, member: Member): Promise<boolean> {
    const record = await this.recordOf(name)
    return record !== undefined && record.visibility !== 'direct' && (await this.rankIn(record, member)) >= RANK.moderator
  }

  /** A room's record (the lobby's is no row of the store). */
  private recordOf(name: string): Promise<RoomRecord | undefined> {
    return name === LOBBY ? Promise.resolve(LOBBY_RECORD) : this.store.rooms.get(name)
  }

  /** Whether this person has a moderator's say in the room, or more (its owner, an operator). */
  private async hasModeratorRank(name: string, member: Member): Promise<boolean> {
    const record = await this.recordOf(name)
    return record !== undefined && (await this.rankIn(record, member)) >= RANK.moderator
  }

  /**
   * How much say this person has in a room: an operator (OPERATORS, an account) over every room,
   * the owner (its creator) over theirs, a moderator the owner appointed, or none.
   */
  private async rankIn(record: RoomRecord, member: Member): Promise<number> {
    if (member.account && member.id && (await this.isOperator(member))) return RANK.operator
    if (!member.id || record.name === LOBBY) return RANK.member
    const role = await this.store.rooms.role(record.name, member.id)
    return role === 'owner' || record.createdBy === member.id ? RANK.owner : role === 'moderator' ? RANK.moderator : RANK.member
  }

  /** An operator: named in OPERATORS, or promoted by an operator (the lobby's owners, kept as its members of that role). */
  private async isOperator(member: Member): Promise<boolean> {
    if (this.operators.has(skeleton(member.name))) return true
    return member.id !== undefined && (await this.store.rooms.role(LOBBY, member.id)) === 'owner'
  }

  /**
   * An operator makes another account an operator (`promote` in the lobby) or takes it back
   * (`demote`); those named in OPERATORS stay operators (the configuration says so).
   */
  private async appointOperator(operator: Member, target: Member, action: 'promote' | 'demote', reason: string): Promise<{ ok: true; event: StoredEvent } | RoomRefusal> {
    if (!target.account || !target.id) return { ok: false, status: 400, message: 'Operators need an account.' }
    if (this.operators.has(skeleton(target.name))) return { ok: false, status: 403, message: `${target.name} is an operator by the server's configuration (OPERATORS).` }
    if (action === 'promote') {
      if (!(await this.store.rooms.setRole(LOBBY, target.id, 'owner'))) await this.store.rooms.addMember(LOBBY, target.id, 'owner', target.name)
    } else await this.store.rooms.removeMember(LOBBY, target.id)
    return { ok: true, event: await this.lobby.moderation(operator, action, target.name, reason) }
  }

  /**
   * A moderator acts in a room (POST /rooms/:room/moderation, a socket's frame): `promote` or
   * `demote` a member (the owner or an operator), `delete` anyone's message (`id`), `mute` a
   * person for `minutes` (or for good) and `unmute` them. Each is decided in the store, then an
   * event in the room's log (who, whom, why) that every process applies. A moderator acts on
   * those below them only: a member, or a moderator for the owner and operators.
   */
  async moderate(member: Member, name: string, input: Record<string, unknown>): Promise<{ ok: true; event: StoredEvent } | RoomRefusal | { ok: false; said: Exclude<Said, { outcome: 'ok' }> }> {
    try {
      return await this.tryModerate(member, name, input)
    } catch (error) {
      // The store or the bus away: said plainly on every route and frame (a frame's promise never rejects).
      this.options.onError?.(error, 'could not moderate')
      return { ok: false, status: 503, message: 'The chat is unavailable right now; nothing was done. Try again shortly.' }
    }
  }

  private async tryModerate(member: Member, name: string, input: Record<string, unknown>): Promise<{ ok: true; event: StoredEvent } | RoomRefusal | { ok: false; said: Exclude<Said, { outcome: 'ok' }> }> {
    const record = await this.recordOf(name)
    if (!record || !(await this.mayRead(record, member))) return notFound
    // Banned from it (an owner an operator banned included): no say there either.
    const reachable = await this.access(name, member)
    if (!(reachable instanceof Room)) return reachable
    const action = input.action
    if (typeof action !== 'string' || !(moderationActions as readonly string[]).includes(action)) {
      return { ok: false, status: 400, message: `action is one of ${moderationActions.join(', ')}.` }
    }
    const reason = input.reason === undefined ? '' : input.reason
    if (typeof reason !== 'string' || reason.length > 200) return { ok: false, status: 400, message: 'reason is at most 200 characters.' }
    const rank = await this.rankIn(record, member)
    if (record.visibility === 'direct' && rank < RANK.operator) return { ok: false, status: 403, message: 'A direct room has no moderators.' }
    const needed = action === 'promote' || action === 'demote' ? RANK.owner : RANK.moderator
    if (rank < needed) return { ok: false, status: 403, message: needed === RANK.owner ? "Only the room's owner can appoint its moderators." : "Only the room's moderators can do that." }
    const room = await this.room(name)
    if (action === 'delete') {
      const said = await room.deleteAsModerator(member, Number(input.id), reason.trim())
      // Refused as a write is (no such message, too many, the store away): each transport says it as it says a say's refusal.
      if (said.outcome !== 'ok') return { ok: false, said }
      await this.handleReports(member, name, Number(input.id), 'deleted')
      return { ok: true, event: said.stored }
    }
    if (action === 'slow' || action === 'close' || action === 'open' || action === 'topic') return this.setRoom(member, record, room, action, input, reason.trim())
    if ((action === 'suspend' || action === 'unsuspend') && (record.name !== LOBBY || rank < RANK.operator)) {
      return { ok: false, status: 403, message: "Only the server's operators suspend accounts, in the lobby (POST /room/moderation)." }
    }
    const target = await this.personNamed(room, input.user, action === 'unban' ? 'ban' : action === 'unmute' ? 'mute' : undefined)
    if (!target) return { ok: false, status: 404, message: 'No one by that name here.' }
    // A private room's kicks and bans are of its members (a ban of anyone else would tell them the room exists).
    if ((action === 'kick' || action === 'ban') && record.visibility === 'private' && (!target.id || (await this.store.rooms.role(name, target.id)) === undefined)) {
      return { ok: false, status: 400, message: `${target.name} is not a member of this private room.` }
    }
    // In the lobby, the operators appoint operators (and take it back from those they appointed).
    if ((action === 'promote' || action === 'demote') && record.name === LOBBY) return this.appointOperator(member, target, action, reason.trim())
    if ((await this.rankIn(record, target)) >= rank) return { ok: false, status: 403, message: `${target.name} has as much say here as you.` }
    if (action === 'promote' || action === 'demote') {
      if (!target.account) return { ok: false, status: 400, message: 'Moderators need an account.' }
      const role = action === 'promote' ? 'moderator' : 'member'
      if (!(await this.store.rooms.setRole(name, target.id!, role))) await this.store.rooms.addMember(name, target.id!, role, target.name)
      return { ok: true, event: await room.moderation(member, action, target.name, reason.trim()) }
    }
    const key = memberKey(target)
    if (action === 'suspend' || action === 'unsuspend') return this.suspend(member, target, action, input.minutes, reason.trim())
    if (action === 'unmute' || action === 'unban') {
      await this.store.rooms.lift(name, key, action === 'unmute' ? 'mute' : 'ban')
      return { ok: true, event: await room.moderation(member, action, target.name, reason.trim()) }
    }
    if (action === 'kick') {
      if (name === LOBBY) return { ok: false, status: 400, message: 'Everyone may be in the lobby: mute or ban instead.' }
      const removal: Removal = { action: 'kick', by: member.name, reason: reason.trim() }
      return { ok: true, event: await this.putOut(room, target, removal, () => room.moderation(member, 'kick', target.name, reason.trim())) }
    }
    // mute, ban: for `minutes`, or for good.
    const minutes = input.minutes === undefined || input.minutes === '' ? undefined : Number(input.minutes)
    if (minutes !== undefined && !(Number.isInteger(minutes) && minutes >= 1 && minutes <= 525_600)) return { ok: false, status: 400, message: 'minutes is a whole number from 1 to 525600 (a year), or none for good.' }
    const until = minutes === undefined ? undefined : Date.now() + minutes * 60_000
    const kind = action === 'ban' ? 'ban' : 'mute'
    await this.store.rooms.restrict(name, { person: key, name: target.name, kind, until, by: member.name, reason: reason.trim(), at: Date.now() })
    const event = () => room.moderation(member, kind, target.name, reason.trim(), { until })
    const removal: Removal = { action: 'ban', by: member.name, reason: reason.trim(), until }
    return { ok: true, event: kind === 'ban' && name !== LOBBY ? await this.putOut(room, target, removal, event) : await event() }
  }

  /**
   * An operator suspends an account server-wide (for `minutes`, or for good), or lifts it: every
   * session of theirs ends (on every process: their sockets, streams and polls close as at a
   * sign-out), and no sign-in is let through while it holds; a line of the lobby says so.
   */
  private async suspend(operator: Member, target: Member, action: 'suspend' | 'unsuspend', minutesIn: unknown, reason: string): Promise<{ ok: true; event: StoredEvent } | RoomRefusal> {
    if (!target.account || !target.id) return { ok: false, status: 400, message: 'Only an account can be suspended (a guest is banned from rooms).' }
    if (action === 'unsuspend') {
      await this.store.rooms.lift(SUSPENSIONS, target.id, 'ban')
      return { ok: true, event: await this.lobby.moderation(operator, 'unsuspend', target.name, reason) }
    }
    const minutes = minutesIn === undefined || minutesIn === '' ? undefined : Number(minutesIn)
    if (minutes !== undefined && !(Number.isInteger(minutes) && minutes >= 1 && minutes <= 525_600)) return { ok: false, status: 400, message: 'minutes is a whole number from 1 to 525600 (a year), or none for good.' }
    const until = minutes === undefined ? undefined : Date.now() + minutes * 60_000
    await this.store.rooms.restrict(SUSPENSIONS, { person: target.id, name: target.name, kind: 'ban', until, by: operator.name, reason, at: Date.now() })
    for (const hash of await this.store.sessions.endAccount(target.id)) this.revoke(hash)
    return { ok: true, event: await this.lobby.moderation(operator, 'suspend', target.name, reason, { until }) }
  }

  /** The suspension in force on an account (checked at every sign-in), or undefined. */
  async suspension(account: string): Promise<Removal | undefined> {
    const found = (await this.store.rooms.restrictions(SUSPENSIONS, Date.now())).find((r) => r.person === account)
    return found && { action: 'ban', by: found.by, reason: found.reason, until: found.until }
  }

  /**
   * A moderator's rule for the whole room: `slow` mode (`seconds`, 0 to end it), `close` it to new
   * members or `open` it again, or a new `topic` (and `title`). Decided in the store, then an event
   * of the log that every process applies (a topic is also told to each member's stream).
   */
  private async setRoom(member: Member, record: RoomRecord, room: Room, action: 'slow' | 'close' | 'open' | 'topic', input: Record<string, unknown>, reason: string): Promise<{ ok: true; event: StoredEvent } | RoomRefusal> {
    if (record.name === LOBBY && action !== 'slow') return { ok: false, status: 400, message: 'The lobby is open to everyone and has no topic to set.' }
    if (action === 'topic') {
      const topic = input.topic === undefined ? record.topic : describing(input.topic, 300, 'topic')
      if (typeof topic !== 'string') return topic
      const title = input.title === undefined || input.title === '' ? record.title : describing(input.title, 80, 'title')
      if (typeof title !== 'string') return title
      await this.store.rooms.describe(record.name, title || record.name, topic)
      const event = await room.moderation(member, 'topic', undefined, reason, { topic, title: title || record.name })
      const members = await this.store.rooms.members(record.name)
      await Promise.all(members.map((person) => this.tell(person, { kind: 'renamed', room: record.name, user: member.name })))
      return { ok: true, event }
    }
    let slow = room.slow
    if (action === 'slow') {
      const seconds = Number(input.seconds ?? '')
      if (!(Number.isInteger(seconds) && seconds >= 0 && seconds <= 3600)) return { ok: false, status: 400, message: 'seconds is a whole number from 0 (off) to 3600.' }
      slow = seconds
    }
    const closed = action === 'close' ? true : action === 'open' ? false : room.closedToNew
    if (record.name !== LOBBY) await this.store.rooms.setRules(record.name, { slow, closed })
    return { ok: true, event: await room.moderation(member, action, undefined, reason, action === 'slow' ? { seconds: slow } : {}) }
  }

  /**
   * A kicked or banned person is no longer a member: the store first, then the room's event
   * (which ends their readers on every process, saying why), then their own log's `removed` with
   * the same words (their streams let the room go and say why, whichever of the two comes first).
   * No leave line: the moderation event is the record.
   */
  private async putOut(room: Room, target: Member, removal: Removal, event: () => Promise<StoredEvent>): Promise<StoredEvent> {
    const removed = target.id !== undefined && (await this.store.rooms.removeMember(room.name, target.id))
    const stored = await event()
    if (removed) await this.tell(target.id!, { kind: 'removed', room: room.name, user: removal.by, removal })
    return stored
  }

  /**
   * Whom a moderator names: an account, or a guest who has the room open on this process (known
   * by their session's key, so a ban holds when they take another name); lifting a ban or a mute,
   * also whoever the room's restrictions name (a banned guest is not here to be found).
   */
  private async personNamed(room: Room, name: unknown, restricted?: Restriction['kind']): Promise<Member | undefined> {
    if (typeof name !== 'string' || name.length === 0 || name.length > 64) return undefined
    const account = await this.store.accounts.bySkeleton(skeleton(name))
    if (account) return { id: account.id, name: account.name, account: true }
    const key = room.keyOf(name)
    if (key !== undefined) return { id: key, name }
    if (!restricted) return undefined
    const found = (await this.store.rooms.restrictions(room.name, Date.now())).find((r) => r.name === name && r.kind === restricted)
    return found && { id: found.person, name }
  }

  /**
   * Anyone who may read a room reports one of its messages to its moderators, with a reason (at
   * most 200 characters): 201, or 200 when they had reported it already and it is still open.
   * Bounded per person (REPORTS_PER_HOUR). Nobody but the moderators sees who reported what.
   */
  async report(member: Member, name: string, id: number, reason: unknown): Promise<{ ok: true; created: boolean } | RoomRefusal> {
    const room = await this.access(name, member)
    if (!(room instanceof Room)) return room
    if (!member.id) return { ok: false, status: 403, message: 'Sign in to report a message.' }
    if ((await this.store.rooms.get(name))?.visibility === 'direct') return { ok: false, status: 403, message: 'A direct room has no moderators to report to.' }
    const why = reason === undefined ? '' : reason
    if (typeof why !== 'string' || why.length > 200) return { ok: false, status: 400, message: 'reason is at most 200 characters.' }
    const found = await room.messageAt(id)
    if (!found || found.stored.event.deleted) return { ok: false, status: 404, message: `There is no message ${id} in this room.` }
    if ((await this.reportGuard.take(memberKey(member))) > 0) return { ok: false, status: 429, message: 'Too many reports for now: try again later.' }
    const created = await this.store.rooms.report(name, { ref: id, reporter: memberKey(member), name: member.name, reason: why.trim(), at: Date.now() })
    return { ok: true, created }
  }

  /** A room's open reports for its moderators, a message at a time (its author and text, then who reported it and why), oldest first. */
  async reports(member: Member, name: string): Promise<{ ok: true; reports: OpenReport[] } | RoomRefusal> {
    const room = await this.access(name, member)
    if (!(room instanceof Room)) return room
    if (!(await this.hasModeratorRank(name, member))) return { ok: false, status: 403, message: "Only the room's moderators see its reports." }
    const byMessage = new Map<number, OpenReport>()
    for (const r of await this.store.rooms.reports(name, 500)) {
      let entry = byMessage.get(r.ref)
      if (!entry) {
        const found = await room.messageAt(r.ref)
        const event = found?.stored.event
        byMessage.set(r.ref, (entry = { id: r.ref, user: event?.user ?? '', text: event?.deleted ? undefined : event?.text, reports: [] }))
      }
      entry.reports.push({ user: r.name, reason: r.reason, at: r.at })
    }
    return { ok: true, reports: [...byMessage.values()] }
  }

  /** The open reports of every room this person moderates (the lobby's for operators), in one list: rooms with none are left out. */
  async reportsOfMine(member: Member): Promise<{ room: string; reports: OpenReport[] }[]> {
    const out: { room: string; reports: OpenReport[] }[] = []
    const names = [LOBBY, ...(await this.store.rooms.visibleTo(member.id ?? '')).map((r) => r.name).filter((name) => name !== LOBBY)]
    for (const name of names) {
      // Asked of the store first, so no room is loaded for this unless it has a report.
      if ((await this.store.rooms.reports(name, 1)).length === 0 || !(await this.moderates(name, member))) continue
      const found = await this.reports(member, name)
      if (found.ok && found.reports.length > 0) out.push({ room: name, reports: found.reports })
    }
    return out
  }

  /** A moderator dismisses the open reports of a message (nothing to do about it): its reporters are told it was handled. */
  async dismissReports(member: Member, name: string, id: number): Promise<{ ok: true; handled: number } | RoomRefusal> {
    const room = await this.access(name, member)
    if (!(room instanceof Room)) return room
    if (!(await this.hasModeratorRank(name, member))) return { ok: false, status: 403, message: "Only the room's moderators handle its reports." }
    return { ok: true, handled: await this.handleReports(member, name, id, 'dismissed') }
  }

  /** Marks a message's open reports handled and tells each reporter on their stream (`handled`). */
  private async handleReports(member: Member, name: string, id: number, outcome: string): Promise<number> {
    const handled = await this.store.rooms.handleReports(name, id, member.name, outcome, Date.now())
    await Promise.all(handled.map((r) => this.tell(r.reporter, { kind: 'handled', room: name, at: id, user: member.name })))
    return handled.length
  }

  /** Moves the person's read marker in the room forward (their other devices hear of it on their stream). */
  async markRead(member: Member, name: string, id: number): Promise<void> {
    if (!member.id) return
    const before = await this.store.rooms.readMarker(name, member.id)
    await this.store.rooms.markRead(name, member.id, id)
    if (id > before) await this.tell(member.id, { kind: 'read', room: name, at: id, user: member.name })
  }

  /** The default room (the Revel sample's one room), loaded at start. */
  get lobby(): Room {
    if (!this.lobbyRoom) throw new Error('the chatroom has not started')
    return this.lobbyRoom
  }

  /** The sessions the store keeps (the cookie holds only their id). */
  get sessions(): SessionStore {
    return this.store.sessions
  }

  /** The registered names the store keeps (the chatroom itself never reads them). */
  get accounts(): AccountStore {
    return this.store.accounts
  }

  /** What the rooms are: names, who may read them, members. */
  get roomStore(): RoomStore {
    return this.store.rooms
  }

  /** The files sent in messages (every process reads the same). */
  get files(): FileStore {
    return this.store.files
  }

  /** Told when a session was signed out on any process (set by the session plugin). */
  onRevoked: ((hash: string) => void) | undefined

  /** Tells every process that a session was signed out. */
  revoke(hash: string): void {
    this.bus.revoke(hash)
  }

  /**
   * Claims the user's name (by its look-alike skeleton) for them: at sign-in, on entering,
   * and while they stay. False when someone else holds it.
   */
  async claimName(member: Member): Promise<boolean> {
    if (!member.id) return true
    return this.bus.names.claim(skeleton(member.name), member.id, NAME_CLAIM_MS)
  }

  /** Whether events can be published now (the store and the bus answer): known within a second, whatever they do. */
  async ready(): Promise<boolean> {
    const answers = (check: () => Promise<boolean>) => deadline(check(), READY_MS, 'a backend').catch(() => false)
    const [store, bus] = await Promise.all([answers(() => this.store.ready()), answers(() => this.bus.ready())])
    return store && bus
  }

  /**
   * The user left: one page of theirs, one transport, or everywhere (sign-out), in every room
   * on this node. Resolves once the leaves are committed.
   */
  async leave(member: Member, transport?: string, tab?: string): Promise<void> {
    // A page closed, or signed out: their presence goes with it (leaving one transport is a fallback, not going away).
    if (transport === undefined) this.people.drop(member, tab)
    await Promise.all([...this.rooms.values()].map((room) => room.leave(member, transport, tab)))
  }

  /** Listeners on this node, in every room. */
  get subscriberCount(): number {
    let n = 0
    for (const room of this.rooms.values()) n += room.subscriberCount
    return n
  }

  /** Listeners on this node waiting in wait() (long polls), in every room. Counted when scraped. */
  get waitingCount(): number {
    let n = 0
    for (const room of this.rooms.values()) n += room.waitingCount
    return n
  }

  /**
   * Shutdown, before the server stops accepting: every subscription ends (long polls answer,
   * sockets close) and this node lets go of everyone it holds, so nobody is left listed.
   */
  async endSubscriptions(): Promise<void> {
    await Promise.all([...this.rooms.values()].map((room) => room.endSubscriptions()))
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const timer of this.timers) clearInterval(timer)
    await Promise.all([...this.rooms.values()].map((room) => room.close()))
    await this.people.close(!this.bus.shared).catch((error: unknown) => this.options.onError?.(error, 'could not let go of presence'))
    await this.bus.close()
    await this.store.close()
  }

  // The lobby's API, as the one room's was: the `/…/room…` routes, tests and the benchmark use it.

  /** Who is online in the lobby (per user across tabs and transports). */
  get presence(): Presence {
    return this.lobby.presence
  }
  get epoch(): string {
    return this.lobby.epoch
  }
  get lastId(): number {
    return this.lobby.lastId
  }
  enter(member: Member, transport: string, options: EnterOptions = {}): Promise<Entered> {
    return this.lobby.enter(member, transport, options)
  }
  say(member: Member, text: unknown, transport?: string, clientId?: unknown, reply?: ReplyAsked): Promise<Said> {
    return this.lobby.say(member, text, transport, clientId, reply)
  }
  renew(member: Member, transport: string, tab?: string): Promise<void> {
    return this.lobby.renew(member, transport, tab)
  }
  typing(member: Member, transport?: string): void {
    this.lobby.typing(member, transport)
  }
  typingNow(self?: string): string[] {
    return this.lobby.typingNow(self)
  }
  archive(lastReceived = 0): StoredEvent[] {
    return this.lobby.archive(lastReceived)
  }
  history(before: number, limit: number): Promise<StoredEvent[]> {
    return this.lobby.history(before, limit)
  }
  subscribe(lastReceived?: number, options: SubscribeOptions & { backlog?: StoredEvent[]; replayOnly?: boolean } = {}): Subscription {
    return this.lobby.subscribe(lastReceived, options)
  }
  join(user: string, avatar?: string, via?: string, guest?: true): Promise<StoredEvent> {
    return this.lobby.join(user, avatar, via, guest)
  }
  left(user: string, avatar?: string, via?: string, guest?: true): Promise<StoredEvent> {
    return this.lobby.left(user, avatar, via, guest)
  }
  post(user: string, text: string, avatar?: string, via?: string, guest?: true): Promise<StoredEvent> {
    return this.lobby.post(user, text, avatar, via, guest)
  }
  roster(limit?: number): Roster {
    return this.lobby.roster(limit)
  }
  presentNames(): string[] {
    return this.lobby.presentNames()
  }
}
