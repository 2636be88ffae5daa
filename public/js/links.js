// The live ways to the room, as links with one shape, and the two ways to run them: one kind
// kept connected (the WebSocket, event stream and long-poll pages), or the best kind the
// network allows, switching by itself (the automatic page). Every link resumes from the
// thread's cursor (epoch, last id), so a reconnect or a switch neither loses nor repeats an event.
import { Room, backoff, isLeaving, nameTaken, onSay, onTyping, roomUrl, sessionGone, setStatus, showError, signedOut, sleep, tab } from './chat.js'
import { CloseCode } from './protocol.js'

/**
 * A link tells its owner:
 *   live(link)          the server greeted it: events flow
 *   items(link, items)  events and signals
 *   lost(link, why)     it ended: 'startOver' (reconnect at once), 'nameTaken', 'left',
 *                       'signedOut', 'maybeSignedOut' (refused or cut: the session may be gone),
 *                       or 'dropped' (try again)
 * and its owner may start() it, stop() it, send(text) (resolves with '' or why not), typing().
 */
class Link {
  constructor(kind, room, owner) {
    this.kind = kind
    this.room = room
    this.owner = owner
    this.live = false
    this.stopped = false
  }

  query(extra = '') {
    const cursor = this.room.thread.cursor()
    return [cursor, tab && `tab=${encodeURIComponent(tab)}`, extra].filter(Boolean).join('&')
  }

  greeted(epoch) {
    if (epoch) this.room.thread.adopt(epoch)
    if (this.live || this.stopped) return
    this.live = true
    this.owner.live(this)
  }

  end(why) {
    if (this.stopped) return
    this.stopped = true
    this.owner.lost(this, why)
  }

  stop() {
    this.stopped = true
  }

  /** Sending over plain HTTP (event stream, long polling): the answer says whether it was taken. */
  async post(text) {
    try {
      const res = await fetch(roomUrl(this.kind, '/messages'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ text }),
      })
      if (res.ok) return ''
      const body = await res.json().catch(() => ({}))
      return body.message || `Not sent (HTTP ${res.status}); your message is still in the box.`
    } catch {
      return 'Not sent: the server cannot be reached. Your message is still in the box.'
    }
  }

  typing() {
    fetch(roomUrl(this.kind, '/typing'), { method: 'POST' }).catch(() => {})
  }
}

/** How long a sent message may wait for the server's answer before the page says so. */
const ACK_TIMEOUT_MS = 10_000

/** One WebSocket both ways; a message leaves the box only on the server's ack. */
class WebSocketLink extends Link {
  constructor(room, owner) {
    super('websocket', room, owner)
    this.pending = new Map()
    this.refs = 0
  }

  start() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const query = this.query()
    const ws = new WebSocket(`${scheme}//${location.host}${roomUrl('websocket', '/socket')}${query ? '?' + query : ''}`)
    this.ws = ws
    let opened = false
    ws.addEventListener('open', () => (opened = true))
    ws.addEventListener('message', (e) => {
      if (this.stopped) return
      const data = JSON.parse(e.data)
      if (Array.isArray(data)) this.owner.items(this, data)
      else if (data?.type === 'hello') this.greeted(data.epoch)
      else if (data?.type === 'ack') this.pending.get(data.ref)?.('')
      else if (data?.error) {
        // The answer to one of ours (kept in its box), or about the connection.
        const resolve = this.pending.get(data.ref)
        if (resolve) resolve(data.message)
        else showError(data.message)
      }
      if (data?.ref !== undefined) this.pending.delete(data.ref)
    })
    ws.addEventListener('close', (e) => {
      this.settle('The connection dropped before the server confirmed this message; it is still in the box. Send it again once reconnected.')
      if (e.code === CloseCode.nameTaken) return this.end('nameTaken')
      if (e.code === CloseCode.left) return this.end('left')
      if (e.code === CloseCode.startOver) {
        this.room.thread.reset()
        return this.end('startOver')
      }
      // Signed out (4401), or refused before it opened (a browser does not say why).
      this.end(e.code === CloseCode.unauthorized || !opened ? 'maybeSignedOut' : 'dropped')
    })
  }

  stop() {
    super.stop()
    this.settle('The connection changed before the server confirmed this message; it is still in the box.')
    this.ws?.close(1000, 'switching')
  }

  settle(why) {
    for (const resolve of this.pending.values()) resolve(why)
    this.pending.clear()
  }

  send(text) {
    return new Promise((resolve) => {
      const ws = this.ws
      if (!ws || ws.readyState !== WebSocket.OPEN) return resolve('Not connected right now; your message is still in the box. Send it again once reconnected.')
      const ref = String(++this.refs)
      this.pending.set(ref, resolve)
      ws.send(JSON.stringify({ text, ref }))
      setTimeout(() => {
        if (this.pending.delete(ref)) resolve('The server has not confirmed this message yet; it is still in the box. Check the thread before sending it again.')
      }, ACK_TIMEOUT_MS)
    })
  }

  typing() {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ typing: true }))
  }
}

