import type { EventDraft, Signal, StoredEvent } from '../event.js'
import type { FloodGuard } from '../flood.js'
import type { PresenceStore, Roster } from '../presence.js'

export interface BrokerListener {
  /** Every event, this node's and others', in id order. */
  event(stored: StoredEvent): void
  /** Ephemeral signals from any node; may be lost, never stored. */
  signal(signal: Signal): void
}

/** What the local presence store publishes through: the room's own join and leave. */
export interface PresenceRoom {
  join(user: string, avatar?: string): Promise<StoredEvent>
  left(user: string, avatar?: string): Promise<StoredEvent>
}

/**
 * Decides which events exist and in what order; the Chatroom decides who hears them here.
 * A broker delivers every event, its own and other nodes', to the listener in id order.
 * It also supplies what must be shared by every process that shares it: the presence store
 * and the flood limits, so nothing above it needs to know which broker it is.
 */
export interface Broker {
  /** Assigns the next consecutive id and a timestamp, stores it in the archive, delivers it. */
  publish(draft: EventDraft): Promise<StoredEvent>
  /** The archived events with id > after, oldest first (at most the archive size). */
  archive(after: number): Promise<StoredEvent[]>
  /** Sends an ephemeral signal to every node, without storing it. */
  signal(signal: Signal): void
  /** Who is online in the whole room, when the broker keeps that (several processes). */
  roster?(): Promise<Roster>
  /** Where join and leave are decided; `ttlMs` bounds how long a dead process's users linger. */
  presenceStore(room: PresenceRoom, ttlMs: number): PresenceStore
  /** At most `limit` takes per key in any `windowMs`; `scope` keeps different limits apart. */
  floodGuard(scope: string, limit: number, windowMs: number): FloodGuard
  /** Whether the broker can take events now (for /readyz). */
  ready(): Promise<boolean>
  /** The one listener of this node; set once by the Chatroom before any publish. */
  listen(listener: BrokerListener): void
  close(): Promise<void>
}
