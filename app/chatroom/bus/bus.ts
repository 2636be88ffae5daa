import type { Signal, StoredEvent } from '../event.js'
import type { FloodGuard } from '../flood.js'
import type { NameClaims } from '../names.js'
import type { PresenceStore, RosterEntry } from '../presence.js'

export interface BusListener {
  /** A committed event of a room from another process (in the order the bus got them; the room reorders). */
  event(stored: StoredEvent, room: string): void
  /** Ephemeral signals of a room from any process; may be lost, never stored. */
  signal(signal: Signal, room: string): void
  /** A session was signed out somewhere: forget it here too (its hash). */
  revoked(hash: string): void
}

/** What a presence store publishes through: the room's own join and leave (committed to its log). */
export interface PresenceRoom {
  join(user: string, avatar?: string, via?: string, guest?: true): Promise<unknown>
  left(user: string, avatar?: string, via?: string, guest?: true): Promise<unknown>
}

/**
 * Carries, never keeps: committed events and signals between processes, plus what every
 * process on it must share (presence leases, flood limits). Ids and history never come from
 * the bus (the store owns the log), so a bus that restarts empty loses nothing.
 */
export interface Bus {
  /** Whether other processes share the room through this bus (then the room also catches up from the store). */
  readonly shared: boolean
  /** Carries a room's committed event to the other processes that watch the room (this one has delivered it already). Best effort. */
  publish(stored: StoredEvent, room: string): void
  /** Sends a room's ephemeral signal to every process watching it, this one included. */
  signal(signal: Signal, room: string): void
  /** This process has the room loaded: its events and signals are brought here from now on. */
  watch(room: string): void
  /** This process let go of the room: its events are no longer sent here. */
  unwatch(room: string): void
  /** Who is online in the whole room, when the bus keeps that (several processes). */
  roster?(room: string): Promise<RosterEntry[]>
  /** Where a room's join and leave are decided; `ttlMs` bounds how long a dead process's users linger. */
  presenceStore(room: PresenceRoom, ttlMs: number, name: string): PresenceStore
  /** At most `limit` takes per key in any `windowMs`; `scope` keeps different limits apart. */
  floodGuard(scope: string, limit: number, windowMs: number): FloodGuard
  /** Who holds which name, shared by every process on the bus. */
  readonly names: NameClaims
  /** Tells every process, this one included, that a session was signed out. */
  revoke(hash: string): void
  /** What this process has read from the bus's subscriber connection (bytes, whatever it carried) and how many rooms it watches; for /metrics. */
  received?(): { bytes: number; rooms: number }
  /** Whether the bus answers now (for /readyz). */
  ready(): Promise<boolean>
  /** The one listener of this process; set once by the Chatroom at start. */
  listen(listener: BusListener): void
  close(): Promise<void>
}

