import type { Roster } from '../chatroom.js'
import type { EventDraft, Signal, StoredEvent } from '../event.js'

export interface BrokerListener {
  /** Every event, this node's and others', in id order. */
  event(stored: StoredEvent): void
  /** Ephemeral signals from any node; may be lost, never stored. */
  signal(signal: Signal): void
}

/**
 * Decides which events exist and in what order; the Chatroom decides who hears them here.
 * A broker delivers every event, its own and other nodes', to the listener in id order.
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
  /** Whether the broker can take events now (for /readyz). */
  ready(): Promise<boolean>
  /** The one listener of this node; set once by the Chatroom before any publish. */
  listen(listener: BrokerListener): void
  close(): Promise<void>
}
