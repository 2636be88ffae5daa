import { firstIssue, messageTextSchema } from '../validation.js'
import type { Broker } from './broker/broker.js'
import { createTypingSignal, type Event, type EventDraft, type Signal, type StoredEvent } from './event.js'
import type { FloodGuard } from './flood.js'
import { Presence, type Member, type Roster } from './presence.js'
import { Subscription, type SubscribeOptions, type SubscriptionOwner } from './subscription.js'

export interface ChatroomOptions {
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
    /** With a shared broker: how long a dead process's users linger. */
    ttlMs: number
    /** Transports without a connection to hold (refresh, long polling): each request keeps the user for this long. */
    leaseMs: Record<string, number>
  }
  /** Told what went wrong where a caller only sees an outcome (a broker that cannot be reached). */
  onError?: (error: unknown, what: string) => void
}

/** What enter() answers: a subscription, or why not. */
export type Entered =
  | { ok: true; subscription: Subscription }
  /** The cursor is ahead of the room (it restarted without its history). */
  | { ok: false; refused: 'ahead'; lastId: number }

export interface EnterOptions {
  /** The id of the last event the client has; absent: the replay window. */
  lastReceived?: number | undefined
  /** Also deliver others' typing signals. */
  typing?: boolean | undefined
}

/** What say() answers; each transport maps these to its own errors in app/protocol.ts. */
export type Said =
  | { outcome: 'ok'; stored: StoredEvent }
  | { outcome: 'invalid'; message: string }
  | { outcome: 'flooded'; message: string; retryAfter: number }
  | { outcome: 'unavailable'; message: string }

/**
 * The one owner of room state on this node: the archive as this node has seen it, who
 * listens here, who is present, and how fast each may speak. Which events exist, and their
 * ids, is the broker's business. Transports use the session API: enter (then take / wait /
 * cancel / leave on the subscription), say, typing, leave.
 */
export class Chatroom implements SubscriptionOwner {
  private readonly broker: Broker
  private readonly options: ChatroomOptions
  /** Who is online, per user across their connections and transports. */
  readonly presence: Presence
  private readonly flood: FloodGuard
  private readonly subscriptions = new Set<Subscription>()
  private recent: StoredEvent[] = []
  private started = false
  /** Folded from join/leave events as they are delivered, so it always matches lastId. */
  private readonly present = new Map<string, string | undefined>()
  private readonly lastTyping = new Map<string, number>()
  /** Counts for /metrics: events this node saw, deliveries to its readers, readers dropped as lagged. */
  readonly stats = { events: 0, deliveries: 0, lagged: 0 }
  /** While missing events are fetched, newer arrivals wait here. */
  private filling: Promise<void> | undefined
  private held: StoredEvent[] = []
  /** Subscriptions that got something this tick; woken together by one setImmediate. */
  private waking: Subscription[] = []

  constructor(broker: Broker, options: ChatroomOptions) {
    this.broker = broker
    this.options = options
    const presence = options.presence ?? { graceMs: 5000, ttlMs: 15_000, leaseMs: {} }
    this.presence = new Presence(broker.presenceStore(this, presence.ttlMs), {
      graceMs: presence.graceMs,
      onError: (error) => options.onError?.(error, 'could not publish a join or leave'),
    })
    const flood = options.flood ?? { limit: 20, windowMs: 10_000 }
    this.flood = broker.floodGuard('flood', flood.limit, flood.windowMs)
  }

  /** Loads the archive from the broker and starts listening. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.presence.start()
    this.broker.listen({ event: (stored) => this.deliver(stored), signal: (signal) => this.relay(signal) })
    // Who is here already (another process may have been running): the shared snapshot, then
    // the joins and leaves after it.
    const snapshot = await this.broker.roster?.()
    for (const { name, avatar } of snapshot?.users ?? []) this.present.set(name, avatar)
    const archive = await this.broker.archive(0)
    for (const { event } of archive) if (snapshot && event.id > snapshot.lastId) this.fold(event)
    // Events delivered while the archive loaded are newer; keep them after it.
    const newest = archive.at(-1)?.event.id ?? 0
    this.recent = [...archive, ...this.recent.filter((s) => s.event.id > newest)].slice(
      -this.options.archiveSize,
    )
  }

  /** The id of the newest event this node has seen (0 before the first). */
  get lastId(): number {
    return this.recent.at(-1)?.event.id ?? 0
  }

