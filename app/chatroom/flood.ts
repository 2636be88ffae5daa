/** Whether a user may speak now; async so a shared (Redis) guard fits behind it. */
export interface FloodGuard {
  /** 0 when allowed (and counted), else milliseconds until the next message would be. */
  take(user: string): Promise<number>
}

/**
 * At most `limit` messages per user in any `windowMs`: a sliding log of each user's last
 * `limit` message times. Memory is bounded by the users who spoke within the window.
 */
export class MemoryFloodGuard implements FloodGuard {
  private readonly limit: number
  private readonly windowMs: number
  private readonly log = new Map<string, number[]>()
  private lastPrune = 0

  constructor(limit: number, windowMs: number) {
    this.limit = limit
    this.windowMs = windowMs
  }

  take(user: string, now = Date.now()): Promise<number> {
    this.prune(now)
    let times = this.log.get(user)
    if (!times) this.log.set(user, (times = []))
    while (times.length > 0 && times[0]! <= now - this.windowMs) times.shift()
    if (times.length >= this.limit) return Promise.resolve(times[0]! + this.windowMs - now)
    times.push(now)
    return Promise.resolve(0)
  }

  private prune(now: number): void {
    if (now - this.lastPrune < this.windowMs) return
    this.lastPrune = now
    for (const [user, times] of this.log) if (times.at(-1)! <= now - this.windowMs) this.log.delete(user)
  }
}
