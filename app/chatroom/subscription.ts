import { removalMessage } from '../../client/render.js'
import { currentSignals, frameFor, type Signal, type StoredEvent } from './event.js'

/**
 * open: receiving; lagged: dropped because its queue overflowed (gorilla's rule: a slow
 * reader never stalls the room); closed: the room shut down; cancelled: its reader let go;
 * left: the user left the room (their page, a leave link, sign-out), so the transport ends too;
 * removed: a moderator kicked or banned them (see `removal`: the transport says why, and a
 * banned reader does not come back).
 */
export type SubscriptionState = 'open' | 'lagged' | 'closed' | 'cancelled' | 'left' | 'removed'

/** Why a moderator put a reader out of a room: kicked (may come back) or banned (until a time, or for good). */
export interface Removal {
  action: 'kick' | 'ban'
  /** Who did it. */
  by: string
  reason: string
  /** A ban's end (ms since the epoch); absent: for good (a kick has none). */
  until?: number | undefined
}

/** A removal in words, for the person it removed (a close reason, a stream's last event, a poll's 403): the client's words. */
export { removalMessage }

/** What wait() listens to for its reader going away: an AbortSignal, or anything as small with the same three members. */
export interface Abortable {
  readonly aborted: boolean
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void
  removeEventListener(type: 'abort', listener: () => void): void
}

/** Why wait() returned: something to take, the time ran out, the reader's signal, or the end. */
export type WaitResult = 'readable' | 'timeout' | 'aborted' | Exclude<SubscriptionState, 'open'>

export interface SubscribeOptions {
  /** Ends the subscription when aborted. */
  abort?: AbortSignal | undefined
  /** Also deliver typing signals (takeSignals), except the reader's own. */
  typing?: { self: string } | undefined
  /** Called once when it ends, however it ends (the room lets go of the reader's presence). */
  onEnd?: (() => void) | undefined
  /** Called by leave() after it ends: the reader leaves the room at once. */
  onLeave?: (() => void) | undefined
  /** Live events up to this id are not delivered (the reader has them from another process). */
  skipThrough?: number | undefined
  /** The id of the last event the reader has once the backlog is read: every live event must follow it. */
  position?: number | undefined
  /** The cursor the reader gave (the last id it has): nothing at or below it is ever handed to it. */
  cursor?: number | undefined
}

export interface SubscriptionOwner {
  /** Called once when the subscription ends, however it ends. */
  release(subscription: Subscription): void
  /** A live event did not follow the reader's last one: it was ended as lagged rather than skip (counted, must never happen). */
  gap?(subscription: Subscription, expected: number, got: number): void
  /** An event at or below what the reader has (its cursor, or the last one queued for it): it was ended as lagged rather than handed it twice (counted, must never happen). */
  repeat?(subscription: Subscription, after: number, got: number): void
  /** The subscription has something to read; the owner calls its onReadable (batched per tick). */
  wake(subscription: Subscription): void
}

/** The queue of a subscription with nothing queued: shared, never written (most rooms a person follows are quiet). */
const NOTHING: StoredEvent[] = []

/** What few subscriptions need, in one object made only for them (a room followed in the background has none). */
interface Hooks {
  /** An iterator's next() waiting for an event. */
  waiter?: ((result: IteratorResult<StoredEvent>) => void) | undefined
  /** The reader's abort signal and the listener on it. */
  abort?: { signal: AbortSignal; listener: () => void } | undefined
  onEnd?: (() => void) | undefined
  onLeave?: (() => void) | undefined
  /** A wait() is pending (for the count of waiting long polls). */
  waiting?: boolean
}

/**
 * One listener's view of the room: the archive after its cursor, then live events, in id
 * order, through a bounded queue. Readers either iterate it (for await) or, to coalesce,
 * take everything queued at once with take() when onReadable fires.
 *
 * A person's stream reads the rooms it follows with one Follower instead; it holds one of these
 * for its own events, the lobby, and a room entered with something to hand over (a cursor
 * behind the room). Kept small all the same (no closure of its own, the queue shared while
 * empty, the room's bookkeeping of who holds it in its own fields).
 */
