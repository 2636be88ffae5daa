import { checkClientId, checkMessageText, checkReaction, checkReply, type ReplyAsked } from '../validation.js'
import type { Bus, PresenceRoom } from './bus/bus.js'
import { applyChange, createPresenceSignal, createTypingSignal, TYPING_SHOWS_MS, withoutText, withReaction, withReplyCount, withText, type Event, type ModerationAction, type EventDraft, type FileRef, type Signal, type StoredEvent } from './event.js'
import type { FloodGuard } from './flood.js'
import type { Follower } from './follower.js'
import type { People } from './person.js'
import { noMap, noSet, owned, shrunk } from './empty.js'
import { isGuest, memberKey, Presence, type Member, type PresenceOptions, type Roster } from './presence.js'
import { LOBBY, type FileStore, type RoomLog, type RoomStore } from './store/store.js'
import { removalMessage, Subscription, type Removal, type SubscribeOptions, type SubscriptionOwner } from './subscription.js'

/** How each room behaves (the chatroom's options, handed to every room). */
export interface RoomOptions {
  /** Events kept in memory for replay (the replay window); older ones are read from the store. */
  archiveSize: number
  /** Live events a subscriber may have queued before it is dropped as lagged. */
  subscriberQueue: number
  /** A user's typing signals go out at most once per this many milliseconds (pages send every 2 s). */
  typingThrottleMs?: number
  /** Longest message, in characters, after trimming. */
  maxMessageLength?: number
  /** Messages one user may send per window, across all their connections. */
  flood?: { limit: number; windowMs: number }
  presence?: {
    /** How long after a user's last connection goes their leave is published. */
    graceMs: number
    /** With a shared bus: how long a dead process's users linger. */
    ttlMs: number
    /** Transports without a connection to hold (refresh, long polling): each request keeps the user for this long. */
    leaseMs: Record<string, number>
    /** A page that was just loaded holds the user this long while it opens its connection (default 15 s). */
    pageLeaseMs?: number
    /** Joins one user may cause per minute before their leaves are held back. */
    churnLimit?: number
    /** After a restart (one process): how long the people the log shows present stay listed, waiting for them to reconnect (default 30 s). */
    restartGraceMs?: number
  }
  /** A cursor further behind than this many events starts over instead of being replayed. */
  resumeMax?: number
  /** Bytes of events one resume reads from the store at most (see EnterOptions.paged). */
  replayMaxBytes?: number
  /** People listed by name in a roster (the rest are counted). */
  rosterLimit?: number
  /** Subscriptions one user may hold at once per transport (sockets, waiting polls); the newest over it is refused. */
  perUser?: Record<string, number>
  /** Pruning of the log, in the background (0: no bound). */
  retention?: { maxEvents: number; maxAgeMs: number; everyMs: number }
  /** With a shared bus: how often this process checks the store for events the bus did not bring. */
  catchUpMs?: number
  /** Told what went wrong where a caller only sees an outcome (a store that cannot be reached). */
  onError?: (error: unknown, what: string) => void
}

/** Why enter() refused a cursor; every transport answers each at once and says to start over. */
export type Refusal =
  /** The cursor is from another log (the store was created anew). */
  | 'epoch'
  /** The cursor is ahead of the log. */
  | 'ahead'
  /** The cursor is further behind than RESUME_MAX_EVENTS, or its events were pruned. */
  | 'behind'
  /** The store could not be read: try again shortly. */
  | 'unavailable'
  /** Someone else present holds the user's name (they were away long enough to lose it). */
  | 'name'
  /** The user already holds as many connections of this transport as one person may. */
  | 'tooMany'
  /** A moderator banned the user from this room (the registry says why before it comes to this). */
  | 'banned'

/** What enter() answers: a subscription, or why not (with where the room stands). */
export type Entered =
  | { ok: true; subscription: Subscription }
  | { ok: false; refused: Refusal; epoch: string; lastId: number }

export interface EnterOptions {
  /** The id of the last event the client has; absent: the replay window. */
  lastReceived?: number | undefined
  /** The epoch of the log that cursor is from; absent: not checked (curl). */
  epoch?: string | undefined
  /** Also deliver others' typing signals. */
  typing?: boolean | undefined
  /** Which page of the user this is (a random id the page got when it loaded): its leave ends only its own. */
  tab?: string | undefined
  /** Which page of the person this connection is, for their presence (a page says when it is away); default `tab`, else the transport. */
  page?: string | undefined
  /**
   * The reader answers once and comes back with its new cursor (long polling): a replay past
   * replayMaxBytes is handed over as one page (the subscription then has no live events).
   * Otherwise such a cursor is refused as 'behind'.
   */
  paged?: boolean | undefined
  /** A reader that is not someone present (a person's own log, read by their stream): no presence, no name claim, no per-user cap. */
  quiet?: boolean | undefined
  /**
   * A room followed by the person's stream (not the lobby): read in the background, so nobody is
   * present in it for that (their presence is the person's, held once by their stream), no name
   * claim, no per-user cap; still counted as their connection, so a leave ends it at once.
   */
  following?: boolean | undefined
  /** With `quiet`: this reader holds its person present (the person's stream: one hold whatever the number of rooms). */
  holdsPerson?: boolean | undefined
}

/** What say() answers; each transport maps these to its own errors in app/transport/protocol.ts. */
export type Said =
  /** Committed; `duplicate`: the clientId was sent before, and `stored` is that first event (nothing new was written). */
  | { outcome: 'ok'; stored: StoredEvent; duplicate?: true }
  | { outcome: 'invalid'; message: string }
  /** An edit or a deletion of a message that is not in the room (or was deleted). */
  | { outcome: 'missing'; message: string }
  /** An edit or a deletion of someone else's message. */
  | { outcome: 'forbidden'; message: string }
  | { outcome: 'flooded'; message: string; retryAfter: number }
  | { outcome: 'unavailable'; message: string }

/** A say() that did not go through. */
export type SayRefusal = Exclude<Said, { outcome: 'ok' }>

/** A write into a members-only room by someone who is not (or no longer) a member: the room does not exist for them. */
const NOT_A_MEMBER: SayRefusal = { outcome: 'missing', message: 'No such room.' }

/** Events fetched from the store at a time when filling a gap. */
const PAGE = 1000
/** Events fetched at a time for a resume (smaller: a resume is bounded in bytes, and many may run at once). */
const REPLAY_PAGE = 200

interface Pending {
  draft: EventDraft
  resolve: (stored: StoredEvent) => void
  reject: (error: unknown) => void
}

/** What every room of a chatroom shares: the flood limit, the counters, name claims. */
export interface RoomShared {
  /** The per-user message limit, across every room and connection. */
  flood: FloodGuard
  /** Counts for /metrics, summed over the rooms. */
  stats: { events: number; deliveries: number; lagged: number; gaps: number; repeats: number }
  /** Claims a member's name among the people present (the chatroom's name claims). */
  claimName(member: Member): Promise<boolean>
  /** Told when a member's last presence in this room ends (their name may be let go). */
  onGone?(member: Member): void
  /** Presence of a person across rooms, pages and processes: every connection and poll in any room counts. */
  people?: People
  /** Slow mode's limit (one message per `seconds` per person in a room): shared by every process as the flood limit is. */
  slowGuard?(seconds: number): FloodGuard
  /** Whether slow mode leaves this person be here (the room's moderators, its owner, the operators). */
  unhurried?(room: string, member: Member): Promise<boolean>
  /** The store's files: a deleted message's goes with it. */
  files?: FileStore
  /** Every room's presence settings and hooks (made once by the chatroom, not per room). */
  presence: PresenceOptions
}

