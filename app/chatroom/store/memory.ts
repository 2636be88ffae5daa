import type { EventDraft, StoredEvent } from '../event.js'
import { newEpoch, numbered, type SessionRecord, type SessionStore, type Store } from './store.js'

/** Sessions in a Map (STORE=memory). */
export class MemorySessions implements SessionStore {
  private readonly map = new Map<string, SessionRecord>()
  async create(hash: string, record: SessionRecord): Promise<void> {
    this.map.set(hash, { ...record })
  }
  async read(hash: string): Promise<SessionRecord | undefined> {
    const record = this.map.get(hash)
    return record && { ...record }
  }
  async touch(hash: string, seenAt: number): Promise<void> {
    const record = this.map.get(hash)
    if (record) record.seenAt = seenAt
  }
  async delete(hash: string): Promise<void> {
    this.map.delete(hash)
  }
  async prune(idleBefore: number, createdBefore: number): Promise<number> {
    let n = 0
    for (const [hash, r] of this.map) if (r.seenAt < idleBefore || r.createdAt < createdBefore) n += Number(this.map.delete(hash))
    return n
  }
}

/** A log that lives as long as the process (STORE=memory): tests, or explicitly ephemeral rooms. */
export class MemoryStore implements Store {
  readonly epoch = newEpoch()
  readonly sessions: MemorySessions

  /** `sessions`: another store's, to keep people signed in across a new log (tests). */
  constructor(sessions = new MemorySessions()) {
    this.sessions = sessions
  }
  private events: StoredEvent[] = []
  private last = 0

  async open(): Promise<void> {}

  append(drafts: readonly EventDraft[]): Promise<StoredEvent[]> {
    const stored = numbered(drafts, this.last + 1, Date.now())
    this.last += stored.length
    this.events.push(...stored)
    return Promise.resolve(stored)
  }

  after(after: number, limit: number): Promise<StoredEvent[]> {
    const first = this.events[0]?.event.id ?? this.last + 1
    const from = Math.max(0, after - first + 1)
    return Promise.resolve(this.events.slice(from, from + limit))
  }

  before(before: number, limit: number): Promise<StoredEvent[]> {
    const first = this.events[0]?.event.id ?? this.last + 1
    const end = Math.max(0, Math.min(this.events.length, before - first))
    return Promise.resolve(this.events.slice(Math.max(0, end - limit), end))
  }

  lastId(): Promise<number> {
    return Promise.resolve(this.last)
  }

  prune(maxEvents: number, maxAgeMs: number): Promise<number> {
    const before = this.events.length
    if (maxEvents > 0 && this.events.length > maxEvents) this.events = this.events.slice(-maxEvents)
    if (maxAgeMs > 0) {
      const cutoff = Date.now() - maxAgeMs
      const keep = this.events.findIndex((s) => s.event.timestamp >= cutoff)
      this.events = keep < 0 ? [] : this.events.slice(keep)
    }
    return Promise.resolve(before - this.events.length)
  }

  ready(): Promise<boolean> {
    return Promise.resolve(true)
  }

  async close(): Promise<void> {}
}
