// What the three ways into a room share: a link tells its owner when it is live and when it is
// lost (and why); it hands the room what arrives; it sends a message and says how that went.
import type { Net, SocketLike } from './net.js'
import { parse, readError, roomPath, type Item, type MessageEvent, type Transport } from './protocol.js'

/** Why a link ended. */
export type LostReason =
  /** The cursor cannot be resumed (the room forgot it): connect again at once, from the newest. */
  | 'startOver'
  /** Someone else present now holds this user's name. */
  | 'nameTaken'
  /** The user left the room (this page, or everywhere). */
  | 'left'
  | 'signedOut'
  /** Refused or cut before it opened: the session (or the room) may be gone. */
  | 'maybeSignedOut'
  /** The room does not exist for this user (404). */
  | 'missing'
  /** A moderator kicked or banned this user (the room was told why by error()). */
  | 'removed'
  /** No greeting in time. */
  | 'silent'
  /** It worked, then dropped: try again. */
  | 'dropped'

/** What the server said to a message sent (one of the outbox's entries). */
export type SendResult =
  | { kind: 'ok'; id: number; duplicate: boolean }
  /** Too many too fast: again after this many seconds. */
  | { kind: 'slow'; retryAfter: number; message: string }
  /** Refused for good (400, 403, 404). */
  | { kind: 'refused'; message: string; status: number }
  /** Not taken now (503, a dropped connection, no answer in time): again once live. */
  | { kind: 'transient'; message: string }
  | { kind: 'signedOut' }

/** The room a link serves: its name, its cursor, and where what arrives goes. */
export interface LinkRoom {
  readonly name: string
  readonly net: Net
  /** The page's id (sent with every connection, so its leave ends only its own). */
  readonly tab: string | undefined
  readonly epoch: string
  readonly lastId: number
  /** Events and signals, in order (each link may repeat what another delivered: the room keeps each once). */
  receive(items: Item[]): void
  /** The server said which log the ids belong to. */
  adopt(epoch: string): void
  /** The cursor cannot be resumed: forget it (and what it showed), from `epoch` on. */
  reset(epoch?: string): void
  /** Something went wrong that is not about one message. */
  error(message: string): void
}

export interface LinkOwner {
  live(link: Link): void
  lost(link: Link, why: LostReason): void
}

/** An entry of the outbox, as a link sends it. */
export interface Outgoing {
  clientId: string
  text: string
  /** A reply: the message it answers (and whether a thread's reply also shows in the room). */
  replyTo?: number
  alsoToRoom?: true
}

/** What a send posts or frames: the text, its client id, and a reply's fields when it is one. */
export function sayBody(entry: Outgoing): { text: string; clientId: string; replyTo?: number; alsoToRoom?: true } {
  return { text: entry.text, clientId: entry.clientId, ...(entry.replyTo !== undefined && { replyTo: entry.replyTo }), ...(entry.alsoToRoom && { alsoToRoom: true as const }) }
}

/** How long a message sent may wait for the server's answer before it is sent again (same client id). */
export const ACK_TIMEOUT_MS = 10_000

export abstract class Link {
  live = false
  stopped = false

  constructor(
    readonly kind: Transport,
    protected readonly room: LinkRoom,
    protected readonly owner: LinkOwner,
  ) {}

  abstract start(): void
  abstract send(entry: Outgoing): Promise<SendResult>
  abstract typing(): void

  /** The cursor (and the page's id) as a query, with `extra`; '' when there is nothing to say. */
  protected query(extra = ''): string {
    const { lastId, epoch, tab } = this.room
    const parts = [lastId > 0 ? `lastReceived=${lastId}${epoch ? `&epoch=${encodeURIComponent(epoch)}` : ''}` : '', tab ? `tab=${encodeURIComponent(tab)}` : '', extra]
    const query = parts.filter(Boolean).join('&')
    return query ? `?${query}` : ''
  }

  protected path(rest: string): string {
    return roomPath(this.kind, this.room.name, rest)
  }

  /**
   * Opens a WebSocket at `url` for this link: each frame (parsed JSON) goes to `onFrame` while the
   * link runs, and its close to `onClose` with whether it had opened (a refused upgrade is an
   * error, then a close: a browser does not say why). A socket refused outright (no WebSocket
   * here, or a policy of this browser or network) ends the link as one that never opened.
   */
  protected openSocket(url: string, onFrame: (data: unknown) => void, onClose: (code: number, opened: boolean, reason: string) => void): SocketLike | undefined {
    let socket: SocketLike
    try {
      socket = this.room.net.openSocket(url)
    } catch {
      setTimeout(() => this.end('maybeSignedOut'), 0)
      return undefined
    }
    let opened = false
    socket.addEventListener('open', () => (opened = true))
    socket.addEventListener('error', () => {})
    socket.addEventListener('message', (e) => {
      if (!this.stopped) onFrame(parse(String(e.data)))
    })
    socket.addEventListener('close', (e) => onClose(e.code, opened, e.reason))
    return socket
  }

  /** The server greeted it (and said which log, when it did): events flow. */
  protected greeted(epoch: string | null | undefined): void {
    if (epoch) this.room.adopt(epoch)
    if (this.live || this.stopped) return
    this.live = true
    this.owner.live(this)
  }

  protected end(why: LostReason): void {
    if (this.stopped) return
    this.stopped = true
    this.owner.lost(this, why)
  }

  stop(): void {
    this.stopped = true
  }
}

/**
 * A way in over plain HTTP (event stream, long polling): it reads with a fetch it can abort,
 * and sends and types by POST; the answer says whether a message was taken.
 */
export abstract class HttpLink extends Link {
  protected readonly abort = new AbortController()

  override stop(): void {
    super.stop()
    this.abort.abort()
  }

  send(entry: Outgoing): Promise<SendResult> {
    return this.post(entry)
  }

  typing(): void {
    this.postTyping()
  }

  private async post(entry: Outgoing): Promise<SendResult> {
    try {
      const res = await this.room.net.post(this.path('/messages'), sayBody(entry), AbortSignal.timeout(ACK_TIMEOUT_MS))
      const body: unknown = await res.json().catch(() => undefined)
      // 201: posted; 200: this client id was posted before (a resend): the first event.
      if (res.ok) return { kind: 'ok', id: (body as MessageEvent | undefined)?.id ?? 0, duplicate: res.status === 200 }
      return refusal(res.status, readError(body), Number(res.headers.get('retry-after')))
    } catch {
      return { kind: 'transient', message: 'The server cannot be reached.' }
    }
  }

  /** "I am typing", over plain HTTP. */
  private postTyping(): void {
    this.room.net
      .request(this.path('/typing'), { method: 'POST' })
      .then((res) => res.body?.cancel())
      .catch(() => {})
  }
}

/** A refusal (an HTTP status, or a socket's error frame) as the outbox takes it. */
export function refusal(status: number, body: { message?: string; retryAfter?: number } | undefined, retryAfter?: number): SendResult {
  const message = body?.message ?? `HTTP ${status}`
  if (status === 401) return { kind: 'signedOut' }
  if (status === 429) return { kind: 'slow', retryAfter: retryAfter || Number(body?.retryAfter) || 1, message }
  if (status >= 500 || status === 408) return { kind: 'transient', message }
  return { kind: 'refused', message: body?.message ?? `the server refused it (HTTP ${status})`, status }
}

/** An error frame's status, by its reason phrase. */
export const statusOf: Record<string, number> = { 'Bad Request': 400, Unauthorized: 401, Forbidden: 403, 'Not Found': 404, 'Too Many Requests': 429, 'Service Unavailable': 503 }