/** Different reactions one message takes, and reactions one person may put on one message. */
export const MAX_REACTION_KINDS = 20
export const MAX_OWN_REACTIONS = 10

/** Who has a room other than the lobby open: a signal to its readers on every process, never a line of its log. */
class SignalPresence implements PresenceRoom {
  constructor(
    private readonly bus: Bus,
    private readonly room: string,
  ) {}

  async join(user: string, avatar?: string): Promise<void> {
    this.bus.signal(createPresenceSignal(user, 'online', avatar), this.room)
  }

  async left(user: string): Promise<void> {
    this.bus.signal(createPresenceSignal(user, 'offline'), this.room)
  }
}

/**
 * One room on this node: its log's replay window as this node has seen it, who listens here,
 * who is present, and its commit queue. The log (ids, history, the epoch) is the store's; the
 * bus carries committed events between processes. Transports use its session API: enter (then
 * take / wait / cancel / leave on the subscription), say, typing, leave.
 */
export class Room implements SubscriptionOwner {
  private readonly log: RoomLog
  private readonly bus: Bus
  private readonly options: RoomOptions
  private readonly shared: RoomShared
  /** Who is online, per user across their connections and transports. */
  readonly presence: Presence
  /** Whether presence writes join and leave lines (the lobby) or the lines are membership (every other room). */
  private readonly linesOfPresence: boolean
  private subscriptions = noSet<Subscription>()
  /** Readers of many rooms that read this one in the background (the person's stream): see Follower. */
  private followers = noSet<Follower>()
  /**
   * A private or direct room's members, by name: only they write here, and a member who leaves
   * stops reading here at once. Kept from the log's join and leave lines after `guardFrom` (the
   * store had the ones before), so every process holds the same fact as soon as its events reach
   * it, by the bus or, after a miss, from the store. Undefined: anyone who may read may write
   * (a public room, the lobby, a person's own log).
   */
  private members: Set<string> | undefined
  private guardFrom = 0
  /**
   * Who may read but not write here (a mute), by person key (the store's record), and by name from
   * the moment a moderation event names them until the store is read again (so every process
   * knows at once): until when (Infinity: for good), and why. Re-read after every moderation event.
   */
  private muted = noMap<string, { until: number; reason: string }>()
  /** Who may neither read nor write here (a ban), kept as `muted` is; with who banned them, for the message. */
  private banned = noMap<string, { until: number; reason: string; by: string }>()
  /** Slow mode: one message per this many seconds per person (0: off); kept from the store at load, then from the log's moderation events. */
  slow = 0
  /** Closed to new members (joins refused). */
  closedToNew = false
  /** Where its bans and mutes are read (the store's rooms; no closure of its own per room). */
  private restrictionsOf: Pick<RoomStore, 'restrictions'> | undefined
  private restrictionsRead = 0
  private recent: StoredEvent[] = []
  /** The first start(): entering waits for it, so nobody reads a window still being loaded. */
  private starting: Promise<void> | undefined
  private closed = false
  /** The newest id this node has delivered (the window may be empty). */
  private last = 0
  /** Folded from join/leave events as they are delivered, so it always matches lastId. */
  private present = noMap<string, string | undefined>()
  private lastTyping = noMap<string, number>()
  /** Counts for /metrics (shared by every room): events this node saw, deliveries, readers dropped as lagged. */
  private readonly stats: RoomShared['stats']
  /** While missing events are fetched, newer arrivals wait here. */
  private filling: Promise<void> | undefined
  private held: StoredEvent[] = []
  /** Subscriptions that got something this tick; woken together by one setImmediate. */
  private waking: Subscription[] = []
  /** Drafts waiting for the next group commit, and whether one is in flight. */
  private queue: Pending[] = []
  private committing = false
  /** Told when the queue is empty and nothing is in flight. */
  private idleWaiters: (() => void)[] = []
  /**
   * Each user's open subscriptions (their transport and page in them): for the per-user caps, and
   * so one page's leave ends just its own. One subscription alone is kept as itself (most people
   * hold one per room), a Set past that.
   */
  private connections = noMap<string, Subscription | Set<Subscription>>()
  /** Who typed lately (name -> until when it shows), for pages that do not wait for signals (refresh). */
  private typists = noMap<string, number>()
  /** When the room was last used on this node (an event, a reader coming or going, a request): the registry unloads it once idle long enough. */
  private usedAt = Date.now()
  /** Let go of by the registry (idle): a reference kept past that takes no readers and no writes, as another Room serves the name. */
  private unloaded = false

  constructor(
    readonly name: string,
    log: RoomLog,
    bus: Bus,
    options: RoomOptions,
    shared: RoomShared,
  ) {
    this.log = log
    this.bus = bus
    this.options = options
    this.shared = shared
    this.stats = shared.stats
    const presence = options.presence ?? { graceMs: 5000, ttlMs: 15_000, leaseMs: {} }
    // Only the lobby (the Revel sample's room) writes who comes and goes; elsewhere the log says
    // membership, and who has the room open is a signal to its readers on every process.
    this.linesOfPresence = name === LOBBY
    const here: PresenceRoom = this.linesOfPresence ? this : new SignalPresence(bus, name)
    this.presence = new Presence(bus.presenceStore(here, presence.ttlMs, name), shared.presence)
  }

  /**
   * Loads the replay window and starts presence. With a bus of its own, users the log still
   * shows present (the process was killed) are published as gone.
   */
  start(): Promise<void> {
    this.starting ??= this.load()
    return this.starting
  }

  private async load(): Promise<void> {
    const size = this.options.archiveSize
    const last = await this.log.lastId()
    const window = await this.log.after(Math.max(0, last - size), size)
    // The window read can reach past `last` (more was committed meanwhile), and what the bus
    // delivered while it loaded can overlap it: joined by id, so the window stays consecutive.
    const top = window.at(-1)?.event.id ?? last
    const newer = this.recent.filter((s) => s.event.id > top)
    this.recent = (newer.length === 0 || newer[0]!.event.id === top + 1 ? [...window, ...newer] : newer).slice(-size)
    this.last = Math.max(last, top, this.last)
    this.checkWindow()
    // Membership lines the store may not have had when the registry read it.
    if (this.members) for (const { event } of window) if (event.id > this.guardFrom) this.foldMembership(event)
    if (this.bus.roster) {
      for (const { name, avatar } of await this.bus.roster(this.name)) (this.present = owned(this.present)).set(name, avatar)
    } else if (this.linesOfPresence) {
      const stale = new Map<string, Event>()
      for (const { event } of window) {
        if (event.type === 'join') stale.set(event.user, event)
        else if (event.type === 'leave') stale.delete(event.user)
      }
      for (const [user, join] of stale) (this.present = owned(this.present)).set(user, join.avatar)
      // The process before this one went away with them here (a restart, a crash): they stay
      // listed a while with no line, and whoever reconnects meanwhile just goes on.
      const members = [...stale].map(([name, join]): Member => {
        const member: Member = { name, avatar: join.avatar, provider: join.via === undefined ? undefined : { name: join.via } }
        // Their leave, if it comes, is marked as their join was (isGuest: an id without an account).
        return join.guest ? { ...member, id: `restart:${name}` } : member
      })
      this.presence.adopt(members, this.options.presence?.restartGraceMs ?? 30_000)
    }
    this.presence.start()
  }

  /** The epoch of the room's log: a cursor is (epoch, id). */
  get epoch(): string {
    return this.log.epoch
  }

  /** The id of the newest event this node has seen (0 before the first). */
  get lastId(): number {
    return this.last
  }

