import type { Bus, PresenceRoom } from './bus/bus.js'
import { createPresenceSignal, type PresenceState, type Signal } from './event.js'
import { memberKey, Presence, sweepEvery, type Member } from './presence.js'

/**
 * The bus channel of people's presence: every process watches it. What travels on it is
 * between processes only ({"type": "presence", "user", "op"}); people's streams get the state
 * it leads to ({"type": "presence", "user", "presence"}).
 */
export const PEOPLE = '~people'

/** Between processes: someone is here somewhere now (or no longer), active somewhere now (or no longer). */
type Op = 'here' | 'gone' | 'active' | 'idle'

function opSignal(user: string, op: Op): Signal {
  return { type: 'presence', user, json: JSON.stringify({ type: 'presence', user, op }) }
}

export interface PeopleOptions {
  /** How long after a person's last connection goes they are offline (a reload, a reconnect in between makes no change). */
  graceMs: number
  /** With a shared bus: how long a dead process's people linger. */
  ttlMs: number
  /** Told when publishing fails (the bus is down). */
  onError?: (error: unknown) => void
  /** Told on every process when someone's presence changes (to relay to people's streams). */
  onChange: (signal: Signal) => void
  /** Arrivals one person may cause per minute (in each presence): past it, a flapping page's changes wait a minute, so it cannot flood everyone with signals. */
  churnLimit?: number | undefined
}

/** Pages of one person tracked on one node (as presence leases are bounded). */
const MAX_PAGES = 16

/** One page (tab) of a person on this node, or one transport used without a page. */
interface Page {
  /** Connections it holds open here (sockets, streams, waiting polls). */
  held: number
  /** Whether the page said it is hidden or idle. */
  away: boolean
  /** The hold of `active` while the page holds connections and is not away. */
  release: (() => void) | undefined
}

/**
 * Presence of a person, not of a page: online while any of their connections anywhere is
 * open (or a poll recent) and one of their pages is in use; away when every page is hidden or
 * idle; offline a short grace after the last one is gone. Two presences of the rooms' kind
 * decide it across processes (leases in Redis with a shared bus): `here` (any connection or
 * poll) and `active` (the same, from pages that are not away). Each process keeps the two sets
 * of names from the bus, so "is X online?" is a lookup, and tells its own people's streams of a
 * change once. No timer per person: the presences sweep once for everyone.
 */
export class People {
  private readonly here: Presence
  private readonly active: Presence
  private readonly options: PeopleOptions
  private readonly bus: Bus
  /** Who is here / active on any process, by name, as the bus told this one. */
  private readonly hereNames = new Set<string>()
  private readonly activeNames = new Set<string>()
  /** The pages of each person on this node (by memberKey, then page key). */
  private readonly pages = new Map<string, Map<string, Page>>()

  constructor(bus: Bus, options: PeopleOptions) {
    this.bus = bus
    this.options = options
    const room = (set: 'here' | 'active'): PresenceRoom => ({
      join: async (user) => this.bus.signal(opSignal(user, set === 'here' ? 'here' : 'active'), PEOPLE),
      left: async (user) => this.bus.signal(opSignal(user, set === 'here' ? 'gone' : 'idle'), PEOPLE),
    })
    const settings = { graceMs: options.graceMs, onError: options.onError, churnLimit: options.churnLimit }
    this.here = new Presence(bus.presenceStore(room('here'), options.ttlMs, `${PEOPLE}:here`), settings)
    // Each presence sweeps on its own: when a person's last connection goes, `active` ends two
    // sweeps after `here`, so everyone is told "offline" once, never "away" for a moment before it
    // (once gone, the idle that follows changes nothing). A page that says it is away is told at once.
    this.active = new Presence(bus.presenceStore(room('active'), options.ttlMs, `${PEOPLE}:active`), { ...settings, graceMs: options.graceMs + 2 * sweepEvery(options.graceMs) })
  }

  /** Watches the channel and learns who is here from the bus (several processes), then sweeps. */
  async start(): Promise<void> {
    this.bus.watch(PEOPLE)
    await this.resync()
    this.here.start()
    this.active.start()
  }

  /** Reads both sets from the bus when it keeps them (several processes), telling the changes: a signal lost while Redis was away is mended. */
  async resync(): Promise<void> {
    if (!this.bus.roster) return
    const [here, active] = await Promise.all([this.bus.roster(`${PEOPLE}:here`), this.bus.roster(`${PEOPLE}:active`)])
    const hereNow = new Set(here.map((e) => e.name))
    const activeNow = new Set(active.map((e) => e.name))
    for (const name of new Set([...this.hereNames, ...hereNow, ...this.activeNames, ...activeNow])) {
      const before = this.stateOf(name)
      if (hereNow.has(name)) this.hereNames.add(name)
      else this.hereNames.delete(name)
      if (activeNow.has(name)) this.activeNames.add(name)
      else this.activeNames.delete(name)
      this.told(name, before)
    }
  }