export class Subscription implements AsyncIterable<StoredEvent> {
  state: SubscriptionState = 'open'
  /** Set when a moderator ended it (state `removed`). */
  removal: Removal | undefined = undefined
  /**
   * Set by a transport that drains in batches: called once per tick after events or signals
   * arrived (whatever arrived in the same tick is read together), and at once when the
   * subscription ends for a reason other than the reader's cancel().
   */
  onReadable: ((subscription: Subscription) => void) | undefined = undefined
  /** The reader's name for it (a connection of several rooms: the room it is keyed by), so one onReadable serves them all. */
  label: string | undefined = undefined
  /** The room's: whose it is (their member key), through which transport and page; set when the room counts it as a connection. */
  holder: string | undefined = undefined
  /** The holder's name (a leave line names them: see Room's members). */
  who: string | undefined = undefined
  transport: string | undefined = undefined
  tab: string | undefined = undefined

  private queue: StoredEvent[]
  private head = 0
  /** Whose it is: the room (or log) that hands it events. */
  readonly owner: SubscriptionOwner
  private readonly limit: number
  /** Latest signal per user, for readers that asked for them; bounded by the number of users. Made on the first one (most readers of most rooms never get any). */
  private signals: Map<string, Signal> | undefined
  /** Set when the reader asked for signals: the reader's own name (its own are not handed back). */
  private readonly self: string | undefined
  /** Live events up to this id are not delivered (0: none skipped). */
  private readonly skipThrough: number
  /** The id the next live event must have (undefined: not checked). */
  private expected: number | undefined
  private hooks: Hooks | undefined

  constructor(
    owner: SubscriptionOwner,
    backlog: StoredEvent[],
    limit: number,
    options: SubscribeOptions = {},
  ) {
    const signal = options.abort
    this.self = options.typing?.self
    if (options.onEnd || options.onLeave) this.hooks = { onEnd: options.onEnd, onLeave: options.onLeave }
    this.skipThrough = options.skipThrough ?? 0
    this.owner = owner
    // The backlog follows the reader's cursor, each event the one after the one before: else the
    // reader is ended (it resumes from its cursor) rather than handed an event twice or a hole.
    let handed = options.cursor
    for (const { event } of backlog) {
      if (handed !== undefined && event.id !== handed + 1) {
        if (event.id <= handed) owner.repeat?.(this, handed, event.id)
        else owner.gap?.(this, handed + 1, event.id)
        backlog = []
        this.state = 'lagged'
        break
      }
      handed = event.id
    }
    const position = backlog.at(-1)?.event.id ?? options.position
    if (position !== undefined) this.expected = Math.max(position, this.skipThrough) + 1
    this.queue = backlog.length > 0 ? backlog : NOTHING
    // The bound is on live events: the backlog handed over at subscribe never counts as lag.
    this.limit = limit + backlog.length
    if (this.state === 'lagged') {
      this.runOnEnd()
      return
    }
    if (signal) {
      if (signal.aborted) {
        // Not yet registered with the owner; end without a release call.
        this.state = 'cancelled'
        this.queue = NOTHING
        this.runOnEnd()
        return
      }
      const listener = () => this.cancel()
      this.hooksOf().abort = { signal, listener }
      signal.addEventListener('abort', listener, { once: true })
    }
  }

  /** Whether a wait() is pending (for the count of waiting long polls). */
  get waiting(): boolean {
    return this.hooks?.waiting === true
  }

  /** A long poll waits on it through its page's queue (PollQueue.wait): counted as waiting, and woken by a cancel too. */
  set awaited(on: boolean) {
    if (on || this.hooks) this.hooksOf().waiting = on
  }

  private hooksOf(): Hooks {
    return (this.hooks ??= {})
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
    const id = stored.event.id
    if (id <= this.skipThrough) return true
    if (this.expected !== undefined) {
      // A reader never skips an event: on a gap it is ended, and resumes from its cursor (or is told to start over).
      if (id !== this.expected) {
        if (id < this.expected) this.owner.repeat?.(this, this.expected - 1, id)
        else this.owner.gap?.(this, this.expected, id)
        this.end('lagged')
        return false
      }
      this.expected = id + 1
    }
    const resolve = this.hooks?.waiter
    if (resolve) {
      this.hooks!.waiter = undefined
      resolve({ value: stored, done: false })
      return true
    }
    if (this.size >= this.limit) {
      this.end('lagged')
      return false
    }
    if (this.queue === NOTHING) this.queue = [stored]
    else this.queue.push(stored)
    if (this.size === 1 && !this.signals?.size) this.owner.wake(this)
    return true
  }