  /** Listeners on this node. */
  get subscriberCount(): number {
    return this.subscriptions.size + this.followers.size
  }

  /** Listeners on this node waiting in wait() (long polls). Counted when scraped. */
  get waitingCount(): number {
    let n = 0
    for (const subscription of this.subscriptions) if (subscription.waiting) n++
    return n
  }

  /**
   * A user comes in through a transport (a socket opens, a poll arrives, a page loads): the
   * cursor is checked against the log (its epoch, ahead, too far behind), the user is held
   * present until the subscription ends (and, for transports without a connection, a while
   * longer by a lease), and the subscription hands over what follows the cursor (from the
   * store when it is older than the replay window), then live events, none lost or doubled.
   * The caller takes or waits, then cancels (or leaves) on every path.
   */
  async enter(member: Member, transport: string, options: EnterOptions = {}): Promise<Entered> {
    try {
      return await this.tryEnter(member, transport, options)
    } catch (error) {
      this.options.onError?.(error, 'could not read the log to resume a cursor')
      return { ok: false, refused: 'unavailable', epoch: this.epoch, lastId: this.last }
    }
  }

  private async tryEnter(member: Member, transport: string, options: EnterOptions): Promise<Entered> {
    if (this.starting) await this.starting
    const refuse = (refused: Refusal): Entered => ({ ok: false, refused, epoch: this.epoch, lastId: this.last })
    // Held past its unloading (very late): the reader comes back and gets the room as loaded now.
    if (this.unloaded) return refuse('unavailable')
    let { lastReceived } = options
    const cursor = lastReceived
    if (options.epoch !== undefined && options.epoch !== this.epoch) return refuse('epoch')
    if (this.bannedNow(member)) return refuse('banned')
    const quiet = options.quiet === true
    // In the background: not present here (see EnterOptions.following); the lobby's presence is everyone's.
    const light = quiet || (options.following === true && !this.linesOfPresence)
    const arriving = !light && !this.presence.holds(member)
    // Someone present already holds their name (renewed while they stay): asked only on arrival.
    if (arriving && !(await this.shared.claimName(member))) return refuse('name')
    const key = memberKey(member)
    const cap = this.options.perUser?.[transport]
    if (!light && cap !== undefined && this.heldBy(key, transport) >= cap) return refuse('tooMany')
    // Another process may have given out ids this one has not seen yet: skip them when they come.
    let skipThrough = 0
    if (lastReceived !== undefined && lastReceived > this.last) {
      if (options.epoch === undefined || lastReceived > (await this.log.lastId())) return refuse('ahead')
      // This node may have caught up while the store answered: then the cursor is simply behind.
      if (lastReceived > this.last) {
        skipThrough = lastReceived
        lastReceived = this.last
      }
    }
    const backlog: StoredEvent[] = []
    let replayOnly = false
    if (lastReceived !== undefined) {
      if (this.last - lastReceived > (this.options.resumeMax ?? 5000)) return refuse('behind')
      // Older than the replay window: read up to it from the store, then join it in one step;
      // bounded in bytes (a long poll gets one page of it, others start over).
      let bytes = 0
      const budget = this.options.replayMaxBytes ?? Infinity
      while (lastReceived < this.windowStart() - 1 && !replayOnly) {
        const page = await this.log.after(lastReceived, Math.min(REPLAY_PAGE, this.windowStart() - 1 - lastReceived))
        if (page[0]?.event.id !== lastReceived + 1) return refuse('behind')
        for (const stored of page) {
          // A hole inside the page (the store lost those events): the cursor cannot be resumed.
          if (stored.event.id !== (backlog.at(-1)?.event.id ?? lastReceived) + 1) return refuse('behind')
          if (bytes > 0 && bytes + stored.json.length > budget) {
            if (!options.paged) return refuse('behind')
            replayOnly = true
            break
          }
          bytes += stored.json.length
          backlog.push(stored)
        }
        lastReceived = backlog.at(-1)!.event.id
      }
    }
    // Subscribed first, so the user's own join (if this is their arrival) comes after the backlog.
    // A light reader (a room followed in the background) has no closures of its own: the room
    // forgets it in release(); the others let go of presence when they end.
    let release = (): void => {}
    const { tab } = options
    const holdsPresence = !light || options.holdsPerson === true
    const subscription = this.subscribe(lastReceived, {
      backlog,
      replayOnly,
      skipThrough,
      cursor,
      typing: options.typing ? { self: member.name } : undefined,
      onEnd: holdsPresence
        ? () => {
            if (!light) void this.renew(member, transport, tab)
            release()
          }
        : undefined,
      onLeave: light ? undefined : () => this.presence.drop(member, transport, tab),
    })
    // Ended at once (it would have been handed an event twice): the reader resumes from its cursor.
    if (subscription.closed) return { ok: true, subscription }
    // A quiet reader (a person's own log) is nobody present here and no connection counted; the
    // person's stream holds its person present across everything it follows.
    if (quiet) {
      if (options.holdsPerson) release = this.shared.people?.hold(member, options.page ?? tab ?? transport) ?? release
      return { ok: true, subscription }
    }
    subscription.holder = key
    subscription.who = member.name
    subscription.transport = transport
    subscription.tab = tab
    const mine = this.connections.get(key)
    if (mine === undefined) (this.connections = owned(this.connections)).set(key, subscription)
    else if (mine instanceof Set) mine.add(subscription)
    else this.connections.set(key, new Set([mine, subscription]))
    if (light) return { ok: true, subscription }
    void this.renew(member, transport, tab)
    const releaseRoom = this.presence.hold(member)
    const releasePerson = this.shared.people?.hold(member, options.page ?? tab ?? transport)
    release = () => {
      releaseRoom()
      releasePerson?.()
    }
    // Their own join, on arrival, is committed before they are answered, so the page they get
    // already lists them; a poll of someone already here does not wait on others' commits.
    if (arriving) await this.idle()
    return { ok: true, subscription }
  }

  /**
   * A user says something: the text is checked, the user's flood limit applied (shared by all
   * their connections), and the message committed to the log: acknowledged only then.
   */
  async say(member: Member, text: unknown, transport?: string, clientId?: unknown, reply?: ReplyAsked, file?: FileRef): Promise<Said> {
    if (!this.admits(member)) return NOT_A_MEMBER
    const muted = this.mutedNow(member)
    if (muted) return muted
    if (transport !== undefined) void this.renew(member, transport)
    // A file's message may have no words (its caption is optional).
    const captionless = file !== undefined && (text === undefined || text === null || (typeof text === 'string' && text.trim() === ''))
    const checked = captionless ? { text: undefined } : checkMessageText(text, this.options.maxMessageLength ?? 2000)
    if ('error' in checked) return { outcome: 'invalid', message: checked.error }
    const id = checkClientId(clientId)
    if (typeof id === 'object') return { outcome: 'invalid', message: id.error }
    const replying = checkReply(reply)
    if ('error' in replying) return { outcome: 'invalid', message: replying.error }
    if (this.slow > 0) {
      const slowed = await this.slowed(member)
      if (slowed) return slowed
    }
    return this.limited(member, 'could not publish a message', async () => {
      // A reply hangs in the thread of the message it answers (that message's own thread, if it is a reply).
      let thread: number | undefined
      let replyToUser: string | undefined
      if (replying.replyTo !== undefined) {
        const answered = await this.log.message(replying.replyTo)
        if (!answered || answered.stored.event.deleted) return { outcome: 'missing', message: `There is no message ${replying.replyTo} in this room${answered ? ' any more' : ''} to reply to.` }
        thread = answered.stored.event.thread ?? replying.replyTo
        replyToUser = answered.stored.event.user
      }
      // Asked again as it is queued: a ban, mute or removal decided here meanwhile is queued before it (see moderation()).
      const stopped = this.stopped(member)
      if (stopped) return stopped
      const draft: EventDraft = { ...this.draftOf(member, 'message'), clientId: id }
      if (checked.text !== undefined) draft.text = checked.text
      if (file !== undefined) draft.file = file
      if (thread !== undefined) Object.assign(draft, { replyTo: replying.replyTo, thread, replyToUser }, replying.alsoToRoom && { alsoToRoom: true })
      const stored = await this.publish(draft)
      return stored.duplicate ? { outcome: 'ok', stored, duplicate: true } : { outcome: 'ok', stored }
    })
  }

