import { currentSignals, type Signal, type StoredEvent } from './event.js'
import type { Removal } from './subscription.js'

/** What a follower needs of a room: its name, and to be let go of. */
export interface FollowedRoom {
  readonly name: string
  /** The follower no longer reads this room (it asked, or the room ended it). */
  unfollow(follower: Follower): void
}

/** Why a room ended for a follower: its queue overflowed, the person left it or was put out of it (`removal` says how), the server is shutting down. */
export type FollowEnd = 'lagged' | 'left' | 'removed' | 'closed'

/**
 * What one room has for a follower when its reader takes (only rooms that had something since
 * the last take): events, signals (the newest per person and kind), or that the room ended for it.
 */
export interface Taken {
  room: FollowedRoom
  events: StoredEvent[]
  signals: Signal[]
  ended: FollowEnd | undefined
  /** With `removed`: the kick or ban. */
  removal?: Removal | undefined
}

/** The signals of a room that had none: shared, never written (most rooms' news is events alone). */
const NO_SIGNALS: readonly Signal[] = []

/** Followers with something to read this tick: one timer for all of them (the coalescing point). */
let waking: Follower[] = []

function wakeAll(): void {
  const now = waking
  waking = []
  for (const follower of now) {
    follower.scheduled = false
    if (follower.pending) follower.onReadable?.(follower)
  }
}

/**
 * One reader of many rooms at once: the person's stream of one connection, entered in every
 * room it follows from that room's newest event. A quiet room costs it one slot in a list and
 * one entry in the room's set of followers, nothing else (DESIGN: a reader's bounded queue over
 * one or more rooms); a room that speaks gets a queue of its own until the reader takes it.
 *
 * Every room hands it its events in id order with no gap (Room.append; a room whose window
 * starts over ends it as lagged instead), so nothing per room is kept between takes. Each
 * room's queue is bounded as a subscription's is: past the room's limit of events not taken, that room ends
 * as lagged (its reader resumes it from its cursor) and the others go on.
 */
export class Follower {
  /** Called once per tick after events, signals or an end arrived (whatever arrived in the same tick is read together). */
  onReadable: ((follower: Follower) => void) | undefined = undefined
  /** Set while a wake is scheduled (see wakeAll). */
  scheduled = false
  /** Let go of by its reader: it takes nothing more. */
  closed = false
  private readonly rooms: FollowedRoom[] = []
  /** The rooms with something for the reader, in the order they had it: a few at most between two takes, so a list. */
  private queued: Taken[] | undefined = undefined

  /**
   * @param holder whose it is (their member key), for a leave of theirs to find it
   * @param name their name (a room's leave line names them), whose own typing is not handed back
   * @param typing whether they want the rooms' typing signals
   */
  constructor(
    readonly holder: string,
    readonly name: string,
    readonly transport: string,
    readonly tab: string | undefined,
    private readonly typing = true,
  ) {}

  /** How many rooms it reads. */
  get size(): number {
    return this.rooms.length
  }

  /** Whether take() has anything. */
  get pending(): boolean {
    return this.queued !== undefined && this.queued.length > 0
  }

  /** The room of that name it reads, if it does. */
  room(name: string): FollowedRoom | undefined {
    for (const room of this.rooms) if (room.name === name) return room
    return undefined
  }

  has(name: string): boolean {
    return this.room(name) !== undefined
  }

  /** Room side: it reads this room from now on. */
  add(room: FollowedRoom): void {
    this.rooms.push(room)
  }

  /** Room side: the room's next event; past `limit` events not taken, the room ends for it as lagged. */
  push(room: FollowedRoom, stored: StoredEvent, limit: number): void {
    const pending = this.pendingOf(room)
    if (pending.events.length >= limit) return this.end(room, 'lagged')
    pending.events.push(stored)
  }

  /** Room side: an ephemeral signal, kept only if the reader asked for them; a newer one of the same kind from the same user replaces it. */
  signal(room: FollowedRoom, signal: Signal): void {
    if (!this.typing || signal.user === this.name) return
    const pending = this.pendingOf(room)
    if (pending.signals === NO_SIGNALS) pending.signals = []
    const { signals } = pending
    // The newer replaces the older, and goes out in the order it came.
    const older = signals.findIndex((s) => s.type === signal.type && s.user === signal.user)
    if (older >= 0) signals.splice(older, 1)
    signals.push(signal)
  }

  /** Room side: the room ends for this reader (it lagged, the person left, the room closed). What it had queued is dropped: the reader resumes from its cursor. */
  end(room: FollowedRoom, ended: FollowEnd, removal?: Removal): void {
    if (!this.forget(room)) return
    room.unfollow(this)
    const pending = this.pendingOf(room)
    pending.events = []
    pending.signals = NO_SIGNALS as Signal[]
    pending.ended = ended
    if (removal) pending.removal = removal
  }

  /** Reader side: it stops reading the room of that name. Returns whether it read it. */
  unfollow(name: string): boolean {
    // What it had queued goes too, an end included (a room that ended is no longer read, but its end may wait to be taken).
    const at = this.queued?.findIndex((p) => p.room.name === name) ?? -1
    if (at >= 0) this.queued!.splice(at, 1)
    const room = this.room(name)
    if (!room) return false
    this.forget(room)
    room.unfollow(this)
    return true
  }

  /** Reader side: the connection ends; every room lets go of it. Safe to call any number of times. */
  cancel(): void {
    if (this.closed) return
    this.closed = true
    this.queued = undefined
    for (const room of this.rooms.splice(0)) room.unfollow(this)
  }

  /** What every room has for it, by room, and empties it (rooms that ended are said once; a typing signal kept too long is dropped: see currentSignals). */
  take(): Taken[] {
    const queued = this.queued
    this.queued = undefined
    if (!queued) return []
    for (const pending of queued) if (pending.signals !== NO_SIGNALS) pending.signals = currentSignals(pending.signals)
    return queued
  }

  private forget(room: FollowedRoom): boolean {
    const at = this.rooms.indexOf(room)
    if (at < 0) return false
    this.rooms[at] = this.rooms[this.rooms.length - 1]!
    this.rooms.pop()
    return true
  }

  private pendingOf(room: FollowedRoom): Taken {
    const queued = (this.queued ??= [])
    let pending: Taken | undefined
    for (const p of queued) {
      if (p.room === room) {
        pending = p
        break
      }
    }
    if (!pending) {
      pending = { room, events: [], signals: NO_SIGNALS as Signal[], ended: undefined }
      queued.push(pending)
    }
    if (!this.scheduled && !this.closed) {
      this.scheduled = true
      if (waking.push(this) === 1) setImmediate(wakeAll)
    }
    return pending
  }
}
