import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'
import { wsFrameFor } from '../chatroom/event.js'
import type { Subscription } from '../chatroom/subscription.js'
import { CloseCode, removalClose } from './protocol.js'

/** How long a dropped (lagged) socket gets to complete the close handshake before it is cut. */
const LAGGED_CLOSE_GRACE_MS = 2000

/** Invalid frames in a row before a socket is closed as garbage (1007). */
const MAX_BAD_FRAMES = 5

/** Error frames dropped (the client reads none of them) before the socket is closed as abusive (1008). */
const MAX_DROPPED_ERRORS = 20


export interface SocketWriterOptions {
  /** Unsent bytes past which nothing more is written (SOCKET_BUFFER_LIMIT). */
  limit: number
  log: { debug(obj: object, msg: string): void }
}

/**
 * Writes one subscription to one WebSocket (ws's lib/limiter.js is the model: one small job).
 * What is queued goes out as one frame per tick (the room wakes every reader once per tick);
 * nothing is written past `limit` unsent bytes, so the subscription's queue fills and the room
 * drops the reader as lagged (4000, gorilla's rule); the room closing says 1001. When the
 * socket closes the subscription is cancelled, which lets go of the user's presence.
 */
export class SocketWriter {
  private readonly socket: WebSocket
  private readonly raw: Socket
  private subscription: Subscription | undefined
  private readonly limit: number
  private waitingForDrain = false
  private badFrames = 0
  private droppedErrors = 0

  constructor(socket: WebSocket, request: IncomingMessage, options: SocketWriterOptions) {
    this.socket = socket
    this.limit = options.limit
    this.raw = request.socket
    release(socket, this.raw, options.log)
    socket.on('close', () => {
      this.raw.off('drain', this.onDrain)
      this.subscription?.cancel()
    })
  }

  /** Starts writing the subscription: `greeting` first, then what it has (the replay window) in one frame. */
  attach(subscription: Subscription, greeting: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return subscription.cancel()
    this.subscription = subscription
    subscription.onReadable = this.flush
    this.socket.send(greeting)
    if (subscription.pending) setImmediate(this.flush)
  }

  /** Sends everything queued as one frame, or says why the subscription ended. */
  readonly flush = (): void => {
    const { socket, subscription } = this
    if (!subscription || socket.readyState !== socket.OPEN) return
    if (subscription.state === 'lagged') return this.closeAndCut(CloseCode.lagged, 'too far behind: reconnect with lastReceived')
    if (subscription.state === 'closed') return socket.close(CloseCode.goingAway, 'server shutting down')
    if (subscription.state === 'left') return socket.close(CloseCode.left, 'you left the room')
    if (subscription.state === 'removed') return socket.close(...removalClose(subscription.removal!))
    if (this.full()) return
    // The frame's bytes are shared by every socket that gets the same batch; they go straight
    // to the connection (no compression is negotiated, so ws has nothing queued to interleave).
    if (!subscription.pending) return
    if (socket.extensions === '') this.raw.write(wsFrameFor(subscription.take(), subscription.takeSignals()))
    else socket.send(subscription.takeFrame(), { binary: false })
  }

  /**
   * An error frame. It counts toward the socket's buffer limit like any frame: past the limit it
   * is dropped, and a client that keeps causing errors it never reads is closed (1008).
   */
  sendError(json: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return
    if (this.socket.bufferedAmount + json.length > this.limit) {
      if (++this.droppedErrors >= MAX_DROPPED_ERRORS) this.closeAndCut(CloseCode.policy, 'too many refused frames left unread')
      return
    }
    this.socket.send(json)
  }

  /** A frame that was not understood: told, and after MAX_BAD_FRAMES in a row, closed (1007). */
  refuse(body: string): void {
    if (++this.badFrames >= MAX_BAD_FRAMES) return this.socket.close(CloseCode.invalidData, 'too many invalid frames')
    this.sendError(body)
  }

  close(code: number, reason: string): void {
    this.socket.close(code, reason)
  }

  /** Closes a socket whose reader has stopped: it will not answer the close either, so its buffers are freed soon. */
  private closeAndCut(code: number, reason: string): void {
    if (this.socket.readyState !== this.socket.OPEN) return
    this.socket.close(code, reason)
    setTimeout(() => this.socket.terminate(), LAGGED_CLOSE_GRACE_MS).unref()
  }

  /**
   * A message that was said: the count of invalid frames starts over (typing does not count: it
   * is free to send), and the client hears `ack` when its frame asked for one.
   */
  accepted(ack?: string): void {
    this.badFrames = 0
    if (ack !== undefined) this.sendError(ack)
  }

  private full(): boolean {
    if (this.socket.bufferedAmount <= this.limit) return false
    if (!this.waitingForDrain) {
      this.waitingForDrain = true
      this.raw.once('drain', this.onDrain)
    }
    return true
  }

  private readonly onDrain = (): void => {
    this.waitingForDrain = false
    this.flush()
  }
}

/**
 * Nothing that lives as long as the socket may hold the upgrade's request and reply (about
 * 8 KB a connection): @fastify/websocket's own 'error' listener closes over both, and the
 * ServerResponse that routed the upgrade stays attached to the TCP socket.
 */
export function release(socket: WebSocket, raw: Socket, log: SocketWriterOptions['log']): void {
  socket.removeAllListeners('error')
  socket.on('error', (err) => log.debug({ err }, 'websocket error'))
  ;(raw as Socket & { _httpMessage?: ServerResponse | null })._httpMessage?.detachSocket(raw)
}
