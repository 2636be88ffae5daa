import type { EventDraft, StoredEvent } from '../event.js'
import { newEpoch, numbered, type SessionRecord, type SessionStore, type Store } from './store.js'

/** Sessions in a Map (STORE=memory). */
export class MemorySessions implements SessionStore {
  private readonly map = new Map<string, SessionRecord>()
  /** Each address's sessions, so a sign-in's trim looks at that address only. */
  private readonly byAddress = new Map<string, Set<string>>()
  async create(hash: string, record: SessionRecord): Promise<void> {
    this.map.set(hash, { ...record })
    const mine = this.byAddress.get(record.address) ?? new Set()
    this.byAddress.set(record.address, mine.add(hash))
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
    this.remove(hash)
  }
  async prune(idleBefore: number, createdBefore: number): Promise<number> {
    let n = 0
    for (const [hash, r] of this.map) if (r.seenAt < idleBefore || r.createdAt < createdBefore) n += Number(this.remove(hash))
    return n
  }
  async trim(address: string, keep: number, current: string): Promise<string[]> {
    const others = [...(this.byAddress.get(address) ?? [])].filter((hash) => hash !== current)
    if (others.length < keep) return []
    const newestFirst = others.sort((a, b) => this.map.get(b)!.seenAt - this.map.get(a)!.seenAt)
    const ended = newestFirst.slice(Math.max(0, keep - 1))
    for (const hash of ended) this.remove(hash)
    return ended
  }
  async count(): Promise<number> {
    return this.map.size
  }
  private remove(hash: string): boolean {
    const record = this.map.get(hash)
    if (!record) return false
    this.map.delete(hash)
    const mine = this.byAddress.get(record.address)
    mine?.delete(hash)
    if (mine?.size === 0) this.byAddress.delete(record.address)
    return true
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