/**
 * Server-Sent Events: the room as a stream (the browser reconnects it by itself, resuming with
 * Last-Event-ID), sending by POST. Events of one burst are handed on together.
 */
class EventStreamLink extends Link {
  constructor(room, owner) {
    super('sse', room, owner)
    this.batch = []
  }

  start() {
    const es = new EventSource(`${roomUrl('sse', '/events')}?${this.query()}`)
    this.es = es
    const hand = (item) => {
      if (this.stopped) return
      if (this.batch.push(item) === 1) setTimeout(() => this.owner.items(this, this.batch.splice(0)), 0)
    }
    es.addEventListener('hello', (e) => this.greeted(JSON.parse(e.data).epoch))
    es.addEventListener('message', (e) => hand(JSON.parse(e.data)))
    es.addEventListener('typing', (e) => hand(JSON.parse(e.data)))
    es.addEventListener('refused', (e) => {
      es.close()
      const body = JSON.parse(e.data)
      if (body.reason === 'name') return this.end('nameTaken')
      if (body.status === 409) {
        this.room.thread.reset(body.epoch)
        return this.end('startOver')
      }
      if (body.message) showError(body.message)
      this.end('dropped')
    })
    es.addEventListener('left', () => {
      es.close()
      this.end('left')
    })
    es.addEventListener('signedout', () => {
      es.close()
      this.end('signedOut')
    })
    es.addEventListener('error', () => {
      // Once live, the browser reconnects by itself (from its Last-Event-ID) unless the server
      // refused outright; before that, this way does not work here.
      if (this.live && es.readyState === EventSource.CONNECTING) return setStatus('Reconnecting…')
      es.close()
      this.end(this.live ? 'dropped' : 'maybeSignedOut')
    })
    es.addEventListener('open', () => this.live && setStatus(''))
  }

  stop() {
    super.stop()
    this.es?.close()
  }

  send(text) {
    return this.post(text)
  }
}

/** Long polling: ask for what follows the last id; the server answers when something happens. */
class LongPollLink extends Link {
  constructor(room, owner) {
    super('longpolling', room, owner)
  }

