// The live ways to the room, as links with one shape, and the two ways to run them: one kind
// kept connected (the WebSocket, event stream and long-poll pages), or the best kind the
// network allows, switching by itself (the automatic page). Every link resumes from the
// thread's cursor (epoch, last id), so a reconnect or a switch neither loses nor repeats an event.
// What is written goes through the outbox (public/js/outbox.js), which sends it over whichever
// link is live, with its client id, so a resend is never posted twice.
import { Room, backoff, isLeaving, nameTaken, onCompose, onTyping, roomUrl, sessionGone, showConnection, showError, signedOut, sleep, tab } from './chat.js'
import { Outbox } from './outbox.js'
import { CloseCode } from './protocol.js'

/**
 * A link tells its owner:
 *   live(link)          the server greeted it: events flow
 *   items(link, items)  events and signals
 *   lost(link, why)     it ended: 'startOver' (reconnect at once), 'nameTaken', 'left',
 *                       'signedOut', 'maybeSignedOut' (refused or cut: the session may be gone),
 *                       'silent' (no greeting in time) or 'dropped' (try again)
 * and its owner may start() it, stop() it, send(entry) (resolves with what the outbox needs to
 * know: see Outbox), typing().
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
  async post(entry) {
    try {
      const res = await fetch(roomUrl(this.kind, '/messages'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify({ text: entry.text, clientId: entry.clientId }),
        signal: AbortSignal.timeout(ACK_TIMEOUT_MS),
      })
      // 201: posted; 200: this client id was posted before (a resend): the first event.
      if (res.ok) return { ok: true, id: (await res.json().catch(() => ({}))).id }
      const body = await res.json().catch(() => ({}))
      if (res.status === 401) return { signedOut: true }
      if (res.status === 429) return { retryAfter: Number(res.headers.get('retry-after')) || 1, message: body.message }
      if (res.status >= 500 || res.status === 408) return { transient: body.message || `HTTP ${res.status}` }
      return { refused: body.message || `the server refused it (HTTP ${res.status})` }
    } catch {
      return { transient: 'The server cannot be reached.' }
    }
  }

  typing() {
    fetch(roomUrl(this.kind, '/typing'), { method: 'POST' }).catch(() => {})
  }
}

/** How long a sent message may wait for the server's answer before it is sent again (same client id). */
const ACK_TIMEOUT_MS = 10_000

/** An error frame (or body) as the outbox takes it. */
function refusal(data) {
  if (data.error === 'Too Many Requests') return { retryAfter: Number(data.retryAfter) || 1, message: data.message }
  if (data.error === 'Service Unavailable') return { transient: data.message }
  if (data.error === 'Unauthorized') return { signedOut: true }
  return { refused: data.message || data.error }
}

/** One WebSocket both ways; a message is confirmed by the server's ack (its `ref` is ours). */
class WebSocketLink extends Link {
  constructor(room, owner) {
    super('websocket', room, owner)
    this.pending = new Map()
    this.refs = 0
  }

  start() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:'
    const query = this.query()
    let ws
    try {
      ws = new WebSocket(`${scheme}//${location.host}${roomUrl('websocket', '/socket')}${query ? '?' + query : ''}`)
    } catch {
      // Refused outright (a policy of this browser or network): as a socket that never opened.
      return setTimeout(() => this.end('maybeSignedOut'), 0)
    }
    this.ws = ws
    let opened = false
    ws.addEventListener('open', () => (opened = true))
    ws.addEventListener('message', (e) => {
      if (this.stopped) return
      const data = JSON.parse(e.data)
      if (Array.isArray(data)) this.owner.items(this, data)
      else if (data?.type === 'hello') this.greeted(data.epoch)
      else if (data?.type === 'ack') this.pending.get(data.ref)?.({ ok: true, id: data.id })
      else if (data?.error) {
        // The answer to one of ours, or about the connection.
        const resolve = this.pending.get(data.ref)
        if (resolve) resolve(refusal(data))
        else showError(data.message)
      }
      if (data?.ref !== undefined) this.pending.delete(data.ref)
    })
    ws.addEventListener('close', (e) => {
      this.settle()
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
    this.settle()
    this.ws?.close(1000, 'switching')
  }

  /** Sends waiting for an answer on a socket that is gone: sent again (same client id) once live. */
  settle() {
    for (const resolve of this.pending.values()) resolve({ transient: 'The connection dropped before the server answered.' })
    this.pending.clear()
  }

  send(entry) {
    return new Promise((resolve) => {
      const ws = this.ws
      if (!ws || ws.readyState !== WebSocket.OPEN) return resolve({ transient: 'Not connected.' })
      const ref = String(++this.refs)
      const timer = setTimeout(() => {
        if (!this.pending.delete(ref)) return
        resolve({ transient: 'The server did not answer in time.' })
        // A socket that does not answer is stuck: a new one (the resend carries the same client id).
        ws.close(1000, 'no answer')
      }, ACK_TIMEOUT_MS)
      this.pending.set(ref, (result) => {
        clearTimeout(timer)
        resolve(result)
      })
      ws.send(JSON.stringify({ text: entry.text, clientId: entry.clientId, ref }))
    })
  }

  typing() {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify({ typing: true }))
  }
}

