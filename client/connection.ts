// Keeps one room connected. With one way (transports: ['sse']) it stays on it and reconnects
// after a drop. With several, strongest first, it starts on the first; a way that does not work
// while the server answers (refused twice, or silent past a bound) hands over to the next, from
// the same cursor; a way that fails because the server is down is kept, and tried again as soon
// as the server answers (/healthz, asked every second). Once on a weaker way it tries the
// stronger ones again every `upgradeAfterMs` and, when one greets it, switches back up (the old
// link stops only then; the room keeps each event once, by id). The user is held present all
// along (presence is per user), so a switch makes no leave or join.
import type { Link, LinkOwner, LinkRoom, LostReason } from './link.js'
import { LongPollLink } from './longpolling.js'
import type { Transport } from './protocol.js'
import { EventStreamLink } from './sse.js'
import { WebSocketLink } from './websocket.js'

export type ConnectionState = 'connecting' | 'live' | 'reconnecting' | 'offline' | 'closed'

/** The connection as it is: which way, and, while reconnecting, when the next try is. */
export interface StateInfo {
  state: ConnectionState
  /** The way it is on (or trying). */
  transport: Transport
  /** Below the strongest way it was given (e.g. WebSocket is blocked here). */
  fallback: boolean
  /** Reconnecting: when the next try is (ms since the epoch), and in how many seconds. */
  until?: number
  retryIn?: number
}

/** Why the room was let go for good. */
export type EndReason = 'nameTaken' | 'left' | 'signedOut' | 'missing' | 'removed'

/** What the connection needs of its room, beyond what a link needs. */
export interface ConnectionRoom extends LinkRoom {
  state(info: StateInfo): void
  /** A link is live (sending may go), or none is. */
  setLive(live: boolean): void
  ended(reason: EndReason): void
  /** After a refusal before opening: whether the session (or the room) is gone. */
  whyRefused(): Promise<EndReason | undefined>
}

const links: Record<Transport, new (room: LinkRoom, owner: LinkOwner) => Link> = { websocket: WebSocketLink, sse: EventStreamLink, longpolling: LongPollLink }

