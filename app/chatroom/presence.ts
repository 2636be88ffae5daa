import type { Chatroom } from './chatroom.js'

export interface Member {
  name: string
  avatar?: string | undefined
}

export interface PresenceOptions {
  /** How long after a user's last connection goes their leave is published. */
  graceMs: number
  /** Told when publishing a join or leave fails (the broker is down). */
  onError?: (error: unknown) => void
}

interface State {
  avatar: string | undefined
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
 * a reload or a second tab makes no noise. One sweep timer for everyone, no timer per user.
 */
export class Presence {
  private readonly room: Chatroom
  private readonly options: PresenceOptions
  private readonly users = new Map<string, State>()
  private sweeper: NodeJS.Timeout | undefined

  constructor(room: Chatroom, options: PresenceOptions) {
    this.room = room
    this.options = options
  }

  start(): void {
    if (this.sweeper) return
    const every = Math.min(1000, Math.max(25, this.options.graceMs / 4))
    this.sweeper = setInterval(() => this.sweep(), every)
    this.sweeper.unref()
  }

  stop(): void {
    clearInterval(this.sweeper)
    this.sweeper = undefined
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
      this.settle(member.name, state)
    }
  }

  /** Keeps the user online for ttlMs from now through one transport (refresh, long polling). */
  touch(member: Member, transport: string, ttlMs: number): void {
    const state = this.arrive(member)
    state.leases.set(transport, Math.max(state.leases.get(transport) ?? 0, Date.now() + ttlMs))
  }

  /** The user left through this transport's leave link: gone at once unless something else holds them. */
  drop(member: Member, transport: string): void {
    const state = this.users.get(member.name)
    if (!state) return
    state.leases.delete(transport)
    if (this.active(state)) return
    this.users.delete(member.name)
    this.publishLeave(member.name, state.avatar)
  }

  isOnline(name: string): boolean {
    return this.users.has(name)
  }

  /** Users this node counts as online (including those within their grace period). */
  get size(): number {
    return this.users.size
  }

  /** Expires leases and publishes the leaves whose grace has passed. */
  sweep(now = Date.now()): void {
    for (const [name, state] of this.users) {
      for (const [transport, until] of state.leases) if (until <= now) state.leases.delete(transport)
      if (state.leaveAt === undefined) {
        if (!this.active(state)) state.leaveAt = now + this.options.graceMs
      } else if (this.active(state)) {
        state.leaveAt = undefined
      }
      if (state.leaveAt !== undefined && state.leaveAt <= now) {
        this.users.delete(name)
        this.publishLeave(name, state.avatar)
      }
    }
  }

  private active(state: State): boolean {
    return state.held > 0 || state.leases.size > 0
  }

  private arrive(member: Member): State {
    const existing = this.users.get(member.name)
    if (existing) {
      existing.leaveAt = undefined
      return existing
    }
    const state: State = { avatar: member.avatar, held: 0, leases: new Map(), leaveAt: undefined }
    this.users.set(member.name, state)
    this.room.join(member.name, member.avatar).catch((error: unknown) => this.options.onError?.(error))
    return state
  }

  private settle(name: string, state: State): void {
    if (this.users.get(name) !== state || this.active(state)) return
    state.leaveAt = Date.now() + this.options.graceMs
  }

  private publishLeave(name: string, avatar: string | undefined): void {
    this.room.leave(name, avatar).catch((error: unknown) => this.options.onError?.(error))
  }
}