  async close(quiet: boolean): Promise<void> {
    await Promise.all([this.here.close(quiet), this.active.close(quiet)])
    for (const pages of this.pages.values()) for (const page of pages.values()) page.release = undefined
    this.pages.clear()
  }

  /** People this node holds here (their grace included): for tests and operations. */
  get size(): number {
    return this.here.size + this.active.size
  }

  /**
   * Someone's presence as this process knows it: online only while both here and in use (in use
   * may outlast here by two sweeps: gone then means offline, and a reconnection within them is
   * online again at once, its in-use presence never having ended).
   */
  stateOf(name: string): PresenceState {
    return this.hereNames.has(name) ? (this.activeNames.has(name) ? 'online' : 'away') : 'offline'
  }

  /** A signal of the people's channel, from any process (this one included). */
  relay(signal: Signal): void {
    let op: unknown
    try {
      op = (JSON.parse(signal.json) as { op?: unknown }).op
    } catch {
      return
    }
    const before = this.stateOf(signal.user)
    if (op === 'here') this.hereNames.add(signal.user)
    else if (op === 'gone') this.hereNames.delete(signal.user)
    else if (op === 'active') {
      this.activeNames.add(signal.user)
      this.hereNames.add(signal.user)
    } else if (op === 'idle') this.activeNames.delete(signal.user)
    else return
    this.told(signal.user, before)
  }

  private told(name: string, before: PresenceState): void {
    const now = this.stateOf(name)
    if (now !== before) this.options.onChange(createPresenceSignal(name, now))
  }

  private page(member: Member, key: string): [string, Page] {
    let pages = this.pages.get(memberKey(member))
    if (!pages) this.pages.set(memberKey(member), (pages = new Map()))
    // A client cannot grow the map by making up pages: past the bound, they share one.
    if (!pages.has(key) && pages.size >= MAX_PAGES) key = 'more'
    let page = pages.get(key)
    if (!page) pages.set(key, (page = { held: 0, away: false, release: undefined }))
    return [key, page]
  }

  /** Holds `active` for the page while it holds connections and is not away; lets go otherwise. */
  private settle(member: Member, key: string, page: Page): void {
    const wanted = page.held > 0 && !page.away
    if (wanted && !page.release) page.release = this.active.hold(member)
    if (!wanted && page.release) {
      page.release()
      page.release = undefined
    }
    if (page.held === 0 && !page.release) {
      const pages = this.pages.get(memberKey(member))
      // A page marked away keeps its mark while its leases (polls) may still come back.
      if (!page.away) pages?.delete(key)
      if (pages?.size === 0) this.pages.delete(memberKey(member))
    }
  }

  /** A connection of the person (one page's, `key`) is open: until the returned release. */
  hold(member: Member, key: string): () => void {
    const [at, page] = this.page(member, key)
    page.held++
    // In use first (it says here too), so arriving is told "online" once, not "away" for a moment before it.
    this.settle(member, at, page)
    const releaseHere = this.here.hold(member)
    let released = false
    return () => {
      if (released) return
      released = true
      releaseHere()
      page.held--
      this.settle(member, at, page)
    }
  }

  /** A request without a connection (a poll, a refresh) keeps the person here, and active unless its page is away, for `ttlMs`. */
  touch(member: Member, transport: string, ttlMs: number, tab?: string): void {
    this.here.touch(member, transport, ttlMs, tab)
    const page = this.pages.get(memberKey(member))?.get(tab ?? transport)
    if (!page?.away) this.active.touch(member, transport, ttlMs, tab)
  }

  /** The page `key` (a tab id, else the transport) says it is hidden or idle (away) or in use again. */
  setAway(member: Member, key: string, away: boolean): void {
    const [at, page] = this.page(member, key)
    page.away = away
    // The page's leases (its polls) held `active` too: they go with it.
    this.settle(member, at, page)
    const transportOnly = key === 'longpolling' || key === 'refresh'
    // Then at once, unless another page of theirs is in use (no grace: the page said so).
    if (away) this.active.drop(member, transportOnly ? key : undefined, transportOnly ? undefined : key)
  }

  /** The person's page `tab` closed, or (no tab) they signed out: its leases go; their connections end on their own. */
  drop(member: Member, tab?: string): void {
    this.here.drop(member, undefined, tab)
    this.active.drop(member, undefined, tab)
    if (tab === undefined) this.pages.delete(memberKey(member))
    else this.pages.get(memberKey(member))?.delete(tab)
  }
}