/**
 * Server-Sent Events: the room as a stream, sending by POST. Events of one burst are handed on
 * together. When the stream drops, the page reconnects it itself (from the thread's cursor), so
 * the top bar can say when the next try is.
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
      // Before the greeting: this way may not work here (or the session is gone).
      es.close()
      this.end(this.live ? 'dropped' : 'maybeSignedOut')
    })
  }

  stop() {
    super.stop()
    this.es?.close()
  }

  send(entry) {
    return this.post(entry)
  }
}

/** Long polling: ask for what follows the last id; the server answers when something happens. */
class LongPollLink extends Link {
  constructor(room, owner) {
    super('longpolling', room, owner)
  }

  async start() {
    this.abort = new AbortController()
    // A resumed poll rightly waits for news: the server answering (/healthz) while it waits is live enough.
    if (this.room.thread.lastId > 0) {
      void sleep(100)
        .then(serverAnswers)
        .then((up) => {
          if (up && !this.stopped) this.greeted('')
        })
    }
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

  send(entry) {
    return this.post(entry)
  }
}

const kinds = { websocket: WebSocketLink, sse: EventStreamLink, longpolling: LongPollLink }
/** What the top bar says for each. */
const wayNames = { websocket: 'WebSocket', sse: 'event stream', longpolling: 'long polling' }

/** Whether the server answers at all (its /healthz), within a second. */
async function serverAnswers() {
  try {
    const res = await fetch('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(1000) })
    return res.ok
  } catch {
    return false
  }
}

/**
 * The wait before the next try, shown in the top bar as a countdown. While the server does
 * not answer at all (`serverDown`), it is asked every second and the wait ends as soon as it
 * answers; offline, the wait lasts until the network is back; "Retry now" ends it at once.
 */
function pause(ms, way, serverDown) {
  return new Promise((resolve) => {
    const until = Date.now() + ms
    let done = false
    let deadline = null
    let probe = null
    const finish = () => {
      if (done) return
      done = true
      clearTimeout(deadline)
      clearTimeout(probe)
      removeEventListener('online', finish)
      removeEventListener('offline', show)
      resolve()
    }
    function show() {
      if (navigator.onLine) showConnection('reconnecting', way, { until, retryNow: finish })
      else showConnection('offline', way)
    }
    show()
    addEventListener('online', finish)
    addEventListener('offline', show)
    deadline = setTimeout(() => (navigator.onLine ? finish() : undefined), ms)
    if (!serverDown) return
    const ask = async () => {
      if (done) return
      if (navigator.onLine && (await serverAnswers())) return finish()
      if (!done) probe = setTimeout(ask, 1000)
    }
    probe = setTimeout(ask, Math.min(1000, ms))
  })
}

/** Sends go through the outbox (over whichever link is live); typing through the current link. */
function wire(room, current) {
  const outbox = new Outbox(room, current)
  room.outbox = outbox
  onCompose((text) => outbox.add(text))
  onTyping(() => current()?.typing())
  return outbox
}

/** A lost link that ends the page's stay rather than being retried; true when handled. */
async function ended(why) {
  if (isLeaving()) return true
  if (why === 'nameTaken') return nameTaken(), true
  if (why === 'left') return location.assign('/'), true
  if (why === 'signedOut' || (why === 'maybeSignedOut' && (await sessionGone()))) return signedOut(), true
  return false
}

/** The network went away: the current link is let go at once (the top bar says offline), and comes back with it. */
function onOffline(current, lost) {
  addEventListener('offline', () => {
    const link = current()
    if (!link) return
    link.stop()
    lost(link, 'dropped')
  })
}

/** One kind, kept connected: after a drop it reconnects and resumes from the cursor. */
export function keepConnected(kind) {
  const room = new Room()
  const way = wayNames[kind]
  let link = null
  let failures = 0
  const owner = {
    live(l) {
      if (l !== link) return
      failures = 0
      showConnection('live', way)
      // After the archive (or what we missed), a fresh list of who is here.
      room.roster.resync()
      outbox.setLive(true)
    },
    items(_link, items) {
      room.receive(items)
    },
    async lost(l, why) {
      if (l !== link) return
      link = null
      outbox.setLive(false)
      if (await ended(why)) return
      if (why !== 'startOver') {
        const down = !(await serverAnswers())
        await pause(backoff(failures++), way, down)
      }
      connect(true)
    },
  }
  const connect = (again) => {
    showConnection(again ? 'reconnecting' : 'connecting', way)
    const mine = (link = new kinds[kind](room, owner))
    mine.start()
    // A connection that opened but never greets (a stuck proxy) is tried again; a long poll may
    // rightly wait with nothing to say, so it has no such bound.
    if (kind !== 'longpolling') {
      setTimeout(() => {
        if (mine.live || mine.stopped) return
        mine.stop()
        owner.lost(mine, 'silent')
      }, GREETING_MS)
    }
  }
  const outbox = wire(room, () => link)
  onOffline(() => link, (l, why) => owner.lost(l, why))
  connect(false)
}

/** How long a socket or stream may stay without its greeting before the page tries again. */
const GREETING_MS = 10_000

/** How long a way may stay silent (no greeting) before the automatic page moves on. */
const SILENT_MS = 4000
const ORDER = ['websocket', 'sse', 'longpolling']

/**
 * The automatic page: WebSocket first. A way that does not work while the server answers
 * (refused twice, or silent past SILENT_MS) hands over to the next (event stream, then long
 * polling), from the same cursor; a way that fails because the server is down is kept, and
 * tried again as soon as the server answers. Once on a weaker way it tries the stronger ones
 * again every `retryMs` and, when one greets it, switches back up (the old link stops only then;
 * both show each event once, by id). The user is held present all along (presence is per user),
 * so a switch makes no leave or join. The outbox sends over whichever way is live.
 */
export function automatic(retryMs) {
  const room = new Room()
  let link = null
  let level = 0
  let probe = null
  let failures = 0
  let retryTimer = null
  let silence = null
  /** Each way's failures in a row while the server answered. */
  const strikes = ORDER.map(() => 0)

  const open = (index, asProbe = false, again = false) => {
    const next = new kinds[ORDER[index]](room, owner)
    next.level = index
    if (asProbe) probe = next
    else {
      link = next
      level = index
      showConnection(again ? 'reconnecting' : 'connecting', wayNames[ORDER[index]])
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
      strikes[level] = 0
      if (level === 0) showConnection('live', 'WebSocket')
      else showConnection('live', wayNames[ORDER[level]], { detail: `(WebSocket is blocked here; trying again every ${Math.round(retryMs / 1000)} s)` })
      room.roster.resync()
      scheduleRetry()
      outbox.setLive(true)
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
      outbox.setLive(false)
      if (await ended(why)) return
      if (why === 'startOver') return open(level)
      const down = !(await serverAnswers())
      if (!l.live && !down && level < ORDER.length - 1) {
        // The server answers, yet this way did not open: on the second time (or when it stayed
        // silent), this network does not allow it; the next way, at once.
        strikes[level]++
        if (why === 'silent' || strikes[level] >= 2) return open(level + 1)
        await sleep(250)
        if (!link) open(level, false, true)
        return
      }
      // The server is down (or this way dropped after working): the same way again, as soon as it answers.
      await pause(backoff(failures++), wayNames[ORDER[level]], down)
      if (!link) open(level, false, true)
    },
  }
  const outbox = wire(room, () => link)
  onOffline(() => link, (l, why) => owner.lost(l, why))
  open(0)
}
