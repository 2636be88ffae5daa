// Long polling: ask for what follows the last id; the server answers when something happens.
import { HttpLink, type LinkOwner, type LinkRoom } from './link.js'
import { readError, readItems } from './protocol.js'

export class LongPollLink extends HttpLink {

  constructor(room: LinkRoom, owner: LinkOwner) {
    super('longpolling', room, owner)
  }

  start(): void {
    // A resumed poll rightly waits for news: the server answering (/healthz) while it waits is live enough.
    if (this.room.lastId > 0) {
      setTimeout(() => {
        void this.room.net.serverAnswers().then((up) => {
          if (up && !this.stopped) this.greeted('')
        })
      }, 100)
    }
    void this.poll()
  }

  private async poll(): Promise<void> {
    while (!this.stopped) {
      try {
        const res = await this.room.net.request(this.path('/messages') + this.query('typing=1'), { signal: this.abort.signal })
        const body: unknown = await res.json().catch(() => undefined)
        if (this.stopped) return
        if (res.status === 401) return this.end('signedOut')
        if (res.status === 404) return this.end('missing')
        if (res.status === 403) {
          // Kicked or banned (while waiting, or since): the body says who and why.
          this.room.error(readError(body)?.message ?? 'You were removed from this room.')
          return this.end('removed')
        }
        if (res.status === 409) {
          const conflict = readError(body)
          if (conflict?.reason === 'name') return this.end('nameTaken')
          // Another log of the room, or too far behind: start over from the newest.
          this.room.reset(conflict?.epoch)
          continue
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}`)
        this.greeted(res.headers.get('x-room-epoch'))
        this.room.receive(readItems(body))
      } catch {
        return this.end('dropped')
      }
    }
  }
}
