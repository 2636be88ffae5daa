import { createEvent, type EventDraft, type Signal, type StoredEvent } from '../event.js'
import type { Broker, BrokerListener } from './broker.js'

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
