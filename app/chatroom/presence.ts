import { noMap, owned } from './empty.js'

export interface Member {
  /** Who the user is (random, from their session); absent in tests that go by name alone. */
  id?: string | undefined
  /** What others see: a claim, unique among the people present. */
  name: string
  avatar?: string | undefined
  /** Signed in through an OAuth provider: its name is shown beside theirs. */
  provider?: { name: string } | undefined
  /** A registered account (the same id on every device); a member with an id and without this is a guest. */
  account?: true | undefined
}

/** Whether the member's events are marked as a guest's: signed in (an id) without an account. */
export function isGuest(member: Member): true | undefined {
  return member.id !== undefined && !member.account ? true : undefined
}

/** The key presence, flood limits and name claims go by: the user's id, else their name. */
export const memberKey = (member: Member): string => member.id ?? member.name

export interface RosterEntry {
  name: string
  avatar?: string
}

/** Who is in the room as of event `lastId`: clients apply join/leave events after it. */
export interface Roster {
  lastId: number
  /** How many are present; `users` lists the first of them by name (bounded). */
  count: number
  users: RosterEntry[]
}

/**
 * Where "is this user anywhere?" is decided. This node tells it when it starts and stops
 * holding a user; the store publishes join and leave. The memory store is this process alone;
 * the Redis one counts every process's leases, so a user on two processes joins once.
 * The broker supplies the store that fits it (Broker.presenceStore).
 */
export interface PresenceStore {
  arrive(member: Member): Promise<void>
  depart(member: Member): Promise<void>
  /** Called on every sweep with the users this node holds (renew leases, expire dead nodes'). */
  tick?(held: Member[]): Promise<void>
  /** At start: these names are listed present by the log already (arriving publishes no join for them). */
  listedAlready?(names: Iterable<string>): void
}

export interface PresenceOptions {
  /** How long after a user's last connection goes their leave is published. */
  graceMs: number
  /** Told when publishing a join or leave fails (the broker is down). */
  onError?: (error: unknown) => void
  /** The clock (tests drive it by hand). */
  now?: () => number
  /** Told when a user's leave is published (their name claim is let go). */
  onGone?: (member: Member) => void
  /**
   * Joins one user may cause per minute. Past it (a flapping client) their leave waits until
   * they have been gone a minute, so they cannot flood the room with join/leave pairs.
   */
  churnLimit?: number
}

const CHURN_WINDOW_MS = 60_000

/** Leases one user may hold (transports times open pages). */
const MAX_LEASES = 16

/** A lease is held by a transport, or by one page (tab) of it. */
const leaseKey = (transport: string, tab?: string): string => (tab ? `${transport}#${tab}` : transport)

/**
 * Whether a leave of (transport, tab) ends this lease: the page's own and those of requests that
 * named no page (its typing and sending), the transport's, or every lease. Another page of the
 * user holds them by its own lease or connection.
 */
function leaseMatches(key: string, transport?: string, tab?: string): boolean {
  if (tab !== undefined) return key.endsWith(`#${tab}`) || !key.includes('#')
  if (transport === undefined) return true
  return key === transport || key.startsWith(`${transport}#`)
}

interface State {
  member: Member
  /** Connections held open: sockets, pending long polls. */
  held: number
  /** Per transport: when its lease runs out (ms since epoch). */
  leases: Map<string, number>
  /** When to publish the leave, once nothing holds the user; undefined while online. */
  leaveAt: number | undefined
}

/**
 * Who is online, per user rather than per connection: a join when a user first appears,
 * a leave when the last of their connections is gone and the grace period has passed, so
 * a reload or a second tab makes no noise. One sweep timer for everyone while anyone is here
 * (none in an empty room), no timer per user.
 */
/** How often a presence sweeps for a grace of `graceMs` (a quarter of it, within 25 ms and a second). */
export function sweepEvery(graceMs: number): number {
  return Math.min(1000, Math.max(25, graceMs / 4))
}

export class Presence {
  private readonly store: PresenceStore
  private readonly options: PresenceOptions
  private users = noMap<string, State>()
  /** When each user recently joined (for churnLimit); pruned on every sweep. */
  private joins = noMap<string, number[]>()
  private sweeper: NodeJS.Timeout | undefined
  /**
   * People the log shows present when this node started (the process before it went away
   * with them here): by name, with when their leave is due unless they come back first, so a
   * restart makes no leave and join lines for those who reconnect.
   */
  private adopted = noMap<string, { member: Member; leaveAt: number }>()
  /** Between start() and stop(). */
  private running = false

  private readonly now: () => number

  constructor(store: PresenceStore, options: PresenceOptions) {
    this.store = store
    this.options = options
    this.now = options.now ?? Date.now
  }

  /** Sweeps from now on: its timer runs while someone is here (held, leased or in their grace), so an empty room has none. */
  start(): void {
    this.running = true
    this.schedule()
  }

  stop(): void {
    this.running = false
    this.schedule()
  }

  /**
   * After a restart: these people (the log shows them present) stay listed for `graceMs` with no
   * line; whoever comes back in that time just goes on, the others' leaves are published then.
   */
  adopt(members: readonly Member[], graceMs: number): void {
    const leaveAt = this.now() + graceMs
    for (const member of members) if (!this.isOnline(member.name)) (this.adopted = owned(this.adopted)).set(member.name, { member, leaveAt })
    this.store.listedAlready?.(members.map((m) => m.name))
    this.schedule()
  }

