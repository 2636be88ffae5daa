import type { Signal, StoredEvent } from './event.js'

/**
 * open: receiving; lagged: dropped because its queue overflowed (gorilla's rule: a slow
 * reader never stalls the room); closed: the room shut down; cancelled: its reader let go.
 */
export type SubscriptionState = 'open' | 'lagged' | 'closed' | 'cancelled'

export interface SubscribeOptions {
  /** Ends the subscription when aborted. */
  abort?: AbortSignal | undefined
  /** Also deliver typing signals (takeSignals), except the reader's own. */
  typing?: { self: string } | undefined
}

export interface SubscriptionOwner {
  /** Called once when the subscription ends, however it ends. */
  release(subscription: Subscription): void
  /** The subscription has something to read; the owner calls its onReadable (batched per tick). */
  wake(subscription: Subscription): void
}

/**
 * One listener's view of the room: the archive after its cursor, then live events, in id
 * order, through a bounded queue. Readers either iterate it (for await) or, to coalesce,
 * take everything queued at once with take() when onReadable fires.
 */
export class Subscription implements AsyncIterable<StoredEvent> {
  state: SubscriptionState = 'open'
  /**
   * Set by a transport that drains in batches: called once per tick after events or signals
   * arrived (whatever arrived in the same tick is read together), and at once when the
   * subscription ends for a reason other than the reader's cancel().
   */
  onReadable: (() => void) | undefined = undefined

  private queue: StoredEvent[]
  private head = 0
  private waiter: ((result: IteratorResult<StoredEvent>) => void) | undefined = undefined
  private readonly owner: SubscriptionOwner
  private readonly limit: number
  private abortSignal: AbortSignal | undefined = undefined
  /** Latest signal per user, for readers that asked for them; bounded by the number of users. */
  private signals: Map<string, Signal> | undefined
  private readonly self: string | undefined

  constructor(
    owner: SubscriptionOwner,
    backlog: StoredEvent[],
    limit: number,
    options: SubscribeOptions = {},
  ) {
    const signal = options.abort
    this.signals = options.typing ? new Map() : undefined
    this.self = options.typing?.self
    this.owner = owner
    this.queue = backlog
    // The bound is on live events: the backlog handed over at subscribe never counts as lag.
    this.limit = limit + backlog.length
    if (signal) {
      if (signal.aborted) {
        // Not yet registered with the owner; end without a release call.
        this.state = 'cancelled'
        this.queue = []
        return
      }
      this.abortSignal = signal
      signal.addEventListener('abort', this.cancel, { once: true })
    }
  }

  /** Events waiting to be read. */
  get size(): number {
    return this.queue.length - this.head
  }

  get closed(): boolean {
    return this.state !== 'open'
  }

  /** Whether take() or takeSignals() has anything. */
  get pending(): boolean {
    return this.size > 0 || (this.signals !== undefined && this.signals.size > 0)
  }

  /**
   * Room side: enqueue without waiting. Returns false when this subscription has ended,
   * including when this push overflowed it.
   */
  push(stored: StoredEvent): boolean {
    if (this.state !== 'open') return false
    if (this.waiter) {
      const resolve = this.waiter
      this.waiter = undefined
      resolve({ value: stored, done: false })
      return true
    }
    if (this.size >= this.limit) {
      this.end('lagged')
      return false
    }
    this.queue.push(stored)
    if (this.size === 1 && !this.signals?.size) this.owner.wake(this)
    return true
  }

  /** Room side: an ephemeral signal, kept only if this reader asked for them; a newer one from the same user replaces it. */
  signal(signal: Signal): void {
    if (this.state !== 'open' || !this.signals || signal.user === this.self) return
    const idle = !this.pending
    this.signals.set(signal.user, signal)
    if (idle) this.owner.wake(this)
  }

  /** The signals waiting, and empties them. */
  takeSignals(): Signal[] {
    if (!this.signals?.size) return []
    const out = [...this.signals.values()]
    this.signals.clear()
    return out
  }

  /** Everything queued, oldest first; empties the queue. */
  take(): StoredEvent[] {
    if (this.size === 0) return []
    const out = this.head === 0 ? this.queue : this.queue.slice(this.head)
    this.queue = []
    this.head = 0
    return out
  }

  /** The reader lets go: ends and releases it. Safe to call any number of times. */
  readonly cancel = (): void => {
    this.end('cancelled')
  }

  /** The room shuts down: the reader is told (a long poll answers, a socket closes). */
  close(): void {
    this.end('closed')
  }

  next(): Promise<IteratorResult<StoredEvent>> {
    if (this.size > 0) {
      const value = this.queue[this.head]!
      this.head++
      if (this.head === this.queue.length) {
        this.queue = []
        this.head = 0
      } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
      return Promise.resolve({ value, done: false })
    }
    if (this.state !== 'open') return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => {
      this.waiter = resolve
    })
  }

  return(): Promise<IteratorResult<StoredEvent>> {
    this.cancel()
    return Promise.resolve({ value: undefined, done: true })
  }

  [Symbol.asyncIterator](): AsyncIterator<StoredEvent> {
    return this
  }

  private end(state: Exclude<SubscriptionState, 'open'>): void {
    if (this.state !== 'open') return
    this.state = state
    // Whoever ended it reads no further: a lagged reader resyncs from its cursor.
    this.queue = []
    this.head = 0
    this.signals?.clear()
    this.abortSignal?.removeEventListener('abort', this.cancel)
    this.abortSignal = undefined
    this.owner.release(this)
    const waiter = this.waiter
    this.waiter = undefined
    waiter?.({ value: undefined, done: true })
    if (state !== 'cancelled') this.onReadable?.()
  }
}
