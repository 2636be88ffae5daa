// Server-Sent Events: the room as a stream, sending by POST. The stream is read with fetch (so it
// works in Node as in a browser, and carries the cookie given in Node); when it drops, the owner
// reconnects it from the cursor, so the wait before the next try is the client's to say.
import { HttpLink, type LinkOwner, type LinkRoom } from './link.js'
import { parse, readError, readItems, type Item } from './protocol.js'

export class EventStreamLink extends HttpLink {

  constructor(room: LinkRoom, owner: LinkOwner) {
    super('sse', room, owner)
  }

  start(): void {
    void this.read()
  }

  private async read(): Promise<void> {
    let res: Response
    try {
      res = await this.room.net.request(this.path('/events') + this.query(), { headers: { accept: 'text/event-stream' }, cache: 'no-store', signal: this.abort.signal })
    } catch {
      return this.end('maybeSignedOut')
    }
    if (!res.ok || !res.body) {
      // Kicked or banned: the body says who and why.
      if (res.status === 403) this.room.error(readError(await res.json().catch(() => undefined))?.message ?? 'You were removed from this room.')
      else await res.body?.cancel()
      return this.end(res.status === 401 ? 'signedOut' : res.status === 404 ? 'missing' : res.status === 403 ? 'removed' : 'maybeSignedOut')
    }
    const batch: Item[] = []
    // Events of one read are handed on together.
    const flush = () => {
      if (batch.length > 0 && !this.stopped) this.room.receive(batch.splice(0))
    }
    await readEventStream(res.body, (event, text) => {
      if (this.stopped) return false
      if (event === 'message' || event === 'typing' || event === 'presence') {
        batch.push(...readItems([parse(text)]))
        return true
      }
      flush()
      if (event === 'hello') this.greeted(((parse(text) ?? {}) as { epoch?: string }).epoch)
      else if (event === 'refused') this.refused(parse(text))
      else if (event === 'left') this.end('left')
      else if (event === 'removed') {
        this.room.error(readError(parse(text))?.message ?? 'You were removed from this room.')
        this.end('removed')
      }
      else if (event === 'signedout') this.end('signedOut')
      return !this.stopped
    }, flush)
    flush()
    // Ended before the greeting: this way may not work here (or the session is gone).
    this.end(this.live ? 'dropped' : 'maybeSignedOut')
  }

  /** The room refused the stream (its data is long polling's JSON error, with `status`). */
  private refused(value: unknown): void {
    const body = readError(value)
    if (body?.reason === 'name') return this.end('nameTaken')
    if (body?.status === 409) {
      this.room.reset(body.epoch)
      return this.end('startOver')
    }
    if (body?.message) this.room.error(body.message)
    this.end('dropped')
  }
}

/**
 * Reads a `text/event-stream` body: each event (its name, `message` when it has none, and its
 * data lines joined) goes to `dispatch`, which answers false to stop reading; `afterRead` runs
 * after each read from the network (what one read brought can be handed on together). Resolves
 * when the body ends, is cut, or dispatch stops it (the body is then cancelled).
 */
export async function readEventStream(body: ReadableStream<Uint8Array>, dispatch: (event: string, data: string) => boolean, afterRead: () => void = () => {}): Promise<void> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let name = ''
  let data: string[] = []
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '')
        buffer = buffer.slice(nl + 1)
        if (line === '') {
          if (data.length > 0 && !dispatch(name || 'message', data.join('\n'))) return void reader.cancel().catch(() => {})
          name = ''
          data = []
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':')
          const field = colon < 0 ? line : line.slice(0, colon)
          const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
          if (field === 'event') name = text
          else if (field === 'data') data.push(text)
        }
      }
      afterRead()
    }
  } catch {
    // Cut (or stopped): the caller says what follows.
  }
}
