// One process of the scale run's load generator (bench/scale.ts starts several, each under the
// descriptor limit): it holds its share of the connections, each a person's stream (`follow=me`)
// over a WebSocket, an event stream or a long poll, on plain sockets from 127.0.0.1–8, and counts
// the run's message in the raw bytes. Told what to do over IPC; every loop is bounded.
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { backoff } from '../client/connection.js'

export type Kind = 'websocket' | 'sse' | 'longpoll'
export interface Conn {
  port: number
  kind: Kind
  cookie: string
  local: string
}
export type Command = { type: 'open'; conns: Conn[]; concurrency: number } | { type: 'watch'; tag: string } | { type: 'count'; since?: number } | { type: 'close' }
export type Report =
  | { type: 'opened'; opened: number; failed: number; retried: number; errors: string[]; ms: number }
  | {
      type: 'count'
      received: Record<Kind, number>
      lastAt: number
      lastOf: Record<Kind, number>
      polls: number
      dropped: number
      why: Record<string, number>
      /**
       * Long polls without the message: how many were answered after it was sent (`since`: they
       * polled on without it), how many not (with how long their poll has waited, at most, and on
       * which ports); the last answer of one.
       */
      missedPolls: { answered: number; silent: number; waitedMs: number; ports: number[]; sample: string; answersSince: number[]; since: string[] }
    }

interface Held {
  /** A long poll's is replaced when the server closed it and it was opened again. */
  socket: Socket
  kind: Kind
  got: boolean
  /** A long poll's last answer: when, and how it began; when its poll after it was sent; its server's port. */
  answeredAt: number
  last: string
  polledAt: number
  port: number
  /** A long poll's answers since the run's message was watched for, and the first three of them (how a miss went). */
  answers: number
  since: string[]
}

const held: Held[] = []
/** Set once the run tells it to close: nothing is opened again. */
let closing = false
let needle = Buffer.from('\u0000never\u0000')
/** The run's message is watched for (answers are recorded from then). */
let watching = false
const received: Record<Kind, number> = { websocket: 0, sse: 0, longpoll: 0 }
let lastAt = 0
/** When each kind's last connection had the message. */
const lastOf: Record<Kind, number> = { websocket: 0, sse: 0, longpoll: 0 }
let polls = 0
/** Connections the server closed after they had opened. */
let dropped = 0
/** Why, after they opened: a WebSocket's close code, a long poll's status other than 200 (polled again), an event stream's end. */
const why: Record<string, number> = {}
const noted = (what: string) => (why[what] = (why[what] ?? 0) + 1)

const send = (report: Report) => process.send!(report)

/** Counts the run's message in a chunk (once per connection: one message is sent). */
function scan(h: Held, chunk: Buffer): void {
  if (h.got || chunk.indexOf(needle) === -1) return
  h.got = true
  received[h.kind]++
  lastAt = Date.now()
  lastOf[h.kind] = lastAt
}

function request(path: string, c: Conn, extra: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${c.port}\r\nCookie: ${c.cookie}\r\nOrigin: http://127.0.0.1:${c.port}\r\n${extra}\r\n`
}

