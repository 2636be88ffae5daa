import { createEvent, type EventDraft, type StoredEvent } from '../event.js'
import type { Broker } from './broker.js'

/** The default broker: one process, nothing to install. */
export class MemoryBroker implements Broker {
  private lastId = 0
  private readonly events: StoredEvent[] = []
  private listener: (stored: StoredEvent) => void = () => {}
  private readonly archiveSize: number

  constructor(archiveSize: number) {
    this.archiveSize = archiveSize
  }

  publish(draft: EventDraft): Promise<StoredEvent> {
    const stored = createEvent(++this.lastId, Date.now(), draft)
    this.events.push(stored)
    if (this.events.length > this.archiveSize) this.events.shift()
    this.listener(stored)
    return Promise.resolve(stored)
  }

  archive(after: number): Promise<StoredEvent[]> {
    return Promise.resolve(this.events.filter((s) => s.event.id > after))
  }

  listen(listener: (stored: StoredEvent) => void): void {
    this.listener = listener
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}
