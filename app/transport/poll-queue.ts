import { Follower, type Taken } from '../chatroom/follower.js'
import type { Room } from '../chatroom/room.js'
import type { Subscription } from '../chatroom/subscription.js'
import type { Abortable } from '../chatroom/subscription.js'

/** One room a poll queue reads: where its reader stands, and what reads it for them. */
export interface Kept {
  of: Room
  /** The id of the last event handed to the reader (or where it was entered): the cursor the next poll must come back with. */
  position: number
  /** Its own subscription (the person's own log, the lobby, a room entered with something to hand over); absent: the queue's follower reads it. */
  subscription: Subscription | undefined
}

/** Whether a kept room goes to a poll that comes back with this cursor: the id the last answer gave, and (if it says one) the same log. */
export function handsOver(kept: Kept, cursor: { lastReceived?: number | undefined; epoch?: string | undefined } | undefined): boolean {
  return cursor?.lastReceived !== undefined && cursor.lastReceived === kept.position && (cursor.epoch === undefined || cursor.epoch === kept.of.epoch)
}

/**
 * What one page's long poll of the person's stream reads, kept on the server between two of its
 * polls (Zulip's event queue): every room it follows stays entered, and what they say meanwhile
 * waits here, so the next poll hands it over instead of entering every room again. A room is
 * handed over only to a poll that comes back with the cursor the last answer gave for it (an
 * answer that never reached its page comes back with the cursor before it: that room is entered
 * again from there, as without a queue), so nothing is lost or doubled either way.
 */
export class PollQueue {
  /** By room name (the person's own log as `me`). */
  readonly entries = new Map<string, Kept>()
  /** Reads the rooms with nothing to hand over: a quiet room costs a slot, not a subscription. */
  readonly follower: Follower
  /** A poll is using it now. */
  busy = false
  /** When its last poll ended (for the sweep). */
  idleSince = 0
  /** The session it belongs to ended: its poll answers 401, and it is not kept. */
  signedOut = false
  /** Let go of: nothing reads through it any more. */
  closed = false
  /** The waiting poll's wake-up, if one waits. */
  private wake: (() => void) | undefined
  /** Unbinds it from its session (set by whoever binds it). */
  unbind: () => void = () => {}
  /** Told once when it is let go of (whoever keeps it forgets it then). */
  onClose: (() => void) | undefined = undefined

  constructor(
    /** Where it is kept (session, page, typing); undefined for a poll's own queue, let go of when it answers. */
    readonly key: string | undefined,
    holder: string,
    name: string,
    /** The page it reads for (its id), if the poll said it. */
    readonly tab: string | undefined,
    readonly typing: boolean,
  ) {
    this.follower = new Follower(holder, name, 'longpolling', tab, typing)
  }

  /** Whether a poll would answer at once: something to hand over, or a room that ended for it. */
  get pending(): boolean {
    if (this.follower.pending) return true
    for (const kept of this.entries.values()) if (kept.subscription && (kept.subscription.pending || kept.subscription.closed)) return true
    return false
  }

  /** Reads the room from `position`, through its own subscription or (none) the follower. */
  add(room: string, of: Room, position: number, subscription: Subscription | undefined): void {
    // Let go of while its poll was entering rooms (signed out meanwhile): nothing more is kept.
    if (this.closed) return this.letGo(room, subscription)
    this.entries.set(room, { of, position, subscription })
  }

  /** Stops reading one room (it ended, or the next poll enters it again from elsewhere). */
  drop(room: string): void {
    const kept = this.entries.get(room)
    if (!kept) return
    this.entries.delete(room)
    this.letGo(room, kept.subscription)
  }

  /** Whatever reads the room for it stops: its own subscription, else the follower's slot. */
  private letGo(room: string, subscription: Subscription | undefined): void {
    if (subscription) subscription.cancel()
    else this.follower.unfollow(room)
  }

  /** Stops reading every room. */
  reset(): void {
    for (const room of [...this.entries.keys()]) this.drop(room)
  }

  /** What the follower has, by room name. */
  takeFollowed(): Map<string, Taken> {
    const out = new Map<string, Taken>()
    for (const taken of this.follower.take()) out.set(taken.room.name, taken)
    return out
  }