  /** Listeners on this node. */
  get subscriberCount(): number {
    return this.subscriptions.size
  }

  /** Listeners on this node waiting in wait() (long polls). Counted when scraped. */
  get waitingCount(): number {
    let n = 0
    for (const subscription of this.subscriptions) if (subscription.waiting) n++
    return n
  }

  /**
   * A user comes in through a transport (a socket opens, a poll arrives, a page loads): the
   * cursor is checked, the user is held present until the subscription ends (and, for
   * transports without a connection, kept a while longer by a lease), and the subscription
   * hands over what follows the cursor, then live events. The caller takes or waits, then
   * cancels (or leaves) on every path.
   */
  enter(member: Member, transport: string, options: EnterOptions = {}): Entered {
    const { lastReceived } = options
    if (lastReceived !== undefined && lastReceived > this.lastId) return { ok: false, refused: 'ahead', lastId: this.lastId }
    // Subscribed first, so the user's own join (if this is their arrival) comes after the backlog.
    let release = (): void => {}
    const subscription = this.subscribe(lastReceived, {
      typing: options.typing ? { self: member.name } : undefined,
      onEnd: () => {
        this.renew(member, transport)
        release()
      },
      onLeave: () => this.presence.drop(member, transport),
    })
    this.renew(member, transport)
    release = this.presence.hold(member)
    return { ok: true, subscription }
  }

  /**
   * A user says something: the text is checked, the user's flood limit applied (shared by all
   * their connections), and the message published; acknowledged once the broker has it.
   */
  async say(member: Member, text: unknown, transport?: string): Promise<Said> {
    if (transport !== undefined) this.renew(member, transport)
    const parsed = messageTextSchema(this.options.maxMessageLength ?? 2000).safeParse(text)
    if (!parsed.success) return { outcome: 'invalid', message: firstIssue(parsed.error) }
    try {
      const waitMs = await this.flood.take(member.name)
      if (waitMs > 0) {
        const retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
        const { limit, windowMs } = this.options.flood ?? { limit: 20, windowMs: 10_000 }
        const message = `Slow down: at most ${limit} messages per ${windowMs / 1000} s. Try again in ${retryAfter} s.`
        return { outcome: 'flooded', message, retryAfter }
      }
      return { outcome: 'ok', stored: await this.post(member.name, parsed.data, member.avatar) }
    } catch (error) {
      // The broker is unreachable: say so plainly instead of hanging or pretending.
      this.options.onError?.(error, 'could not publish a message')
      return { outcome: 'unavailable', message: 'The chat is unavailable right now; your message was not sent. Try again shortly.' }
    }
  }

  /** The user left through a transport's leave link: gone at once unless another connection holds them. */
  leave(member: Member, transport: string): void {
    this.presence.drop(member, transport)
  }

  /** A request of a transport without a connection (refresh, long polling) keeps the user present a while. */
  renew(member: Member, transport: string): void {
    const lease = this.options.presence?.leaseMs[transport]
    if (lease) this.presence.touch(member, transport, lease)
  }

  /** The archived events after the cursor (all of it without one). */
  archive(lastReceived = 0): StoredEvent[] {
    const first = this.recent[0]?.event.id ?? 1
    // Ids are consecutive, so the cursor maps straight to an index.
    return this.recent.slice(Math.max(0, lastReceived - first + 1))
  }

  /**
   * The archive after the cursor, then every live event, with nothing lost or doubled
   * between the two: both are taken in one synchronous step.
   */
  subscribe(lastReceived?: number, options?: SubscribeOptions): Subscription {
    const subscription = new Subscription(this, this.archive(lastReceived), this.options.subscriberQueue, options)
    if (!subscription.closed) this.subscriptions.add(subscription)
    return subscription
  }

  release(subscription: Subscription): void {
    this.subscriptions.delete(subscription)
    if (subscription.state === 'lagged') this.stats.lagged++
  }

  wake(subscription: Subscription): void {
    if (this.waking.push(subscription) === 1) setImmediate(this.wakeAll)
  }