/** Opens one connection; resolves when the server has answered its opening (101, 200, or the first poll). */
function open(c: Conn): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: c.port, localAddress: c.local })
    const h: Held = { socket, kind: c.kind, got: false, answeredAt: 0, last: '', polledAt: 0, port: c.port, answers: 0, since: [] }
    const timer = setTimeout(() => fail(new Error('no answer in 60 s')), 60_000)
    let settled = false
    const done = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(h)
    }
    /** It did not open (its attempt is over: the opening is tried again with a new connection, or counted failed). */
    let failed = false
    const fail = (error: Error) => {
      if (settled) return
      settled = true
      failed = true
      clearTimeout(timer)
      socket.destroy()
      reject(error)
    }
    socket.on('error', fail)
    socket.on('close', () => {
      if (settled && c.kind !== 'longpoll') {
        dropped++
        noted(c.kind === 'sse' ? 'event stream ended' : 'websocket closed')
      }
      if (!settled) fail(new Error('closed before it opened'))
    })
    socket.setNoDelay(true)
    if (c.kind === 'websocket' || c.kind === 'sse') {
      const head =
        c.kind === 'websocket'
          ? request('/websocket/socket?follow=me', c, `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n`)
          : request('/sse/events?follow=me', c, 'Accept: text/event-stream\r\n')
      const expect = c.kind === 'websocket' ? 'HTTP/1.1 101' : 'HTTP/1.1 200'
      // Open once it has entered its rooms: a socket's first `subscribed`, a stream's `hello`. A
      // refusal after the handshake (a 1013 close, `event: refused` and the end) fails the opening,
      // and it is tried again.
      const entered = Buffer.from(c.kind === 'websocket' ? '"type":"subscribed"' : 'event: hello')
      let first = ''
      socket.on('data', (chunk: Buffer) => {
        if (!settled) {
          first += chunk.toString('latin1')
          if (first.length >= 12 && !first.startsWith(expect)) return fail(new Error(`${c.kind}: ${first.slice(0, 40).split('\r\n')[0]}`))
          if (chunk.indexOf(entered) !== -1) done()
          else if (first.length > 65_536) fail(new Error(`${c.kind}: no ${entered.toString()} in the first 64 KB`))
          return
        }
        // A close frame (0x88) from the server: its code says why.
        if (c.kind === 'websocket' && chunk[0] === 0x88 && chunk.length >= 4) noted(`websocket closed ${chunk.readUInt16BE(2)}`)
        scan(h, chunk)
      })
      socket.write(head)
      return
    }
    // A long poll of the person's stream: the first answers at once with every room's cursor; then each waits.
    let cursor = ''
    let buffer: Buffer = Buffer.alloc(0)
    // Its page's id, as a page sends it: the server keeps the page's rooms entered between its polls.
    const tab = randomBytes(9).toString('base64url')
    let reopened = 0
    /** Answers other than 200 in a row (the backoff), and the poll waiting out its backoff. */
    let failures = 0
    let retry: NodeJS.Timeout | undefined
    const poll = () => {
      polls++
      h.polledAt = Date.now()
      h.socket.write(request(`/longpolling/messages?follow=me&tab=${tab}${cursor ? `&cursor=${cursor}` : ''}`, c, 'Connection: keep-alive\r\n'))
    }
    const onData = (chunk: Buffer) => {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk])
      // Answers are whole JSON bodies with a Content-Length; more than one may have come.
      for (let i = 0; i < 100; i++) {
        const end = buffer.indexOf('\r\n\r\n')
        if (end === -1) return
        const headers = buffer.toString('latin1', 0, end)
        const length = Number(/content-length: *(\d+)/i.exec(headers)?.[1] ?? 0)
        if (buffer.length < end + 4 + length) return
        const body = buffer.subarray(end + 4, end + 4 + length)
        buffer = buffer.subarray(end + 4 + length)
        h.answers++
        if (h.since.length < 3 && watching) h.since.push(`${Date.now()} ${headers.split('\r\n')[0]} ${body.toString('utf8', 0, Math.min(body.length, 1500))}`)
        if (!headers.startsWith('HTTP/1.1 200')) {
          const status = headers.slice(9, 12)
          if (!settled) return fail(new Error(`long poll: ${headers.split('\r\n')[0]}`))
          // As the client library does: 409 starts over from now; anything else is tried again, backing off (0.5 s doubling to 15 s).
          noted(`long poll answered ${status}`)
          if (status === '409') cursor = ''
          retry = setTimeout(() => {
            retry = undefined
            if (!h.socket.destroyed) poll()
          }, status === '409' ? 0 : backoff(failures++))
          continue
        }
        failures = 0
        // Answered: the connection polls on as a page does, however often the server closed it before.
        reopened = 0
        scan(h, body)
        h.answeredAt = Date.now()
        h.last = body.toString('utf8', 0, Math.min(body.length, 400))
        try {
          const rooms = (JSON.parse(body.toString()) as { rooms?: Record<string, { epoch: string; lastId: number }> }).rooms ?? {}
          const next = Object.entries(rooms).map(([room, at]) => `${room}:${at.epoch}:${at.lastId}`)
          if (next.length > 0) cursor = next.join(',')
        } catch {
          return fail(new Error('long poll: an answer that is not JSON'))
        }
        done()
        if (!h.socket.destroyed) poll()
      }
    }
    // A keep-alive connection the server closed between two polls is opened again and the poll
    // made again from its cursor, as a browser does (at most 5 times per connection, a second apart).
    const onClose = () => {
      // Not one that never opened: its opening is tried again on a connection of its own.
      if (!settled || failed || closing) return
      noted('long poll connection closed')
      if (reopened++ >= 5) return void dropped++
      setTimeout(() => {
        if (closing) return
        const again = connect({ host: '127.0.0.1', port: c.port, localAddress: c.local })
        again.setNoDelay(true)
        again.on('error', () => {})
        again.on('data', onData)
        again.on('close', onClose)
        h.socket = again
        buffer = Buffer.alloc(0)
        // A poll waiting out its backoff (the server closed the idle connection meanwhile) is made by its timer, on this one.
        if (retry === undefined) poll()
      }, 1000)
    }
    socket.on('data', onData)
    socket.on('close', onClose)
    poll()
  })
}

