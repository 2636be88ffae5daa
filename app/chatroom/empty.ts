/**
 * One empty Map and one empty Set shared by every room until it writes to one of its own: most
 * rooms loaded on a process have nobody muted, banned, typing or even reading, and an empty Map
 * costs ~170 bytes of heap (a dozen per room made 10,000 idle rooms cost 20 MB). Reads go to the
 * shared one as to any empty collection; a write goes through `owned` first, and a write to the
 * shared one itself throws, so a missed `owned` fails loudly instead of leaking between rooms.
 */
class SharedEmptyMap<K, V> extends Map<K, V> {
  override set(): this {
    throw new Error('the shared empty map was written to: take an own map first (owned)')
  }
}

class SharedEmptySet<T> extends Set<T> {
  override add(): this {
    throw new Error('the shared empty set was written to: take an own set first (owned)')
  }
}

const NO_MAP = new SharedEmptyMap<never, never>()
const NO_SET = new SharedEmptySet<never>()

/** The shared empty map, typed for the field it starts. */
export function noMap<K, V>(): Map<K, V> {
  return NO_MAP as unknown as Map<K, V>
}

/** The shared empty set, typed for the field it starts. */
export function noSet<T>(): Set<T> {
  return NO_SET as unknown as Set<T>
}

/** The collection itself, or a new one of its own in place of the shared empty one: `(this.x = owned(this.x)).set(…)`. */
export function owned<K, V>(map: Map<K, V>): Map<K, V>
export function owned<T>(set: Set<T>): Set<T>
export function owned(collection: Map<unknown, unknown> | Set<unknown>): Map<unknown, unknown> | Set<unknown> {
  if (collection === NO_MAP) return new Map()
  if (collection === NO_SET) return new Set()
  return collection
}

/** Gives the shared empty one back for an emptied collection (a room that had readers and went idle): what it held is freed. */
export function shrunk<K, V>(map: Map<K, V>): Map<K, V>
export function shrunk<T>(set: Set<T>): Set<T>
export function shrunk(collection: Map<unknown, unknown> | Set<unknown>): Map<unknown, unknown> | Set<unknown> {
  if (collection.size > 0) return collection
  return collection instanceof Map ? NO_MAP : NO_SET
}
