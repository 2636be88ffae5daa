/**
 * Growing delays after failed attempts, per key (an account's name, an address): the first
 * `free` failures in `windowMs` cost nothing; then each further attempt must wait
 * 2^(failures - free) seconds after the last failure, at most `maxDelayMs`. A success clears
 * the key. Kept per process and bounded in size (the oldest keys are forgotten first).
 */
export class Throttle {
  private readonly failures = new Map<string, { count: number; last: number; first: number }>()
  constructor(
    private readonly free: number,
    private readonly windowMs: number,
    private readonly maxDelayMs: number,
    private readonly maxKeys = 100_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Milliseconds this key must still wait before its next attempt (0: go ahead). */
  wait(key: string): number {
    const entry = this.current(key)
    if (!entry || entry.count < this.free) return 0
    const delay = Math.min(this.maxDelayMs, 1000 * 2 ** (entry.count - this.free))
    return Math.max(0, entry.last + delay - this.now())
  }

  fail(key: string): void {
    const now = this.now()
    const entry = this.current(key) ?? { count: 0, last: now, first: now }
    entry.count++
    entry.last = now
    this.failures.delete(key)
    if (this.failures.size >= this.maxKeys) this.failures.delete(this.failures.keys().next().value!)
    this.failures.set(key, entry)
  }

  succeed(key: string): void {
    this.failures.delete(key)
  }

  private current(key: string) {
    const entry = this.failures.get(key)
    if (entry && this.now() - entry.last > this.windowMs) {
      this.failures.delete(key)
      return undefined
    }
    return entry
  }
}