async function openAll(conns: Conn[], concurrency: number): Promise<void> {
  const started = performance.now()
  let next = 0
  let failed = 0
  let retried = 0
  const errors: string[] = []
  // A refused or closed opening is tried again later, as a client would (at most 5 times, backing off).
  const lane = async () => {
    while (next < conns.length) {
      const c = conns[next++]!
      for (let attempt = 0; ; attempt++) {
        try {
          held.push(await open(c))
          break
        } catch (error) {
          if (attempt < 5) {
            retried++
            await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt * (0.5 + Math.random())))
            continue
          }
          failed++
          if (errors.length < 5) errors.push((error as Error).message)
          break
        }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane))
  send({ type: 'opened', opened: held.length, failed, retried, errors, ms: performance.now() - started })
}

process.on('message', (command: Command) => {
  if (command.type === 'open') void openAll(command.conns, command.concurrency)
  else if (command.type === 'watch') {
    needle = Buffer.from(`"text":"${command.tag}`)
    watching = true
    for (const h of held) {
      h.got = false
      h.answers = 0
      h.since = []
    }
    received.websocket = received.sse = received.longpoll = 0
    lastAt = lastOf.websocket = lastOf.sse = lastOf.longpoll = 0
  } else if (command.type === 'count') {
    const missedPolls = { answered: 0, silent: 0, waitedMs: 0, ports: [] as number[], sample: '', answersSince: [] as number[], since: [] as string[] }
    const since = command.since ?? Infinity
    for (const h of held) {
      if (h.kind !== 'longpoll' || h.got) continue
      if (!missedPolls.ports.includes(h.port)) missedPolls.ports.push(h.port)
      missedPolls.answersSince.push(h.answers)
      if (missedPolls.since.length === 0) missedPolls.since = h.since
      if (h.answeredAt > since) {
        missedPolls.answered++
        missedPolls.sample ||= h.last
      } else {
        missedPolls.silent++
        missedPolls.waitedMs = Math.max(missedPolls.waitedMs, Date.now() - h.polledAt)
        missedPolls.sample ||= h.last
      }
    }
    send({ type: 'count', received: { ...received }, lastAt, lastOf: { ...lastOf }, polls, dropped, why: { ...why }, missedPolls })
  }
  else if (command.type === 'close') {
    closing = true
    for (const h of held) h.socket.destroy()
    process.exit(0)
  }
})
process.on('disconnect', () => process.exit(0))
