import type { Broker } from './broker/broker.js'
import type { EventDraft, StoredEvent } from './event.js'
import { Subscription, type SubscriptionOwner } from './subscription.js'

export interface ChatroomOptions {
  archiveSize: number
  /** Live events a subscriber may have queued before it is dropped as lagged. */
  subscriberQueue: number
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

  constructor(broker: Broker, options: ChatroomOptions) {
    this.broker = broker
    this.options = options
  }

  /** Loads the archive from the broker and starts listening. Idempotent. */
  async start(): Promise<void> {
    if (this.started) return
    this.started = true
    this.broker.listen((stored) => this.deliver(stored))
    const archive = await this.broker.archive(0)
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
  subscribe(lastReceived?: number, signal?: AbortSignal): Subscription {
    const subscription = new Subscription(
      this,
      this.archive(lastReceived),
      this.options.subscriberQueue,
      signal,
    )
    if (!subscription.closed) this.subscriptions.add(subscription)
    return subscription
  }

  release(subscription: Subscription): void {
    this.subscriptions.delete(subscription)
  }

  publish(draft: EventDraft): Promise<StoredEvent> {
    return this.broker.publish(draft)
  }

  join(user: string): Promise<StoredEvent> {
    return this.publish({ type: 'join', user })
  }

  leave(user: string): Promise<StoredEvent> {
    return this.publish({ type: 'leave', user })
  }

  say(user: string, text: string): Promise<StoredEvent> {
    return this.publish({ type: 'message', user, text })
  }

  /** Ends every subscription: waiting readers see the end (long polls answer, sockets close). */
  endSubscriptions(): void {
    for (const subscription of this.subscriptions) subscription.close()
  }

  async close(): Promise<void> {
    this.endSubscriptions()
    await this.broker.close()
  }

  /** From the broker, in id order. Never waits on a subscriber. */
  private deliver(stored: StoredEvent): void {
    if (stored.event.id <= this.lastId) return
    this.recent.push(stored)
    if (this.recent.length > this.options.archiveSize) this.recent.shift()
    for (const subscription of this.subscriptions) subscription.push(stored)
  }
}