  /** The user edits their own message `id` (an `edit` event, and the message's text replaced in the store). */
  async edit(member: Member, id: number, text: unknown, transport?: string): Promise<Said> {
    if (!this.admits(member)) return NOT_A_MEMBER
    const muted = this.mutedNow(member)
    if (muted) return muted
    if (transport !== undefined) void this.renew(member, transport)
    const checked = checkMessageText(text, this.options.maxMessageLength ?? 2000)
    if ('error' in checked) return { outcome: 'invalid', message: checked.error }
    return this.change(member, id, 'edit', checked.text)
  }

  /**
   * The user reacts to message `id` with an emoji (`add`, or `remove` theirs): a `reaction` event,
   * and the message's reactions as they stand in the store. Adding what they already added (or
   * taking back what they have not) writes nothing: the answer is the message as it stands, as a duplicate.
   */
  async react(member: Member, id: number, emoji: unknown, action: unknown, transport?: string): Promise<Said> {
    if (!this.admits(member)) return NOT_A_MEMBER
    const muted = this.mutedNow(member)
    if (muted) return muted
    if (transport !== undefined) void this.renew(member, transport)
    const checked = checkReaction(emoji, action)
    if ('error' in checked) return { outcome: 'invalid', message: checked.error }
    return this.limited(member, 'could not publish a reaction', async () => {
      const found = Number.isSafeInteger(id) && id > 0 ? await this.log.message(id) : undefined
      if (!found || found.stored.event.deleted) return { outcome: 'missing', message: `There is no message ${id} in this room${found ? ' any more' : ''}.` }
      const stopped = this.stopped(member)
      if (stopped) return stopped
      // A message takes so many kinds of reaction, and a person so many of their own on it (what a page draws stays small).
      const reactions = found.stored.event.reactions ?? []
      if (checked.action === 'add' && !reactions.some((r) => r.emoji === checked.emoji)) {
        if (reactions.length >= MAX_REACTION_KINDS) return { outcome: 'invalid', message: `A message takes at most ${MAX_REACTION_KINDS} different reactions: add one of those already on it.` }
      }
      if (checked.action === 'add' && reactions.filter((r) => r.users.includes(member.name)).length >= MAX_OWN_REACTIONS && !reactions.some((r) => r.emoji === checked.emoji && r.users.includes(member.name))) {
        return { outcome: 'invalid', message: `At most ${MAX_OWN_REACTIONS} reactions of yours on one message: take one back first.` }
      }
      const stored = await this.publish({ ...this.draftOf(member, 'reaction'), ref: id, emoji: checked.emoji, action: checked.action })
      if (!stored.duplicate) return { outcome: 'ok', stored }
      const now = await this.log.message(id)
      return { outcome: 'ok', stored: now?.stored ?? stored, duplicate: true }
    })
  }

  /** The user deletes their own message `id` (a `delete` event; its text is removed from the store). */
  remove(member: Member, id: number, transport?: string): Promise<Said> {
    if (!this.admits(member)) return Promise.resolve(NOT_A_MEMBER)
    const banned = this.bannedNow(member)
    if (banned) return Promise.resolve({ outcome: 'forbidden', message: removalMessage(banned) })
    if (transport !== undefined) void this.renew(member, transport)
    return this.change(member, id, 'delete')
  }

  private change(member: Member, ref: number, type: 'edit' | 'delete', text?: string): Promise<Said> {
    return this.limited(member, `could not publish an ${type}`, async () => {
      const found = Number.isSafeInteger(ref) && ref > 0 ? await this.log.message(ref) : undefined
      if (!found || found.stored.event.deleted) return { outcome: 'missing', message: `There is no message ${ref} in this room${found ? ' any more' : ''}.` }
      if (found.sender === undefined || found.sender !== memberKey(member)) {
        return { outcome: 'forbidden', message: 'You can only edit or delete your own messages.' }
      }
      const stopped = this.stopped(member, type === 'delete')
      if (stopped) return stopped
      const draft: EventDraft = { ...this.draftOf(member, type), ref }
      if (text !== undefined) draft.text = text
      const stored = await this.publish(draft)
      if (type === 'delete') this.dropFile(found.stored.event)
      return { outcome: 'ok', stored }
    })
  }

  /**
   * A moderator deletes someone's message (their right is checked by the registry): a `delete`
   * event by them (every reader applies it as the author's own deletion would be), then a
   * `moderation` event saying who, whose and why.
   */
  deleteAsModerator(moderator: Member, id: number, reason: string): Promise<Said> {
    return this.limited(moderator, 'could not delete a message', async () => {
      const found = Number.isSafeInteger(id) && id > 0 ? await this.log.message(id) : undefined
      if (!found || found.stored.event.type !== 'message' || found.stored.event.deleted) return { outcome: 'missing', message: `There is no message ${id} in this room${found ? ' any more' : ''}.` }
      // Its sender's key, so the store's rule (a message is changed by its sender's events) applies it.
      const deleted = this.publish({ ...this.draftOf(moderator, 'delete'), ref: id, sender: found.sender })
      const note = this.publish({ type: 'moderation', user: moderator.name, action: 'delete', ref: id, target: found.stored.event.user, ...(reason && { reason }) })
      await deleted
      this.dropFile(found.stored.event)
      return { outcome: 'ok', stored: await note }
    })
  }

  /**
   * Slow mode: past one message per `slow` seconds, the wait left (as a flood's refusal: 429 with
   * Retry-After); moderators are not slowed. A limit that cannot be read lets the message go
   * (the flood limit still holds).
   */
  private async slowed(member: Member): Promise<Said | undefined> {
    const { slowGuard, unhurried } = this.shared
    if (!slowGuard) return undefined
    try {
      if (await unhurried?.(this.name, member)) return undefined
      const waitMs = await slowGuard(this.slow).take(`${this.name}\u0000${memberKey(member)}`)
      if (waitMs <= 0) return undefined
      const retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
      return { outcome: 'flooded', message: `Slow mode: one message every ${this.slow} s here. Try again in ${retryAfter} s.`, retryAfter }
    } catch (error) {
      this.options.onError?.(error, "could not read a room's slow mode")
      return undefined
    }
  }

  /** The room's rules as the store has them (the registry, at load). */
  setRules(rules: { slow?: number | undefined; closed?: true | undefined }): void {
    this.slow = rules.slow ?? 0
    this.closedToNew = rules.closed === true
  }

  /** A message of this room as the store has it now (undefined: none, or not a message), and its sender's key. */
  async messageAt(id: number): Promise<{ stored: StoredEvent; sender: string | undefined } | undefined> {
    const found = Number.isSafeInteger(id) && id > 0 ? await this.log.message(id) : undefined
    return found && found.stored.event.type === 'message' ? found : undefined
  }