  /** Starts the sweep timer on the first user, stops it once the last one is gone. */
  private schedule(): void {
    if (this.running && this.users.size + this.adopted.size > 0) {
      if (this.sweeper) return
      const every = sweepEvery(this.options.graceMs)
      this.sweeper = setInterval(() => this.sweep(), every)
      this.sweeper.unref()
    } else if (this.sweeper) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }

  /** Keeps the user online until the returned release is called (idempotent). */
  hold(member: Member): () => void {
    const state = this.arrive(member)
    state.held++
    let released = false
    return () => {
      if (released) return
      released = true
      state.held--
      this.settle(memberKey(member), state)
    }
  }

  /**
   * Keeps the user online for ttlMs from now through one transport (refresh, long polling), and
   * one page of it when `tab` says which (so that page's leave does not end another's lease).
   */
  touch(member: Member, transport: string, ttlMs: number, tab?: string): void {
    const state = this.arrive(member)
    let key = leaseKey(transport, tab)
    // A client cannot grow the map by making up pages: past the bound, they share one lease.
    if (!state.leases.has(key) && state.leases.size >= MAX_LEASES) key = transport
    state.leases.set(key, Math.max(state.leases.get(key) ?? 0, this.now() + ttlMs))
  }

  /**
   * The user left: the leases of one page (`tab`), of one transport, or all of them go, and the
   * leave is published at once unless something else (another tab's connection) holds them.
   */
  drop(member: Member, transport?: string, tab?: string): void {
    const state = this.users.get(memberKey(member))
    if (!state) return
    for (const key of state.leases.keys()) if (leaseMatches(key, transport, tab)) state.leases.delete(key)
    if (this.active(state)) return
    if (this.churning(memberKey(member), this.now())) {
      state.leaveAt = this.now() + CHURN_WINDOW_MS
      return
    }
    this.users.delete(memberKey(member))
    this.publishLeave(state.member)
    this.schedule()
  }

  /** Whether this node holds the user online now (within their grace period too). */
  holds(member: Member): boolean {
    return this.users.has(memberKey(member))
  }

  /** Whether someone of this name is online on this node (tests, operations). */
  isOnline(name: string): boolean {
    for (const state of this.users.values()) if (state.member.name === name) return true
    return false
  }

  /** The users this node holds online. */
  members(): Member[] {
    return [...this.users.values()].map((state) => state.member)
  }

  /** Users this node counts as online (including those within their grace period, and those adopted after a restart). */
  get size(): number {
    return this.users.size + this.adopted.size
  }

  /**
   * Shutdown: this node lets go of everyone it holds, so nobody is left listed. `quiet`: the
   * process is the only one (a restart): no leave is published, and the next start adopts them.
   */
  async close(quiet = false): Promise<void> {
    this.stop()
    const held = this.members()
    this.users.clear()
    this.adopted.clear()
    if (!quiet) await Promise.all(held.map((member) => this.store.depart(member).catch((error: unknown) => this.options.onError?.(error))))
    for (const member of held) this.options.onGone?.(member)
  }

  /** Expires leases and publishes the leaves whose grace has passed. */
  sweep(now = this.now()): void {
    this.store.tick?.(this.members()).catch((error: unknown) => this.options.onError?.(error))
    for (const [key, state] of this.users) {
      for (const [transport, until] of state.leases) if (until <= now) state.leases.delete(transport)
      if (state.leaveAt === undefined) {
        if (!this.active(state)) state.leaveAt = now + this.options.graceMs
      } else if (this.active(state)) {
        state.leaveAt = undefined
      }
      if (state.leaveAt !== undefined && state.leaveAt <= now) {
        if (this.churning(key, now)) {
          state.leaveAt = now + CHURN_WINDOW_MS
          continue
        }
        this.users.delete(key)
        this.publishLeave(state.member)
      }
    }
    for (const [name, { member, leaveAt }] of this.adopted) {
      if (leaveAt > now) continue
      this.adopted.delete(name)
      this.publishLeave(member)
    }
    for (const key of this.joins.keys()) this.churning(key, now)
    this.schedule()
  }

  /** Whether the user joined churnLimit times within the last minute (forgets older joins). */
  private churning(key: string, now: number): boolean {
    const times = this.joins.get(key)
    if (!times) return false
    while (times.length > 0 && times[0]! <= now - CHURN_WINDOW_MS) times.shift()
    if (times.length === 0) this.joins.delete(key)
    return times.length >= (this.options.churnLimit ?? Infinity)
  }

  private active(state: State): boolean {
    return state.held > 0 || state.leases.size > 0
  }

  private arrive(member: Member): State {
    const existing = this.users.get(memberKey(member))
    if (existing) {
      existing.leaveAt = undefined
      return existing
    }
    // Back after a restart: already listed, so no join (the store knows the name) and no leave.
    this.adopted.delete(member.name)
    const { id, name, avatar, provider } = member
    const state: State = { member: { id, name, avatar, provider: provider && { name: provider.name } }, held: 0, leases: new Map(), leaveAt: undefined }
    this.users = owned(this.users)
    this.users.set(memberKey(member), state)
    this.schedule()
    if (this.options.churnLimit !== undefined) {
      const times = this.joins.get(memberKey(member)) ?? []
      times.push(this.now())
      this.joins = owned(this.joins)
      this.joins.set(memberKey(member), times)
    }
    this.store.arrive(member).catch((error: unknown) => this.options.onError?.(error))
    return state
  }

  private settle(key: string, state: State): void {
    if (this.users.get(key) !== state || this.active(state)) return
    state.leaveAt = this.now() + this.options.graceMs
  }

  private publishLeave(member: Member): void {
    this.store.depart(member).catch((error: unknown) => this.options.onError?.(error))
    this.options.onGone?.(member)
  }
}
