/**
 * Who holds which name. A name is claimed by its skeleton (look-alikes share one), for a user
 * id, for a while: reserved at sign-in, renewed while the user is present, let go when they
 * leave. A claim held by another user refuses the name.
 */
export interface NameClaims {
  /** Claims `key` for `userId` for `ttlMs` (renewed if they hold it already); false when someone else holds it. */
  claim(key: string, userId: string, ttlMs: number): Promise<boolean>
  /** Lets go of `key`, if `userId` holds it. */
  release(key: string, userId: string): Promise<void>
}

/** One process's claims (BROKER=memory). */
export class MemoryNameClaims implements NameClaims {
  private readonly held = new Map<string, { userId: string; until: number }>()
  private lastPrune = 0

  async claim(key: string, userId: string, ttlMs: number, now = Date.now()): Promise<boolean> {
    if (now - this.lastPrune > 60_000) {
      this.lastPrune = now
      for (const [k, c] of this.held) if (c.until <= now) this.held.delete(k)
    }
    const current = this.held.get(key)
    if (current && current.userId !== userId && current.until > now) return false
    this.held.set(key, { userId, until: now + ttlMs })
    return true
  }

  async release(key: string, userId: string): Promise<void> {
    if (this.held.get(key)?.userId === userId) this.held.delete(key)
  }
}
