import type { Broker } from './broker/broker.js'
import { createTypingSignal, type Event, type EventDraft, type Signal, type StoredEvent } from './event.js'
import { Subscription, type SubscribeOptions, type SubscriptionOwner } from './subscription.js'

export interface ChatroomOptions {
  archiveSize: number
  /** Live events a subscriber may have queued before it is dropped as lagged. */
  subscriberQueue: number
  /** A user's typing signals go out at most once per this many milliseconds (pages send every 2 s). */
  typingThrottleMs?: number
}

export interface RosterEntry {
  name: string
  avatar?: string
}

/** Who is in the room as of event `lastId`: clients apply join/leave events after it. */
export interface Roster {
  lastId: number
  users: RosterEntry[]
}

/**
 * The one owner of room state on this node: the archive as this node has seen it, and who
 * listens here. Which events exist, and their ids, is the broker's business.
 */
export class Chatroom implements SubscriptionOwner {
  private readonly broker: Broker
  private readonly options: ChatroomOptions
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
  }

  /** Loads the archive from the broker and starts listening. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
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

  join(user: string, avatar?: string): Promise<StoredEvent> {
    return this.publish({ type: 'join', user, avatar })
  }

  leave(user: string, avatar?: string): Promise<StoredEvent> {
    return this.publish({ type: 'leave', user, avatar })
  }

  say(user: string, text: string, avatar?: string): Promise<StoredEvent> {
    return this.publish({ type: 'message', user, text, avatar })
  }

  /** Who is in the room, by name, as of lastId. */
  roster(): Roster {
    const users = [...this.present].map(([name, avatar]) => (avatar === undefined ? { name } : { name, avatar }))
    users.sort((a, b) => a.name.localeCompare(b.name))
    return { lastId: this.lastId, users }
  }

  /** "user is typing": to readers that asked for signals, at most once per throttle window per user. */
  typing(user: string): void {
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

  /** Ends every subscription: waiting readers see the end (long polls answer, sockets close). */
  endSubscriptions(): void {
    for (const subscription of this.subscriptions) subscription.close()
  }

  async close(): Promise<void> {
    this.endSubscriptions()
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
