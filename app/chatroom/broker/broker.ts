import type { EventDraft, StoredEvent } from '../event.js'

/**
 * Decides which events exist and in what order; the Chatroom decides who hears them here.
 * A broker delivers every event, its own and other nodes', to the listener in id order.
 */
export interface Broker {
  /** Assigns the next consecutive id and a timestamp, stores it in the archive, delivers it. */
  publish(draft: EventDraft): Promise<StoredEvent>
  /** The archived events with id > after, oldest first (at most the archive size). */
  archive(after: number): Promise<StoredEvent[]>
  /** The one listener of this node; set once by the Chatroom before any publish. */
  listen(listener: (stored: StoredEvent) => void): void
  close(): Promise<void>
}