  /**
   * Whether this person may send a file here now, asked before its bytes are read: a member, not
   * muted, within the flood limit (a file takes a token of its own, before its message takes
   * another, so a refused file is no free work). Undefined when they may; else why not.
   */
  async mayUpload(member: Member): Promise<SayRefusal | undefined> {
    if (!this.admits(member)) return NOT_A_MEMBER
    const muted = this.mutedNow(member)
    if (muted) return muted
    try {
      return await this.flooded(member)
    } catch (error) {
      this.options.onError?.(error, 'could not check a file')
      return { outcome: 'unavailable', message: 'The chat is unavailable right now; your file was not sent. Try again shortly.' }
    }
  }

  /** A deleted message's file leaves the store (the message says no more of it; every process serves from the store). */
  private dropFile(message: Event): void {
    const file = message.file
    if (file === undefined || !this.shared.files) return
    this.shared.files.remove(this.name, file.id).catch((error: unknown) => this.options.onError?.(error, "could not delete a deleted message's file"))
  }

  /** The replies in the thread of message `root` with id > after, oldest first (the store's). */
  thread(root: number, after: number, limit: number): Promise<StoredEvent[]> {
    return this.log.thread(root, after, limit)
  }

  /** The key of whoever of that name reads this room on this node (a guest is known by their session-bound key, not their name). */
  keyOf(name: string): string | undefined {
    for (const subscription of this.subscriptions) if (subscription.who === name) return subscription.holder
    for (const follower of this.followers) if (follower.name === name) return follower.holder
    return undefined
  }

  /** Why this person's write may not be queued now (no longer a member, banned, or muted unless `deleting` their own), or undefined. */
  private stopped(member: Member, deleting = false): Said | undefined {
    if (!this.admits(member)) return NOT_A_MEMBER
    if (!deleting) return this.mutedNow(member)
    const ban = this.bannedNow(member)
    return ban ? { outcome: 'forbidden', message: removalMessage(ban) } : undefined
  }

  /**
   * A moderation event in the log (its effect is already in the store): who did what to whom, and
   * why. A ban, mute or removal holds here from this moment: a write of theirs queued after it is
   * refused, so none of theirs follows it in this process's log (another process learns it from
   * the event, within its bus's delay).
   */
  moderation(moderator: Member, action: ModerationAction, target: string | undefined, reason: string, more: { until?: number | undefined; seconds?: number; topic?: string; title?: string } = {}): Promise<StoredEvent> {
    const { until, seconds, topic, title } = more
    if (target !== undefined && (action === 'ban' || action === 'kick')) this.members?.delete(target)
    if (target !== undefined && action === 'ban') (this.banned = owned(this.banned)).set(target, { until: until ?? Infinity, reason, by: moderator.name })
    if (target !== undefined && action === 'mute') (this.muted = owned(this.muted)).set(target, { until: until ?? Infinity, reason })
    return this.publish({
      type: 'moderation',
      user: moderator.name,
      action,
      ...(target !== undefined && { target }),
      ...(reason && { reason }),
      ...(until !== undefined && { until }),
      ...(seconds !== undefined && { seconds }),
      ...(topic !== undefined && { topic }),
      ...(title !== undefined && { title }),
    })
  }

  /** The user's events' common fields, with who sent them (their id: only they edit them; a resend is matched by it). */
  private draftOf(member: Member, type: EventDraft['type']): EventDraft {
    return { type, user: member.name, avatar: member.avatar, via: member.provider?.name, guest: isGuest(member), sender: memberKey(member) }
  }

  /** Takes one of the person's flood tokens: undefined when there was one, else the refusal saying when to try again. */
  private async flooded(member: Member): Promise<SayRefusal | undefined> {
    const waitMs = await this.shared.flood.take(memberKey(member))
    if (waitMs <= 0) return undefined
    const retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
    const { limit, windowMs } = this.options.flood ?? { limit: 20, windowMs: 10_000 }
    return { outcome: 'flooded', message: `Slow down: at most ${limit} messages per ${windowMs / 1000} s. Try again in ${retryAfter} s.`, retryAfter }
  }

  /** Runs a write under the user's flood limit (shared by all their connections); a store or limit out of reach is said plainly. */
  private async limited(member: Member, what: string, write: () => Promise<Said>): Promise<Said> {
    try {
      return (await this.flooded(member)) ?? (await write())
    } catch (error) {
      // The store (or the shared limit) is unreachable: say so plainly instead of hanging or pretending.
      this.options.onError?.(error, what)
      return { outcome: 'unavailable', message: 'The chat is unavailable right now; your message was not sent. Try again shortly.' }
    }
  }

  /**
   * The user left: one page of theirs (`tab`: the page's leave beacon or form), one transport
   * (a leave link without a page id), or the room (sign-out: neither). That page's connections
   * end at once (a socket is closed with 4001), and the leave is published at once unless
   * another page of theirs still holds them. Resolves once the leave is committed.
   */
  leave(member: Member, transport?: string, tab?: string): Promise<void> {
    const key = memberKey(member)
    for (const connection of this.connectionsOf(key)) {
      if (transport !== undefined && connection.transport !== transport) continue
      if (tab !== undefined && connection.tab !== tab) continue
      connection.leave()
    }
    for (const follower of this.followers) {
      if (follower.holder !== key || (transport !== undefined && follower.transport !== transport) || (tab !== undefined && follower.tab !== tab)) continue
      follower.end(this, 'left')
    }
    this.presence.drop(member, transport, tab)
    return this.idle()
  }

  /**
   * A request of a transport without a connection (refresh, long polling) keeps the user
   * present a while, and so does loading a page (until its connection opens). Resolves once
   * their join (if this was their arrival) is committed.
   */
  renew(member: Member, transport: string, tab?: string): Promise<void> {
    if (this.unloaded) return Promise.resolve()
    const presence = this.options.presence
    const lease = presence?.leaseMs[transport] ?? (tab ? (presence?.pageLeaseMs ?? 15_000) : undefined)
    if (lease) {
      this.presence.touch(member, transport, lease, tab)
      this.shared.people?.touch(member, transport, lease, tab)
    }
    return this.idle()
  }

  /** How many subscriptions of this transport the user holds open on this node. */
  private heldBy(key: string, transport: string): number {
    let held = 0
    for (const connection of this.connectionsOf(key)) if (connection.transport === transport) held++
    return held
  }

  /** The user's open subscriptions here, as a list of its own (leaving ends them as it goes). */
  private connectionsOf(key: string): Subscription[] {
    const mine = this.connections.get(key)
    return mine === undefined ? [] : mine instanceof Set ? [...mine] : [mine]
  }

  /** Who is typing now (their signal in the last few seconds), except `self`: for pages that fetch it. */
  typingNow(self?: string): string[] {
    const now = Date.now()
    const names: string[] = []
    for (const [name, until] of this.typists) {
      if (until <= now) this.typists.delete(name)
      else if (name !== self) names.push(name)
    }
    return names
  }

  /** The replay window after the cursor (all of it without one). */
  archive(lastReceived = 0): StoredEvent[] {
    this.checkWindow()
    // Ids are consecutive, so the cursor maps straight to an index.
    return this.recent.slice(Math.max(0, lastReceived - this.windowStart() + 1))
  }

  /** Up to `limit` events before id `before`, oldest first: from the window when it has them, else the store. */
  history(before: number, limit: number): Promise<StoredEvent[]> {
    before = Math.min(before, this.last + 1)
    const start = this.windowStart()
    if (before - limit >= start && before <= this.last + 1) return Promise.resolve(this.recent.slice(before - limit - start, before - start))
    return this.log.before(before, limit)
  }