  /**
   * One timer per tick for every reader on this node instead of one per reader: each reads
   * all that arrived this tick at once (a socket sends it as one frame).
   */
  private readonly wakeAll = (): void => {
    const waking = this.waking
    this.waking = []
    for (const subscription of waking) if (subscription.pending) subscription.onReadable?.()
  }

  publish(draft: EventDraft): Promise<StoredEvent> {
    return this.broker.publish(draft)
  }

  /** Publishes a join as is (presence decides when; tests and the local presence store call it). */
  join(user: string, avatar?: string): Promise<StoredEvent> {
    return this.publish({ type: 'join', user, avatar })
  }

  /** Publishes a leave as is (see join). */
  left(user: string, avatar?: string): Promise<StoredEvent> {
    return this.publish({ type: 'leave', user, avatar })
  }

  /** Publishes a message as is, with no check or limit (trusted callers: say, tests, the benchmark). */
  post(user: string, text: string, avatar?: string): Promise<StoredEvent> {
    return this.publish({ type: 'message', user, text, avatar })
  }

  /** Who is in the room, by name, as of lastId. */
  roster(): Roster {
    const users = [...this.present].map(([name, avatar]) => (avatar === undefined ? { name } : { name, avatar }))
    users.sort((a, b) => a.name.localeCompare(b.name))
    return { lastId: this.lastId, users }
  }

  /** "user is typing": to readers that asked for signals, at most once per throttle window per user. */
  typing(member: Member, transport?: string): void {
    if (transport !== undefined) this.renew(member, transport)
    const user = member.name
    const now = Date.now()
    const throttle = this.options.typingThrottleMs ?? 1500
    const last = this.lastTyping.get(user)
    if (last !== undefined && now - last < throttle) return
    if (this.lastTyping.size > 10_000) {
      for (const [name, at] of this.lastTyping) if (now - at >= throttle) this.lastTyping.delete(name)
    }
    this.lastTyping.set(user, now)
    this.broker.signal(createTypingSignal(user))
  }

  /** Whether events can be published now (the broker is reachable). */
  ready(): Promise<boolean> {
    return this.broker.ready()
  }

  /**
   * Shutdown, before the server stops accepting: every subscription ends (long polls answer,
   * sockets close) and this node lets go of everyone it holds, so nobody is left listed.
   */
  async endSubscriptions(): Promise<void> {
    for (const subscription of this.subscriptions) subscription.close()
    await this.presence.close()
  }

  async close(): Promise<void> {
    await this.endSubscriptions()
    await this.broker.close()
  }

  /**
   * From the broker. Events reach readers in id order with no gap the archive can fill: when
   * an id skips ahead (this node missed some, e.g. while its broker reconnected), the missing
   * ones are fetched and newer arrivals wait for them. Never waits on a subscriber.
   */
  private deliver(stored: StoredEvent): void {
    if (this.filling) {
      this.held.push(stored)
      return
    }
    const last = this.lastId
    if (stored.event.id <= last) return
    if (last > 0 && stored.event.id > last + 1) {
      this.held.push(stored)
      this.filling = this.broker
        .archive(last)
        .catch(() => [] as StoredEvent[])
        .then((missing) => {
          this.filling = undefined
          const all = [...missing, ...this.held].sort((a, b) => a.event.id - b.event.id)
          this.held = []
          // What the archive no longer has stays a gap; readers see it in the ids.
          for (const s of all) if (s.event.id > this.lastId) this.append(s)
        })
      return
    }
    this.append(stored)
  }

  private append(stored: StoredEvent): void {
    this.recent.push(stored)
    if (this.recent.length > this.options.archiveSize) this.recent.shift()
    this.fold(stored.event)
    this.stats.events++
    this.stats.deliveries += this.subscriptions.size
    for (const subscription of this.subscriptions) subscription.push(stored)
  }

  /** Keeps the roster in step with join and leave events. */
  private fold({ type, user, avatar }: Event): void {
    if (type === 'join') this.present.set(user, avatar)
    else if (type === 'leave') this.present.delete(user)
  }

  private relay(signal: Signal): void {
    for (const subscription of this.subscriptions) subscription.signal(signal)
  }
}