  /** Resolves on the first of: something to hand over, `timeoutMs`, the reader gone, the queue let go of. One timer, whatever the number of rooms. */
  wait(timeoutMs: number, gone: Abortable): Promise<void> {
    if (this.pending || this.closed || gone.aborted) return Promise.resolve()
    return new Promise<void>((resolve) => {
      const finish = () => {
        if (this.wake !== finish) return
        this.wake = undefined
        clearTimeout(timer)
        gone.removeEventListener('abort', finish)
        this.follower.onReadable = undefined
        for (const kept of this.entries.values()) if (kept.subscription) kept.subscription.onReadable = undefined
        resolve()
      }
      this.wake = finish
      const timer = setTimeout(finish, timeoutMs)
      gone.addEventListener('abort', finish)
      this.follower.onReadable = finish
      for (const kept of this.entries.values()) if (kept.subscription) kept.subscription.onReadable = finish
    })
  }

  /** Let go of: every room stops, a waiting poll answers. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.unbind()
    this.reset()
    this.follower.cancel()
    this.wake?.()
    this.onClose?.()
  }
}

/** Queues one session may keep at once (one per page): past it, a page's polls keep none. */
const PER_SESSION = 16

/**
 * The poll queues of this process, by session and page (and, for a page of one room, that room),
 * each kept `keepMs` after its poll ended for the page's next poll. One sweep for all of them,
 * not a timer each.
 */
export class PollQueues {
  private readonly kept = new Map<string, PollQueue>()
  /** Each session's queues (PER_SESSION at most): what a page's leave looks through. */
  private readonly perSession = new Map<string, Set<PollQueue>>()
  private readonly timer: NodeJS.Timeout | undefined
  /** The server closed: nothing more is kept. */
  private closed = false

  constructor(private readonly keepMs: number) {
    if (keepMs <= 0) return
    this.timer = setInterval(() => this.sweep(), Math.min(1000, Math.max(50, keepMs / 2)))
    this.timer.unref()
  }

  /** Queues kept now (in use or waiting for their page). */
  get size(): number {
    return this.kept.size
  }

  /**
   * The queue for a poll of this session's page: the one kept for it, else a new one kept from
   * now; a poll's own (kept for nobody) when the page's queue is in use by another poll (two
   * clients of one page, a poll overtaking one not yet answered) or the session keeps too many.
   * `room`: a poll of that one room (a page of one room), kept apart from the person's stream.
   */
  open(session: string | null, tab: string | undefined, typing: boolean, make: (key: string | undefined) => PollQueue, room?: string): PollQueue {
    if (!session || this.keepMs <= 0 || this.closed) return make(undefined)
    const key = `${session}\n${tab ?? ''}\n${typing ? 1 : 0}${room === undefined ? '' : `\n${room}`}`
    const found = this.kept.get(key)
    if (found && !found.closed) {
      if (found.busy) return make(undefined)
      found.busy = true
      return found
    }
    if (found) this.forget(found)
    let queues = this.perSession.get(session)
    if (queues && queues.size >= PER_SESSION) return make(undefined)
    const queue = make(key)
    queue.busy = true
    // Let go of by its session's end or by its own poll: no longer kept, at once.
    queue.onClose = () => this.forget(queue)
    this.kept.set(key, queue)
    if (!queues) this.perSession.set(session, (queues = new Set()))
    queues.add(queue)
    return queue
  }

  /** The poll using it answered: kept for the page's next poll, unless it was let go of. */
  done(queue: PollQueue): void {
    queue.busy = false
    queue.idleSince = Date.now()
    if (queue.key === undefined || queue.closed) {
      queue.close()
      this.forget(queue)
    }
  }

  /** Lets go of queues whose page has not come back within keepMs. */
  sweep(now = Date.now()): void {
    for (const queue of this.kept.values()) {
      if (queue.closed || (!queue.busy && now - queue.idleSince > this.keepMs)) {
        queue.close()
        this.forget(queue)
      }
    }
  }

  /** The page `tab` of this session said it is leaving (its leave beacon or form): its queues go at once. */
  closePage(session: string | null, tab: string | undefined): void {
    if (!session || tab === undefined) return
    for (const queue of [...(this.perSession.get(session) ?? [])]) if (queue.tab === tab) queue.close()
  }

  /** The server closes: every queue is let go of. */
  close(): void {
    this.closed = true
    clearInterval(this.timer)
    for (const queue of this.kept.values()) queue.close()
    this.kept.clear()
    this.perSession.clear()
  }

  private forget(queue: PollQueue): void {
    if (queue.key === undefined || this.kept.get(queue.key) !== queue) return
    this.kept.delete(queue.key)
    const session = queue.key.slice(0, queue.key.indexOf('\n'))
    const queues = this.perSession.get(session)
    queues?.delete(queue)
    if (queues?.size === 0) this.perSession.delete(session)
  }
}
