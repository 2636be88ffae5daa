// WebSocket: one connection both ways; a message is confirmed by the server's ack (its `ref` is ours).
import { ACK_TIMEOUT_MS, Link, refusal, sayBody, statusOf, type LinkOwner, type LinkRoom, type Outgoing, type SendResult } from './link.js'
import { OPEN, type SocketLike } from './net.js'
import { CloseCode, readError, readItems } from './protocol.js'

export class WebSocketLink extends Link {
  private socket: SocketLike | undefined
  private readonly pending = new Map<string, (result: SendResult) => void>()
  private refs = 0

  constructor(room: LinkRoom, owner: LinkOwner) {
    super('websocket', room, owner)
  }

  start(): void {
    this.socket = this.openSocket(
      this.path('/socket') + this.query(),
      (data) => {
        if (Array.isArray(data)) return this.room.receive(readItems(data))
        const frame = (data ?? {}) as { type?: unknown; epoch?: unknown; ref?: unknown; id?: unknown; duplicate?: unknown }
        const ref = typeof frame.ref === 'string' ? frame.ref : undefined
        const answer = ref === undefined ? undefined : this.pending.get(ref)
        if (ref !== undefined) this.pending.delete(ref)
        if (frame.type === 'hello') this.greeted(typeof frame.epoch === 'string' ? frame.epoch : '')
        else if (frame.type === 'ack' && typeof frame.id === 'number') answer?.({ kind: 'ok', id: frame.id, duplicate: frame.duplicate === true })
        else {
          const error = readError(data)
          if (!error) return
          // The answer to one of ours, or about the connection.
          if (answer) answer(refusal(statusOf[error.error] ?? 400, error))
          else this.room.error(error.message)
        }
      },
      (code, opened, reason) => {
        this.settle()
        if (code === CloseCode.nameTaken) return this.end('nameTaken')
        if (code === CloseCode.removed) {
          this.room.error(reason)
          return this.end('removed')
        }
        if (code === CloseCode.left) return this.end('left')
        if (code === CloseCode.startOver) {
          this.room.reset()
          return this.end('startOver')
        }
        // Signed out (4401), or refused before it opened (a browser does not say why).
        this.end(code === CloseCode.unauthorized || !opened ? 'maybeSignedOut' : 'dropped')
      },
    )
  }

  override stop(): void {
    super.stop()
    this.settle()
    this.socket?.close(CloseCode.normal, 'switching')
  }

  /** Sends waiting for an answer on a socket that is gone: sent again (same client id) once live. */
  private settle(): void {
    for (const resolve of this.pending.values()) resolve({ kind: 'transient', message: 'The connection dropped before the server answered.' })
    this.pending.clear()
  }

  send(entry: Outgoing): Promise<SendResult> {
    return new Promise((resolve) => {
      const socket = this.socket
      if (!socket || socket.readyState !== OPEN) return resolve({ kind: 'transient', message: 'Not connected.' })
      const ref = String(++this.refs)
      const timer = setTimeout(() => {
        if (!this.pending.delete(ref)) return
        resolve({ kind: 'transient', message: 'The server did not answer in time.' })
        // A socket that does not answer is stuck: a new one (the resend carries the same client id).
        socket.close(CloseCode.normal, 'no answer')
      }, ACK_TIMEOUT_MS)
      this.pending.set(ref, (result) => {
        clearTimeout(timer)
        resolve(result)
      })
      socket.send(JSON.stringify({ ...sayBody(entry), ref }))
    })
  }

  typing(): void {
    if (this.socket?.readyState === OPEN) this.socket.send(JSON.stringify({ typing: true }))
  }
}
