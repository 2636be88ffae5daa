import { noSet, owned } from '../empty.js'
import type { Signal, StoredEvent } from '../event.js'
import { MemoryFloodGuard, type FloodGuard } from '../flood.js'
import { MemoryNameClaims } from '../names.js'
import { isGuest, type Member, type PresenceStore } from '../presence.js'
import type { Bus, BusListener, PresenceRoom } from './bus.js'

/** One process: the room itself hears join and leave. */
export class LocalPresenceStore implements PresenceStore {
  private readonly room: PresenceRoom
  /** Who the log shows present, as this store published it (or found it at start): a join only for someone not listed. */
  private listed = noSet<string>()
  constructor(room: PresenceRoom) {
    this.room = room
  }
  /** At start: the people the log still shows present (the process before this one had them). */
  listedAlready(names: Iterable<string>): void {
    for (const name of names) (this.listed = owned(this.listed)).add(name)
  }
  async arrive(member: Member): Promise<void> {
    if (this.listed.has(member.name)) return
    this.listed = owned(this.listed)
    this.listed.add(member.name)
    await this.room.join(member.name, member.avatar, member.provider?.name, isGuest(member))
  }
  async depart(member: Member): Promise<void> {
    if (!this.listed.delete(member.name)) return
    await this.room.left(member.name, member.avatar, member.provider?.name, isGuest(member))
  }
}

/** The default bus (BROKER=memory): one process, nothing to carry between processes. */
export class LocalBus implements Bus {
  readonly shared = false
  private listener: BusListener = { event: () => {}, signal: () => {}, revoked: () => {} }
  readonly names = new MemoryNameClaims()

  revoke(hash: string): void {
    this.listener.revoked(hash)
  }

  publish(_stored: StoredEvent, _room: string): void {}

  signal(signal: Signal, room: string): void {
    this.listener.signal(signal, room)
  }

  watch(_room: string): void {}

  unwatch(_room: string): void {}

  presenceStore(room: PresenceRoom): PresenceStore {
    return new LocalPresenceStore(room)
  }

  floodGuard(_scope: string, limit: number, windowMs: number): FloodGuard {
    return new MemoryFloodGuard(limit, windowMs)
  }

  ready(): Promise<boolean> {
    return Promise.resolve(true)
  }

  listen(listener: BusListener): void {
    this.listener = listener
  }

  async close(): Promise<void> {}
}