  /**
   * The window after the cursor, then every live event, with nothing lost or doubled
   * between the two: both are taken in one synchronous step.
   */
  subscribe(lastReceived?: number, options: SubscribeOptions & { backlog?: StoredEvent[]; replayOnly?: boolean } = {}): Subscription {
    // One page of an old stretch of the log, and nothing live after it (the reader comes back for more).
    if (options.replayOnly) return new Subscription(this, options.backlog ?? [], this.options.subscriberQueue, options)
    const window = this.archive(lastReceived)
    const backlog = options.backlog?.length ? options.backlog.concat(window) : window
    // Everything up to this.last is in the backlog or before the cursor: live events follow it.
    const subscription = new Subscription(this, backlog, this.options.subscriberQueue, { ...options, position: this.last })
    if (!subscription.closed) (this.subscriptions = owned(this.subscriptions)).add(subscription)
    this.usedAt = Date.now()
    return subscription
  }

  /**
   * A reader of many rooms (the person's stream) reads this one in the background from now:
   * nobody is present for it and nothing is queued until the room speaks (see Follower). Only
   * when there is nothing to hand over (no cursor, or a cursor at the room's newest event, of
   * its epoch) and outside the lobby (whose readers are its presence): otherwise false, and the
   * caller enters with a subscription of its own.
   */
  async follow(follower: Follower, cursor?: { lastReceived?: number | undefined; epoch?: string | undefined }): Promise<boolean> {
    if (this.starting) await this.starting
    if (this.unloaded || this.closed || this.linesOfPresence || follower.closed) return false
    if (this.banned.size > 0 && (this.banned.has(follower.holder) || this.banned.has(follower.name))) return false
    if (cursor?.epoch !== undefined && cursor.epoch !== this.epoch) return false
    if (cursor?.lastReceived !== undefined && cursor.lastReceived !== this.last) return false
    if (this.followers.has(follower)) return true
    this.followers = owned(this.followers)
    this.followers.add(follower)
    follower.add(this)
    this.usedAt = Date.now()
    return true
  }

  /**
   * The registry, before start(): this room is for its members alone (`names`, as the store had
   * them when its log ended at `from`); the join and leave lines after `from` keep the set.
   */
  guard(names: Iterable<string>, from: number): void {
    this.members = new Set(names)
    this.guardFrom = from
  }

  /** Set once the room's record was read at loading (and its members, when it has any): who may read it is then known here. */
  recorded = false

  /**
   * Whether this person may read the room, as this process knows it (the record read at loading,
   * then the join and leave lines): undefined when it was loaded without a record. Only a yes is
   * final: a no may be a join this process has not heard yet (ask the store). Members are kept by
   * name, and only an account's name is its own for good (a guest's old session may bear a name
   * an account took since): a guest is never a member here.
   */
  readableBy(member: Member): boolean | undefined {
    if (!this.recorded) return undefined
    return this.members === undefined || (member.account === true && member.id !== undefined && this.members.has(member.name))
  }

  /** A member who left (the store says so already): no longer one here, whether or not their leave line gets written. */
  forget(name: string): void {
    this.members?.delete(name)
  }

  /** The registry, before start(): where this room's bans and mutes are read (now, and again after each moderation event). */
  async restrictFrom(records: Pick<RoomStore, 'restrictions'>): Promise<void> {
    this.restrictionsOf = records
    await this.readRestrictions()
  }

  private async readRestrictions(): Promise<void> {
    if (!this.restrictionsOf) return
    // Reads may finish out of order: only the newest one started is applied (an older one would
    // drop what a moderation event since has added).
    const read = ++this.restrictionsRead
    try {
      const muted = new Map<string, { until: number; reason: string }>()
      const banned = new Map<string, { until: number; reason: string; by: string }>()
      const found = await this.restrictionsOf.restrictions(this.name, Date.now())
      if (read !== this.restrictionsRead) return
      for (const r of found) {
        const entry = { until: r.until ?? Infinity, reason: r.reason, by: r.by }
        // By person alone: the name an event gave them stands only until the store answers (a
        // guest who later takes a banned guest's name is not banned for it).
        const into = r.kind === 'ban' ? banned : r.kind === 'mute' ? muted : undefined
        into?.set(r.person, entry)
      }
      this.muted = shrunk(muted)
      this.banned = shrunk(banned)
    } catch (error) {
      // The events' names still hold until the store answers again.
      this.options.onError?.(error, "could not read a room's mutes")
    }
  }

  /** The ban in force on this person here (by their key, or by the name a ban event gave), or undefined. */
  bannedNow(member: Member): Removal | undefined {
    if (this.banned.size === 0) return undefined
    const ban = this.banned.get(memberKey(member)) ?? this.banned.get(member.name)
    if (!ban || ban.until <= Date.now()) return undefined
    return { action: 'ban', by: ban.by, reason: ban.reason, ...(ban.until !== Infinity && { until: ban.until }) }
  }

  /** Why this person may not write here now (a ban or a mute in force), or undefined. */
  private mutedNow(member: Member): SayRefusal | undefined {
    const ban = this.bannedNow(member)
    if (ban) return { outcome: 'forbidden', message: removalMessage(ban) }
    if (this.muted.size === 0) return undefined
    const mute = this.muted.get(memberKey(member)) ?? this.muted.get(member.name)
    if (!mute || mute.until <= Date.now()) return undefined
    const until = mute.until === Infinity ? '' : ` until ${new Date(mute.until).toISOString().slice(0, 16).replace('T', ' ')} UTC`
    return { outcome: 'forbidden', message: `You are muted in this room${until}${mute.reason ? `: ${mute.reason}` : ''}. You can still read it.` }
  }

  /** Whether this person may write here: a member of a private or direct room; anyone who may read, elsewhere. */
  admits(member: Member): boolean {
    return this.members === undefined || this.members.has(member.name)
  }

  /** A follower no longer reads this room. */
  unfollow(follower: Follower): void {
    if (this.followers.delete(follower)) {
      this.followers = shrunk(this.followers)
      this.usedAt = Date.now()
    }
  }

  release(subscription: Subscription): void {
    if (this.subscriptions.delete(subscription)) {
      this.subscriptions = shrunk(this.subscriptions)
      this.usedAt = Date.now()
    }
    const key = subscription.holder
    const mine = key === undefined ? undefined : this.connections.get(key)
    if (mine === subscription) {
      this.connections.delete(key!)
      this.connections = shrunk(this.connections)
    }
    else if (mine instanceof Set && mine.delete(subscription) && mine.size === 1) this.connections.set(key!, mine.values().next().value!)
    if (subscription.state === 'lagged') this.stats.lagged++
  }

  /** Counted for /metrics (chat_reader_gaps_total): a reader would have skipped events; it was ended instead. */
  gap(_subscription: Subscription, expected: number, got: number): void {
    this.stats.gaps++
    this.options.onError?.(new Error(`a reader expected event ${expected} and was handed ${got}; it was ended to resume from its cursor`), 'a reader would have skipped events')
  }

  /** Counted for /metrics (chat_reader_repeats_total): a reader would have been handed an id at or below its cursor; it was ended instead. */
  repeat(_subscription: Subscription, after: number, got: number): void {
    this.stats.repeats++
    this.options.onError?.(new Error(`a reader at event ${after} was about to be handed ${got} again; it was ended to resume from its cursor`), 'a reader would have been handed an event twice')
  }

  wake(subscription: Subscription): void {
    if (this.waking.push(subscription) === 1) setImmediate(Room.wakeAllOf, this)
  }