  async start() {
    this.abort = new AbortController()
    while (!this.stopped) {
      try {
        const res = await fetch(`${roomUrl('longpolling', '/messages')}?${this.query('typing=1')}`, { headers: { accept: 'application/json' }, signal: this.abort.signal })
        if (this.stopped) return
        if (res.status === 401) return this.end('signedOut')
        if (res.status === 409) {
          const conflict = await res.json()
          if (conflict.reason === 'name') return this.end('nameTaken')
          // Another log of the room, or too far behind: start over from the newest.
          this.room.thread.reset(conflict.epoch)
          continue
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}`)
        this.greeted(res.headers.get('x-room-epoch'))
        this.owner.items(this, await res.json())
      } catch {
        return this.end('dropped')
      }
    }
  }

  stop() {
    super.stop()
    this.abort?.abort()
  }

  send(text) {
    return this.post(text)
  }
}

const kinds = { websocket: WebSocketLink, sse: EventStreamLink, longpolling: LongPollLink }
/** What the top bar says for each. */
const wayNames = { websocket: 'WebSocket', sse: 'event stream', longpolling: 'long polling' }

function showWay(text) {
  const way = document.getElementById('way')
  // The room's name first (another room than the lobby), as the server wrote it.
  if (way) way.textContent = (document.getElementById('room')?.dataset.where || '') + text
}

/** Sends and typing go through whichever link is current. */
function wire(current) {
  onSay((text) => (current() ? current().send(text) : Promise.resolve('Not connected right now; your message is still in the box.')))
  onTyping(() => current()?.typing())
}

/** A lost link that ends the page's stay rather than being retried; true when handled. */
async function ended(why) {
  if (isLeaving()) return true
  if (why === 'nameTaken') return nameTaken(), true
  if (why === 'left') return location.assign('/'), true
  if (why === 'signedOut' || (why === 'maybeSignedOut' && (await sessionGone()))) return signedOut(), true
  return false
}

/** One kind, kept connected: after a drop it reconnects with backoff and resumes from the cursor. */
export function keepConnected(kind) {
  const room = new Room()
  let link = null
  let failures = 0
  const owner = {
    live() {
      failures = 0
      setStatus('')
      // After the archive (or what we missed), a fresh list of who is here.
      room.roster.resync()
    },
    items(_link, items) {
      room.receive(items)
    },
    async lost(_link, why) {
      link = null
      if (await ended(why)) return
      const wait = why === 'startOver' ? 0 : backoff(failures++)
      setStatus('Disconnected; reconnecting {s}…', Date.now() + wait)
      await sleep(wait)
      connect()
    },
  }
  const connect = () => {
    const mine = (link = new kinds[kind](room, owner))
    mine.start()
    // A connection that opened but never greets (a stuck proxy) is tried again; a long poll may
    // rightly wait with nothing to say, so it has no such bound.
    if (kind !== 'longpolling') {
      setTimeout(() => {
        if (mine.live || mine.stopped) return
        mine.stop()
        owner.lost(mine, 'dropped')
      }, GREETING_MS)
    }
  }
  wire(() => link)
  connect()
}

/** How long a socket or stream may stay without its greeting before the page tries again. */
const GREETING_MS = 10_000

/** How long a way may stay silent (no greeting) before the automatic page moves on. */
const SILENT_MS = 4000
const ORDER = ['websocket', 'sse', 'longpolling']

/**
 * The automatic page: WebSocket first; a way that cannot open, or stays silent past SILENT_MS,
 * hands over to the next (event stream, then long polling), from the same cursor. Once on a
 * weaker way it tries the stronger ones again every `retryMs` and, when one greets it, switches
 * back up (the old link stops only then; both show each event once, by id). The user is held
 * present all along (presence is per user), so a switch makes no leave or join.
 */
export function automatic(retryMs) {
  const room = new Room()
  let link = null
  let level = 0
  let probe = null
  let failures = 0
  let retryTimer = null
  let silence = null

  const open = (index, asProbe = false) => {
    const next = new kinds[ORDER[index]](room, owner)
    next.level = index
    if (asProbe) probe = next
    else {
      link = next
      level = index
      showWay(`Connecting · ${wayNames[ORDER[index]]}…`)
    }
    next.start()
    // Long polling, the last resort, may rightly be quiet (nothing new to answer): no bound on it.
    if (index === ORDER.length - 1) return
    // Silent past the bound: this way does not work here (a proxy that buffers, or swallows upgrades).
    const timer = setTimeout(() => {
      if (next.live || next.stopped) return
      next.stop()
      owner.lost(next, 'silent')
    }, SILENT_MS)
    if (!asProbe) {
      clearTimeout(silence)
      silence = timer
    }
  }

  const scheduleRetry = () => {
    clearTimeout(retryTimer)
    if (level > 0) retryTimer = setTimeout(() => !probe && open(0, true), retryMs)
  }

  const owner = {
    live(l) {
      if (l === probe) {
        // A stronger way works again: move up, then let the weaker one go.
        const old = link
        probe = null
        link = l
        level = l.level
        old?.stop()
      }
      if (l !== link) return
      clearTimeout(silence)
      failures = 0
      setStatus('')
      showWay(level === 0 ? 'Live · WebSocket' : `Live · ${wayNames[ORDER[level]]} (WebSocket is blocked here; trying again every ${Math.round(retryMs / 1000)} s)`)
      room.roster.resync()
      scheduleRetry()
    },
    items(l, items) {
      room.receive(items)
    },
    async lost(l, why) {
      if (l === probe) {
        probe = null
        // The next stronger way than the current one, if it was not this one; else later.
        if (l.level + 1 < level) open(l.level + 1, true)
        else scheduleRetry()
        return
      }
      if (l !== link) return
      link = null
      if (await ended(why)) return
      if (why === 'startOver') return open(level)
      // Never greeted: this way does not work here; the next one, at once. Once greeted: the same way, after a pause.
      if (!l.live && level < ORDER.length - 1) return open(level + 1)
      const wait = backoff(failures++)
      setStatus('Disconnected; reconnecting {s}…', Date.now() + wait)
      await sleep(wait)
      if (!link) open(l.live ? level : 0)
    },
  }
  wire(() => link)
  open(0)
}
