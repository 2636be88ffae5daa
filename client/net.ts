// The client's way to the server: HTTP (with the session cookie: the browser's own, or a
// `cookie` given in Node), WebSockets, the /healthz probe, and whether the network is there.

/** The parts of a WebSocket the client uses (the browser's, Node 22's, or the `ws` package's). */
export interface SocketLike {
  readonly readyState: number
  send(data: string): void
  close(code?: number, reason?: string): void
  addEventListener(type: 'open' | 'error', listener: () => void): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void
}

/**
 * A WebSocket class: `globalThis.WebSocket` in browsers and Node 22+, or `WebSocket` of the `ws`
 * package (Node 20, or wherever a `cookie` must go with the upgrade).
 */
export type SocketConstructor = new (url: string, ...rest: never[]) => SocketLike

/** Where a Storage keeps the outbox: localStorage in a browser, anything with these three in Node. */
export interface StorageLike {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>

export const OPEN = 1

interface Window {
  addEventListener(type: 'online' | 'offline', listener: () => void): void
  removeEventListener(type: 'online' | 'offline', listener: () => void): void
}

export class Net {
  readonly base: string
  private readonly fetchImpl: FetchLike
  private readonly socket: SocketConstructor | undefined
  private readonly cookie: string | undefined

  constructor(options: { base?: string | undefined; fetch?: FetchLike | undefined; WebSocket?: SocketConstructor | undefined; cookie?: string | undefined }) {
    const base = options.base ?? (globalThis as { location?: { origin: string } }).location?.origin
    if (!base) throw new TypeError('ChatClient: say where the server is: { base: "http://host:port" }.')
    this.base = base.replace(/\/+$/, '')
    const fetchImpl = options.fetch ?? globalThis.fetch
    // A browser's fetch must be called on the window.
    this.fetchImpl = options.fetch ? fetchImpl : fetchImpl.bind(globalThis)
    this.socket = options.WebSocket ?? (globalThis as { WebSocket?: SocketConstructor }).WebSocket
    this.cookie = options.cookie
  }

  /** Whether WebSockets can be opened here. */
  get sockets(): boolean {
    return this.socket !== undefined
  }

  /** A request to the server (JSON unless said otherwise), with the session cookie. */
  request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (!headers.has('accept')) headers.set('accept', 'application/json')
    if (this.cookie) headers.set('cookie', this.cookie)
    return this.fetchImpl(this.base + path, { ...init, headers })
  }

  /** A POST of `body` as JSON. */
  post(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
    return this.request(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), ...(signal && { signal }) })
  }

  /** Opens a WebSocket to `path` (throws when this environment has none, or refuses it). */
  openSocket(path: string): SocketLike {
    const Socket = this.socket as (new (url: string, options?: { headers: Record<string, string> }) => SocketLike) | undefined
    if (!Socket) throw new Error('No WebSocket here: pass { WebSocket } (e.g. from the ws package).')
    const url = this.base.replace(/^http/, 'ws') + path
    return this.cookie ? new Socket(url, { headers: { cookie: this.cookie } }) : new Socket(url)
  }

  /** Whether the server answers at all (its /healthz), within a second. */
  async serverAnswers(): Promise<boolean> {
    try {
      const res = await this.request('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(1000) })
      await res.body?.cancel()
      return res.ok
    } catch {
      return false
    }
  }

  /** Whether the network is there (a browser knows; elsewhere it is taken to be). */
  online(): boolean {
    return (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false
  }

  /** Calls `listener` when the network comes (`online`) or goes (`offline`), where that is known; returns what stops it. */
  onNetwork(type: 'online' | 'offline', listener: () => void): () => void {
    const window = globalThis as Partial<Window>
    if (typeof window.addEventListener !== 'function' || typeof window.removeEventListener !== 'function') return () => {}
    window.addEventListener(type, listener)
    return () => window.removeEventListener!(type, listener)
  }
}