  /**
   * One timer per tick for every reader on this node instead of one per reader: each reads
   * all that arrived this tick at once (a socket sends it as one frame).
   */
  private static wakeAllOf(room: Room): void {
    room.wakeAll()
  }

  private wakeAll(): void {
    const waking = this.waking
    this.waking = []
    for (const subscription of waking) if (subscription.pending) subscription.onReadable?.(subscription)
  }

  /**
   * Commits the event to the log and resolves with it once committed; then this node delivers
   * it and the bus carries it to the others. Drafts of one tick (and those that arrive while a
   * commit is in flight) share one transaction.
   */
  publish(draft: EventDraft): Promise<StoredEvent> {
    if (this.unloaded) return Promise.reject(new Error(`room ${this.name} was unloaded: its events go through the room loaded now`))
    return new Promise((resolve, reject) => {
      if (this.queue.push({ draft, resolve, reject }) === 1 && !this.committing) setImmediate(Room.commitOf, this)
    })
  }

  private static commitOf(room: Room): void {
    room.commit()
  }

  private commit(): void {
    const batch = this.queue
    this.queue = []
    if (batch.length === 0) return
    this.committing = true
    this.log.append(batch.map((p) => p.draft)).then(
      (stored) => {
        this.committing = false
        for (const s of stored) {
          // A resend answers the event first sent: nothing new to deliver.
          if (s.duplicate) continue
          this.deliver(s)
          this.bus.publish(s, this.name)
        }
        // The batch is the tick's coalescing point: readers get it now, not a loop turn later.
        this.wakeAll()
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(stored[i]!)
        this.next()
      },
      (error: unknown) => {
        this.committing = false
        for (const p of batch) p.reject(error)
        this.next()
      },
    )
  }

  private next(): void {
    if (this.queue.length > 0) return void setImmediate(Room.commitOf, this)
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }

  /** Resolves once everything published so far is committed (or failed). */
  private idle(): Promise<void> {
    if (!this.committing && this.queue.length === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Publishes a join as is (presence decides when; tests and the local presence store call it). */
  join(user: string, avatar?: string, via?: string, guest?: true): Promise<StoredEvent> {
    return this.publish({ type: 'join', user, avatar, via, guest })
  }

  /** Publishes a leave as is (see join). */
  left(user: string, avatar?: string, via?: string, guest?: true): Promise<StoredEvent> {
    return this.publish({ type: 'leave', user, avatar, via, guest })
  }

  /** Publishes a message as is, with no check or limit (trusted callers: say, tests, the benchmark). */
  post(user: string, text: string, avatar?: string, via?: string, guest?: true): Promise<StoredEvent> {
    return this.publish({ type: 'message', user, text, avatar, via, guest })
  }

  /** Who is in the room as of lastId: how many, and the first `limit` by name (ROSTER_LIMIT), so a page stays small when thousands are here. */
  roster(limit = this.options.rosterLimit ?? Infinity): Roster {
    const names = [...this.present.keys()].sort((a, b) => a.localeCompare(b)).slice(0, limit)
    const users = names.map((name) => {
      const avatar = this.present.get(name)
      return avatar === undefined ? { name } : { name, avatar }
    })
    return { lastId: this.lastId, count: this.present.size, users }
  }

  /**
   * The roster as every process sees it: in a room other than the lobby, who is here is not
   * written to the log, so with several processes it is read from the bus's presence.
   */
  async rosterNow(limit = this.options.rosterLimit ?? Infinity): Promise<Roster> {
    if (this.linesOfPresence || !this.bus.roster) return this.roster(limit)
    const everyone = await this.bus.roster(this.name)
    const users = everyone.sort((a, b) => a.name.localeCompare(b.name)).slice(0, limit)
    return { lastId: this.lastId, count: everyone.length, users: users.map(({ name, avatar }) => (avatar ? { name, avatar } : { name })) }
  }

  /** Everyone present, by name (for suggestions; not for pages). */
  presentNames(): string[] {
    return [...this.present.keys()]
  }

  /** "user is typing": to readers that asked for signals, at most once per throttle window per user. */
  typing(member: Member, transport?: string): void {
    if (!this.admits(member) || this.mutedNow(member)) return
    if (transport !== undefined) void this.renew(member, transport)
    const key = memberKey(member)
    const now = Date.now()
    const throttle = this.options.typingThrottleMs ?? 1500
    const last = this.lastTyping.get(key)
    if (last !== undefined && now - last < throttle) return
    if (this.lastTyping.size > 10_000) {
      for (const [name, at] of this.lastTyping) if (now - at >= throttle) this.lastTyping.delete(name)
    }
    this.lastTyping = owned(this.lastTyping)
    this.lastTyping.set(key, now)
    this.bus.signal(createTypingSignal(member.name), this.name)
  }

  /**
   * Shutdown, before the server stops accepting: every subscription ends (long polls answer,
   * sockets close) and this node lets go of everyone it holds, so nobody is left listed.
   */
  async endSubscriptions(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.close()
    for (const follower of this.followers) follower.end(this, 'closed')
    // With a bus of its own this process is the whole chat: a shutdown is a restart, whose start
    // adopts the people still listed (no leave and join lines). With a shared bus, the others go on.
    await this.presence.close(!this.bus.shared)
  }

  /** Ends every subscription and lets go of everyone here, then waits for the last commits. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.endSubscriptions()
    // Leaves published on the way out are committed before the store closes.
    await this.idle()
  }

  /** A request through the registry uses the room: it stays loaded a while longer. */
  touch(): void {
    this.usedAt = Date.now()
  }

  /**
   * Since when this room has been idle on this node (its last event, reader or request), or
   * undefined while something holds it: a reader, someone present (held, leased or in their
   * grace), a commit queued or in flight, missed events being read.
   */
  get idleSince(): number | undefined {
    if (this.subscriptions.size > 0 || this.followers.size > 0 || this.presence.size > 0 || this.queue.length > 0 || this.committing || this.filling || this.waking.length > 0) return undefined
    return this.usedAt
  }

  /**
   * The registry lets go of this idle room (see idleSince): nothing of it stays running (its
   * presence sweep stops). The log keeps everything; the name is loaded anew on its next use.
   */
  unload(): void {
    this.unloaded = true
    this.presence.stop()
  }

  /**
   * The window is consecutive and ends at the last id (every cursor maps to an index by that);
   * should it ever not be, it is dropped and the store serves resumes, rather than a reader
   * being handed an event twice.
   */
  private checkWindow(): void {
    const n = this.recent.length
    if (n === 0 || (this.recent[0]!.event.id + n - 1 === this.last && this.recent[n - 1]!.event.id === this.last)) return
    this.options.onError?.(new Error(`room ${this.name}: the replay window (${n} events from ${this.recent[0]!.event.id}) did not end at ${this.last}; it was dropped`), 'the replay window was not consecutive')
    this.recent = []
  }

  private windowStart(): number {
    return this.recent[0]?.event.id ?? this.last + 1
  }

  /**
   * Every event, this node's own (after commit) and others' (from the bus), reaches readers in
   * id order with no gap: when an id skips ahead (this node missed some, e.g. while the bus
   * reconnected), the missing ones are read from the store and newer arrivals wait for them.
   * Never waits on a subscriber.
   */
  deliver(stored: StoredEvent): void {
    const id = stored.event.id
    if (id <= this.last) return
    if (this.filling || id > this.last + 1) {
      this.held.push(stored)
      this.fill()
      return
    }
    this.append(stored)
  }

  /** Reads what this node missed from the store, then lets the held arrivals through. Retries while the store is away. */
  private fill(): void {
    if (this.filling) return
    this.filling = (async () => {
      for (let attempt = 0; !this.closed; attempt++) {
        try {
          for (;;) {
            const from = this.last
            const missing = await this.log.after(from, PAGE)
            for (const s of missing) if (s.event.id === this.last + 1) this.append(s)
            if (missing.length === PAGE) continue
            // Arrivals held while that read was under way can be newer than what it saw: the
            // bus brought them, and not the ones committed just before them. The store has
            // those (it gave out the held ids after them): read again until they join up.
            if (this.lowestHeld() <= this.last + 1 || this.last === from) break
          }
          break
        } catch (error) {
          this.options.onError?.(error, 'could not read missed events from the store')
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)).unref())
        }
      }
      const held = this.held.sort((a, b) => a.event.id - b.event.id)
      this.held = []
      for (const s of held) if (s.event.id > this.last) this.append(s)
    })().finally(() => {
      this.filling = undefined
    })
  }

  /** The lowest held id this node has not delivered yet (Infinity: none). */
  private lowestHeld(): number {
    let lowest = Infinity
    for (const { event } of this.held) if (event.id > this.last && event.id < lowest) lowest = event.id
    return lowest
  }

  /** The store's log stands at `lastId`: events this node has not had by the bus are read (see catchUp). */
  caughtUpTo(lastId: number): void {
    if (!this.filling && lastId > this.last) this.fill()
  }

  private append(stored: StoredEvent): void {
    // The store no longer has what came before (pruned): the window starts over here, so it stays
    // consecutive, and each reader is ended rather than handed a gap (it resumes or is told).
    const restarted = stored.event.id !== this.last + 1
    if (restarted) this.recent = []
    this.recent.push(stored)
    if (this.recent.length > this.options.archiveSize) this.recent.shift()
    this.last = stored.event.id
    if (stored.event.ref !== undefined || stored.event.thread !== undefined) this.applyToWindow(stored.event)
    this.usedAt = Date.now()
    this.fold(stored.event)
    this.stats.events++
    this.stats.deliveries += this.subscriptions.size + this.followers.size
    for (const subscription of this.subscriptions) subscription.push(stored)
    // A follower keeps no cursor of its own: a room that starts over ends it as lagged (it resumes from its cursor).
    for (const follower of this.followers) {
      if (restarted) follower.end(this, 'lagged')
      else follower.push(this, stored, this.options.subscriberQueue)
    }
  }

  /**
   * An edit, a deletion, a reaction or a reply: the message it refers to in the window reads as it
   * stands now (the store did the same in the commit, by the same functions): a deleted message's
   * edits keep no text either, a reply counts in its thread's first message, a deleted one no more.
   */
  private applyToWindow(change: Event): void {
    const start = this.windowStart()
    const at = (id: number) => (id >= start ? this.recent[id - start] : undefined)
    const set = (id: number, stored: StoredEvent) => {
      this.recent[id - start] = stored
    }
    // A reply, or a reply's deletion, says its thread's count as it now stands (so a catch-up that reads the first message anew never counts one twice).
    if (change.thread !== undefined && change.threadReplies !== undefined && (change.type === 'message' || change.type === 'delete')) {
      const root = at(change.thread)
      if (root?.event.type === 'message') set(change.thread, withReplyCount(root.event, change.threadReplies, change.type === 'message' ? change.timestamp : undefined))
      if (change.type === 'message') return
    }
    if (change.ref === undefined) return
    const target = at(change.ref)
    if (target?.event.type !== 'message') return
    if (change.type === 'reaction') {
      const after = withReaction(target.event, change)
      if (after) set(change.ref, after)
      return
    }
    if (change.type !== 'edit' && change.type !== 'delete') return
    const after = applyChange(target.event, change)
    set(change.ref, after)
    // As the store does: a deleted message's edits keep no text, an edited one's earlier edits carry its newest.
    const text = after.event.deleted ? undefined : after.event.text
    for (let i = change.ref - start + 1; i < this.recent.length - 1; i++) {
      const e = this.recent[i]!.event
      if (e.type !== 'edit' || e.ref !== change.ref || e.text === undefined) continue
      this.recent[i] = text === undefined ? withoutText(this.recent[i]!) : withText(this.recent[i]!, text)
    }
  }

  /** Keeps the roster in step with join and leave events (the lobby's; other rooms' lines are membership, kept in `members`). */
  private fold(event: Event): void {
    const { type, user, avatar } = event
    if (type === 'join' && this.linesOfPresence) (this.present = owned(this.present)).set(user, avatar)
    else if (type === 'leave' && this.linesOfPresence) this.present.delete(user)
    if (type !== 'join' && this.typists.size > 0) this.typists.delete(user)
    if (this.members && event.id > this.guardFrom) this.foldMembership(event)
    if (type === 'moderation') this.foldModeration(event)
  }

  /**
   * A mute, ban or their lifting: known at once by name, then as the store has it (by person).
   * A kick or ban puts the person out at once: each of their readers here ends saying why, and a
   * members-only room forgets them (the store already has; a missed bus message is caught up
   * from the log, so no process keeps them reading).
   */
  private foldModeration({ action, target, reason, until, user, seconds }: Event): void {
    if (action === 'slow') this.slow = seconds ?? 0
    else if (action === 'close') this.closedToNew = true
    else if (action === 'open') this.closedToNew = false
    if (target === undefined) return
    if (action === 'mute') (this.muted = owned(this.muted)).set(target, { until: until ?? Infinity, reason: reason ?? '' })
    else if (action === 'unmute') this.muted.delete(target)
    else if (action === 'ban') (this.banned = owned(this.banned)).set(target, { until: until ?? Infinity, reason: reason ?? '', by: user })
    else if (action === 'unban') this.banned.delete(target)
    else if (action !== 'kick') return
    if (action === 'kick' || action === 'ban') {
      // An old ban replayed from the log (a room loaded later) has run out: nobody is put out by it.
      if (action === 'ban' && until !== undefined && until <= Date.now()) return void this.readRestrictions()
      const removal: Removal = { action, by: user, reason: reason ?? '', ...(until !== undefined && { until }) }
      this.members?.delete(target)
      for (const subscription of this.subscriptions) if (subscription.who === target) subscription.remove(removal)
      for (const follower of this.followers) if (follower.name === target) follower.end(this, 'removed', removal)
    }
    if (action !== 'kick') void this.readRestrictions()
  }

  /** A join or leave line of a members-only room: the set follows it, and a member who left reads no further here. */
  private foldMembership({ type, user }: Event): void {
    if (type === 'join') this.members!.add(user)
    else if (type === 'leave') {
      this.members!.delete(user)
      for (const subscription of this.subscriptions) if (subscription.who === user) subscription.leave()
      for (const follower of this.followers) if (follower.name === user) follower.end(this, 'left')
    }
  }

  relay(signal: Signal): void {
    // Who has a room other than the lobby open (see linesOfPresence).
    if (signal.type === 'presence' && !this.linesOfPresence && !this.name.startsWith('~')) {
      if (signal.presence === 'offline') this.present.delete(signal.user)
      else if (signal.presence !== undefined) (this.present = owned(this.present)).set(signal.user, signal.avatar)
    }
    if (signal.type === 'typing') {
      // Bounded: past a thousand typists, the oldest signals are forgotten first.
      this.typists.delete(signal.user)
      if (this.typists.size >= 1000) this.typists.delete(this.typists.keys().next().value!)
      this.typists = owned(this.typists)
      this.typists.set(signal.user, Date.now() + TYPING_SHOWS_MS)
    }
    for (const subscription of this.subscriptions) subscription.signal(signal)
    for (const follower of this.followers) follower.signal(this, signal)
  }
}