  /** Room side: an ephemeral signal, kept only if this reader asked for them; a newer one of the same kind from the same user replaces it. */
  signal(signal: Signal): void {
    if (this.state !== 'open' || this.self === undefined || signal.user === this.self) return
    this.signals ??= new Map()
    const idle = !this.pending
    const key = `${signal.type}\n${signal.user}`
    // Re-inserted so the signals go out in the order they came.
    this.signals.delete(key)
    this.signals.set(key, signal)
    if (idle) this.owner.wake(this)
  }

  /** The signals waiting (a typing signal kept too long dropped: see currentSignals), and empties them. */
  takeSignals(): Signal[] {
    if (!this.signals?.size) return []
    const out = [...this.signals.values()]
    this.signals.clear()
    return currentSignals(out)
  }

  /** Everything queued, oldest first; empties the queue. */
  take(): StoredEvent[] {
    if (this.size === 0) return []
    const out = this.head === 0 ? this.queue : this.queue.slice(this.head)
    this.queue = NOTHING
    this.head = 0
    return out
  }

  /** What take() and takeSignals() have, as the one frame every transport sends ([] when empty). */
  takeFrame(): string | Buffer {
    return frameFor(this.take(), this.takeSignals())
  }

  /**
   * Resolves on the first of: something to take (at once if there is), `timeoutMs` passing,
   * `abort` (the client went away), or the subscription ending (room closed, lagged,
   * cancelled). It releases nothing itself: the reader takes, then cancels.
   */
  wait(timeoutMs: number, abort?: Abortable): Promise<WaitResult> {
    if (this.pending) return Promise.resolve('readable')
    if (this.state !== 'open') return Promise.resolve(this.state)
    if (abort?.aborted) return Promise.resolve('aborted')
    return new Promise<WaitResult>((resolve) => {
      const finish = (result: WaitResult) => {
        clearTimeout(timer)
        abort?.removeEventListener('abort', onAbort)
        this.onReadable = undefined
        this.hooksOf().waiting = false
        resolve(result)
      }
      const onAbort = () => finish('aborted')
      const timer = setTimeout(() => finish('timeout'), timeoutMs)
      abort?.addEventListener('abort', onAbort, { once: true })
      this.hooksOf().waiting = true
      // Called once per tick when something arrived, and when it ends (a cancel included).
      this.onReadable = () => finish(this.pending || this.state === 'open' ? 'readable' : this.state)
    })
  }

  /** The reader lets go: ends and releases it. Safe to call any number of times. */
  cancel(): void {
    this.end('cancelled')
  }

  /** The reader leaves the room (a leave link, sign-out): ends (the transport is told), then leaves at once. */
  leave(): void {
    const onLeave = this.hooks?.onLeave
    this.end('left')
    onLeave?.()
  }

  /** A moderator put the reader out (kick, ban): it ends, and its transport says why (`removal`). */
  remove(removal: Removal): void {
    if (this.state !== 'open') return
    this.removal = removal
    this.end('removed')
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
        this.queue = NOTHING
        this.head = 0
      } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head)
        this.head = 0
      }
      return Promise.resolve({ value, done: false })
    }
    if (this.state !== 'open') return Promise.resolve({ value: undefined, done: true })
    return new Promise((resolve) => {
      this.hooksOf().waiter = resolve
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
    this.queue = NOTHING
    this.head = 0
    this.signals?.clear()
    const hooks = this.hooks
    if (hooks?.abort) {
      hooks.abort.signal.removeEventListener('abort', hooks.abort.listener)
      hooks.abort = undefined
    }
    this.owner.release(this)
    this.runOnEnd()
    const waiter = hooks?.waiter
    if (hooks) hooks.waiter = undefined
    waiter?.({ value: undefined, done: true })
    // A transport is told of an end it did not ask for; a pending wait() hears every end.
    if (state !== 'cancelled' || this.waiting) this.onReadable?.(this)
  }

  private runOnEnd(): void {
    const onEnd = this.hooks?.onEnd
    if (this.hooks) {
      this.hooks.onEnd = undefined
      this.hooks.onLeave = undefined
    }
    onEnd?.()
  }
}
