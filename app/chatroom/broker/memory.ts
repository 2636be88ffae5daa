import { createEvent, type EventDraft, type Signal, type StoredEvent } from '../event.js'
import { MemoryFloodGuard, type FloodGuard } from '../flood.js'
import type { Member, PresenceStore } from '../presence.js'
import type { Broker, BrokerListener, PresenceRoom } from './broker.js'

/** One process: the room itself hears join and leave. */
export class LocalPresenceStore implements PresenceStore {
  private readonly room: PresenceRoom
  constructor(room: PresenceRoom) {
    this.room = room
  }
  async arrive(member: Member): Promise<void> {
    await this.room.join(member.name, member.avatar)
  }
  async depart(member: Member): Promise<void> {
    await this.room.left(member.name, member.avatar)
  }
}

/** The default broker: one process, nothing to install. */
export class MemoryBroker implements Broker {
  private lastId = 0
  private readonly events: StoredEvent[] = []
  private listener: BrokerListener = { event: () => {}, signal: () => {} }
  private readonly archiveSize: number

  constructor(archiveSize: number) {
    this.archiveSize = archiveSize
  }

  publish(draft: EventDraft): Promise<StoredEvent> {
    const stored = createEvent(++this.lastId, Date.now(), draft)
    this.events.push(stored)
    if (this.events.length > this.archiveSize) this.events.shift()
    this.listener.event(stored)
    return Promise.resolve(stored)
  }

  archive(after: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.events.filter((s) => s.event.id > after))
  }

  signal(signal: Signal): void {
    this.listener.signal(signal)
  }

  presenceStore(room: PresenceRoom): PresenceStore {
    return new LocalPresenceStore(room)
  }

  floodGuard(_scope: string, limit: number, windowMs: number): FloodGuard {
    return new MemoryFloodGuard(limit, windowMs)
  }

  ready(): Promise<boolean> {
    return Promise.resolve(true)
  }

  listen(listener: BrokerListener): void {
    this.listener = listener
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}