/** How long a way may stay silent (no greeting) before the next is tried, when there is a next. */
const SILENT_MS = 4000
/** How long a socket or stream may stay without its greeting before it is tried again, on its own. */
const GREETING_MS = 10_000

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... up to 15 s. */
export function backoff(attempt: number): number {
  const base = Math.min(15_000, 500 * 2 ** attempt)
  return base / 2 + Math.random() * (base / 2)
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export class Connection implements LinkOwner {
  /** The link events and sends go through now. */
  link: Link | null = null
  private probe: Link | null = null
  private readonly levels = new WeakMap<Link, number>()
  private level = 0
  private failures = 0
  /** Each way's failures in a row while the server answered. */
  private readonly strikes: number[]
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private readonly silences = new Set<ReturnType<typeof setTimeout>>()
  private endPause: (() => void) | null = null
  private closed = false
  private readonly stopOffline: () => void

  constructor(
    private readonly room: ConnectionRoom,
    private readonly order: readonly Transport[],
    private readonly upgradeAfterMs: number,
    /** The link of each way (a room's, or the person's stream's). */
    private readonly kinds: Record<Transport, new (room: LinkRoom, owner: LinkOwner) => Link> = links,
  ) {
    this.strikes = order.map(() => 0)
    // The network went away: the link is let go at once (the state says offline), and comes back with it.
    this.stopOffline = room.net.onNetwork('offline', () => {
      const link = this.link
      if (!link) return
      link.stop()
      void this.lost(link, 'dropped')
    })
  }

  start(): void {
    this.open(0)
  }

  /** Lets go of the room: every link, timer and wait. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.stopOffline()
    clearTimeout(this.retryTimer)
    for (const timer of this.silences) clearTimeout(timer)
    this.link?.stop()
    this.probe?.stop()
    this.link = this.probe = null
    this.endPause?.()
    this.room.setLive(false)
    this.room.state({ state: 'closed', transport: this.order[this.level]!, fallback: this.level > 0 })
  }

  /** Ends the wait before the next try at once. */
  retryNow(): void {
    this.endPause?.()
  }

  private show(state: ConnectionState, until?: number): void {
    const info: StateInfo = { state, transport: this.order[this.level]!, fallback: this.level > 0 }
    if (until !== undefined) Object.assign(info, { until, retryIn: Math.max(0, Math.ceil((until - Date.now()) / 1000)) })
    this.room.state(info)
  }

  private open(index: number, asProbe = false, again = false): void {
    if (this.closed) return
    const kind = this.order[index]!
    const next = new this.kinds[kind](this.room, this)
    this.levels.set(next, index)
    if (asProbe) this.probe = next
    else {
      this.link = next
      this.level = index
      this.show(again ? 'reconnecting' : 'connecting')
    }
    next.start()
    // Long polling may rightly be quiet (nothing new to answer): no bound on it.
    if (kind === 'longpolling') return
    // Silent past the bound: this way does not work here (a proxy that buffers, or swallows upgrades).
    const timer = setTimeout(
      () => {
        this.silences.delete(timer)
        if (next.live || next.stopped) return
        next.stop()
        void this.lost(next, 'silent')
      },
      this.order.length > 1 ? SILENT_MS : GREETING_MS,
    )
    this.silences.add(timer)
  }

  private scheduleRetry(): void {
    clearTimeout(this.retryTimer)
    if (this.level > 0) this.retryTimer = setTimeout(() => !this.probe && this.open(0, true), this.upgradeAfterMs)
  }

  live(link: Link): void {
    if (this.closed) return
    if (link === this.probe) {
      // A stronger way works again: move up, then let the weaker one go.
      const old = this.link
      this.probe = null
      this.link = link
      this.level = this.levels.get(link)!
      old?.stop()
      this.endPause?.()
    }
    if (link !== this.link) return
    this.failures = 0
    this.strikes[this.level] = 0
    this.show('live')
    this.scheduleRetry()
    this.room.setLive(true)
  }

  async lost(link: Link, why: LostReason): Promise<void> {
    if (this.closed) return
    if (link === this.probe) {
      this.probe = null
      const level = this.levels.get(link)!
      // The next stronger way than the current one, if it was not this one; else later.
      if (level + 1 < this.level) this.open(level + 1, true)
      else this.scheduleRetry()
      return
    }
    if (link !== this.link) return
    this.link = null
    this.room.setLive(false)
    if (await this.ended(why)) return
    if (why === 'startOver') return this.open(this.level)
    const down = !(await this.room.net.serverAnswers())
    if (this.closed || this.link) return
    if (!link.live && !down && this.level < this.order.length - 1) {
      // The server answers, yet this way did not open: on the second time (or when it stayed
      // silent), this network does not allow it; the next way, at once.
      this.strikes[this.level]!++
      if (why === 'silent' || this.strikes[this.level]! >= 2) return this.open(this.level + 1)
      await sleep(250)
      if (!this.link) this.open(this.level, false, true)
      return
    }
    // The server is down (or this way dropped after working): the same way again, as soon as it answers.
    await this.pause(backoff(this.failures++), down)
    if (!this.link) this.open(this.level, false, true)
  }

  /** A lost link that ends the room's connection rather than being retried; true when so. */
  private async ended(why: LostReason): Promise<boolean> {
    let reason: EndReason | undefined
    if (why === 'nameTaken' || why === 'left' || why === 'signedOut' || why === 'missing' || why === 'removed') reason = why
    else if (why === 'maybeSignedOut') reason = await this.room.whyRefused()
    if (this.closed) return true
    if (!reason) return false
    this.close()
    this.room.ended(reason)
    return true
  }

  /**
   * The wait before the next try. While the server does not answer at all (`serverDown`), it is
   * asked every second and the wait ends as soon as it answers; offline, the wait lasts until the
   * network is back; retryNow() ends it at once.
   */
  private pause(ms: number, serverDown: boolean): Promise<void> {
    const { net } = this.room
    return new Promise((resolve) => {
      const until = Date.now() + ms
      let done = false
      let probe: ReturnType<typeof setTimeout> | undefined
      const show = () => (net.online() ? this.show('reconnecting', until) : this.show('offline'))
      const stopOnline = net.onNetwork('online', () => finish())
      const stopOffline = net.onNetwork('offline', show)
      const deadline = setTimeout(() => (net.online() ? finish() : undefined), ms)
      const finish = () => {
        if (done) return
        done = true
        clearTimeout(deadline)
        clearTimeout(probe)
        stopOnline()
        stopOffline()
        this.endPause = null
        resolve()
      }
      this.endPause = finish
      show()
      if (!serverDown) return
      const ask = async () => {
        if (done) return
        if (net.online() && (await net.serverAnswers())) return finish()
        if (!done) probe = setTimeout(ask, 1000)
      }
      probe = setTimeout(ask, Math.min(1000, ms))
    })
  }
}
