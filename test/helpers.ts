import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import type { Test } from 'tap'
import { WebSocket } from 'ws'
import type { Event } from '../app/chatroom/event.js'
import { buildApp, type BuildOptions } from '../app/app.js'
import { loadConfig, type Config } from '../conf/config.js'
import type { Transport } from '../app/identity.js'
import { freshDatabase } from './pg.js'
import { redisFor } from './redis.js'

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123'

interface Teardown {
  teardown(fn: () => unknown): void
}

export function testConfig(env: Record<string, string> = {}): Config {
  return loadConfig({ SESSION_SECRET: TEST_SECRET, LOG_LEVEL: 'silent', PRESENCE_GRACE: '0', SIGNIN_RATE_LIMIT: '100000', STORE: 'memory', MAX_EVENT_LOOP_DELAY: '0', MAX_CONNECTIONS_PER_IP: '0', ...env })
}

/** A fresh app (and so a fresh room) closed when the test ends. */
export async function buildTestApp(
  t: Teardown,
  env: Record<string, string> = {},
  options: BuildOptions = {},
): Promise<FastifyInstance> {
  const app = await buildApp(testConfig(env), { logger: false, ...options })
  t.teardown(() => app.close())
  return app
}

/** Signs in through the real welcome form; returns the Cookie header to send. */
export async function signIn(app: FastifyInstance, user: string, transport: Transport = 'websocket'): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/signin', payload: { user, transport } })
  if (res.statusCode !== 303) throw new Error(`sign-in as ${user} failed: ${res.statusCode} ${res.body}`)
  const cookie = res.cookies.find((c) => c.name === 'chat_session')
  if (!cookie) throw new Error('no session cookie')
  return `chat_session=${cookie.value}`
}

/** Signs in as a guest on a real server (its base URL), as a program would; returns the Cookie header to send. */
export async function signInAt(base: string, user: string, transport: Transport = 'websocket'): Promise<string> {
  const res = await fetch(`${base}/signin`, { method: 'POST', body: new URLSearchParams({ user, transport }), redirect: 'manual' })
  const cookie = res.headers.getSetCookie().find((c) => c.startsWith('chat_session='))
  if (!cookie) throw new Error(`sign-in as ${user} failed: ${res.status}`)
  return cookie.split(';')[0]!
}

/** Registers an account (POST /accounts) and returns its session's Cookie header. */
export async function registerAccount(app: FastifyInstance, name: string): Promise<string> {
  const res = await app.inject({ method: 'POST', url: '/accounts', payload: { name, password: 'a long enough password' } })
  if (res.statusCode !== 201) throw new Error(`registering ${name}: ${res.statusCode} ${res.body}`)
  return `chat_session=${res.cookies.find((c) => c.name === 'chat_session')!.value}`
}

/**
 * A sign-in the server refuses: it sends the browser back to `/` (post/redirect/get) with what
 * was typed in a short-lived cookie; `page` is the welcome page that browser then gets.
 */
export async function refusedSignIn(app: FastifyInstance, payload: Record<string, string>, headers: Record<string, string> = {}) {
  const res = await app.inject({ method: 'POST', url: '/signin', payload, headers: { accept: 'text/html', ...headers } })
  if (res.statusCode !== 303 || res.headers.location !== '/') throw new Error(`sign-in was not refused: ${res.statusCode} ${String(res.headers.location)}`)
  if (res.cookies.some((c) => c.name === 'chat_session' && c.value)) throw new Error('a refused sign-in set a session')
  const form = res.cookies.find((c) => c.name === 'chat_signin')
  if (!form) throw new Error('no form cookie')
  const cookie = [headers.cookie, `chat_signin=${form.value}`].filter(Boolean).join('; ')
  const page = await app.inject({ method: 'GET', url: '/', headers: { cookie } })
  return { res, page }
}

/** A real WebSocket client that records every frame; resolves once open (or rejects on refusal). */
export class SocketClient {
  readonly events: Event[] = []
  /** Signals (typing, presence): no id, never a cursor. */
  readonly signals: { type: string; user: string; presence?: string }[] = []
  readonly errors: { error: string; message: string; ref?: string }[] = []
  /** Answers to frames sent with a `ref`: the message was committed as event `id`. */
  readonly acks: { ref: string; id: number }[] = []
  /** The server's first frame: the epoch of the log the ids belong to. */
  hello: { epoch: string; lastId: number } | undefined
  frames = 0
  closed: { code: number; reason: string } | undefined
  readonly ws: WebSocket
  private waiters: (() => void)[] = []

  private constructor(ws: WebSocket) {
    this.ws = ws
    ws.on('message', (data, isBinary) => {
      this.frames++
      // The protocol is JSON text frames; a binary one is a server bug the tests should see.
      if (isBinary) this.errors.push({ error: 'binary frame', message: data.toString() })
      const parsed: unknown = JSON.parse(data.toString())
      if (Array.isArray(parsed)) {
        // Events have ids; signals (typing, presence) have none.
        for (const item of parsed as Event[]) (typeof item.id === 'number' ? this.events : this.signals).push(item)
      } else if ((parsed as { type?: string }).type === 'hello') this.hello = parsed as { epoch: string; lastId: number }
      else if ((parsed as { type?: string }).type === 'ack') this.acks.push(parsed as { ref: string; id: number })
      else this.errors.push(parsed as { error: string; message: string })
      this.wake()
    })
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.wake()
    })
  }

  static open(base: string, cookie: string | undefined, query = '', headers: Record<string, string> = {}, path = '/websocket/room/socket'): Promise<SocketClient> {
    const url = base.replace(/^http/, 'ws') + path + query
    const ws = new WebSocket(url, { headers: { ...(cookie ? { cookie } : {}), ...headers } })
    const client = new SocketClient(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client))
      ws.once('unexpected-response', (req, res) => {
        // With this listener ws leaves the refused request open; end it.
        req.destroy()
        reject(new Error(`refused: ${res.statusCode}`))
      })
      ws.once('error', reject)
    })
  }

  ids(): number[] {
    return this.events.map((e) => e.id)
  }

  send(value: unknown): void {
    this.ws.send(typeof value === 'string' ? value : JSON.stringify(value))
  }

  /** Waits until the check holds (rechecked on every frame and on close). */
  async until(check: () => boolean, what = 'condition', ms = 5000): Promise<void> {
    const deadline = Date.now() + ms
    while (!check()) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ids ${this.ids().join(',')}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  untilId(id: number): Promise<void> {
    return this.until(() => this.events.some((e) => e.id >= id), `event ${id}`)
  }

  untilClosed(): Promise<{ code: number; reason: string }> {
    return this.until(() => this.closed !== undefined, 'close').then(() => this.closed!)
  }

  close(): Promise<{ code: number; reason: string }> {
    if (!this.closed) this.ws.close()
    return this.untilClosed()
  }

  private wake() {
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }
}

/** Polls until the check holds; for state that changes without a frame (subscriber counts). */
export async function eventually(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Every event of the log, read through the history API, oldest first. */
export async function wholeLog(base: string, cookie: string): Promise<Event[]> {
  const out: Event[] = []
  let before: number | undefined
  for (let page = 0; page < 100; page++) {
    const res = await fetch(`${base}/room/history?limit=200${before ? `&before=${before}` : ''}`, { headers: { cookie } })
    const { events } = (await res.json()) as { events: Event[] }
    out.unshift(...events)
    if (events.length < 200) break
    before = events[0]!.id
  }
  return out
}

export const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const roomPages: Record<Transport, string> = { refresh: '/refresh/room', longpolling: '/longpolling/room', websocket: '/websocket/room', sse: '/sse/room', auto: '/auto/room' }

/** Opens the transport's room page as the browser would (refresh and long polling join on it). */
export async function enter(app: FastifyInstance, cookie: string, transport: Transport): Promise<void> {
  const res = await app.inject({ method: 'GET', url: roomPages[transport], headers: { cookie } })
  if (res.statusCode !== 200) throw new Error(`entering ${transport} failed: ${res.statusCode}`)
}

/**
 * How a child process runs app/server.ts: with the TypeScript loader this test runs under
 * (tap's, which also records the child's coverage, so the same compiled source is merged
 * with the in-process runs), or tsx when a test file is run directly.
 */
export function tsLoader(): string[] {
  const tap = process.execArgv.find((arg) => arg.startsWith('--import=') && arg.includes('@tapjs/typescript'))
  return tap ? [tap] : ['--import', 'tsx']
}

/** The real server process (app/server.ts through tsx), on a free port. */
export async function startServer(t: { teardown(fn: () => unknown): void }, env: Record<string, string> = {}) {
  // A data folder of its own (the SQLite log), removed afterwards unless the test brought one.
  const dataDir = env.DATA_DIR ?? mkdtempSync(join(tmpdir(), 'chat-data-'))
  if (!env.DATA_DIR) t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const child = spawn(process.execPath, [...tsLoader(), 'app/server.ts'], {
    env: { ...process.env, PORT: '0', LOG_LEVEL: 'info', SESSION_SECRET: 'server-test-secret-server-test-secret-0', DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let output = ''
  child.stderr.on('data', (d) => (output += d))
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 60_000)
    child.stdout.on('data', (d: Buffer) => {
      output += d
      const port = /open http:\/\/(?:localhost|127\.0\.0\.1):(\d+)\/|served on 127\.0\.0\.1:(\d+)\)/.exec(output)?.slice(1).find(Boolean)
      const url = port && `http://127.0.0.1:${port}`
      if (url) {
        clearTimeout(timer)
        resolve(url)
      }
    })
  })
  return { child, base, output: () => output }
}


/** A port nobody listens on now, so a server can be started on it again after it is killed. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number }
      probe.close(() => resolve(port))
    })
  })
}

/**
 * The real server process (app/server.ts, as startServer runs it) on a fixed port and data
 * folder, so it can be killed and started again as the same server. Resolves when its /healthz
 * first answers, with that moment.
 */
export async function serverAt(port: number, dataDir: string): Promise<{ child: ChildProcess; answeredAt: number; output: () => string }> {
  const child = spawn(process.execPath, [...tsLoader(), 'app/server.ts'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_LEVEL: 'warn',
      SESSION_SECRET: 'server-test-secret-server-test-secret-0',
      SIGNIN_RATE_LIMIT: '100000',
      MAX_CONNECTIONS_PER_IP: '0',
      MAX_EVENT_LOOP_DELAY: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited: ${output}`)
    if (Date.now() > deadline) throw new Error(`server did not answer: ${output}`)
    const up = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(500) }).then((r) => r.ok, () => false)
    if (up) return { child, answeredAt: Date.now(), output: () => output }
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** Kills a server process started by this test (SIGKILL, by its handle) and waits until it is gone. */
export function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill('SIGKILL')
  })
}

/**
 * With RATE_LIMIT_MESSAGES=2 and RATE_LIMIT_WINDOW=1: two messages 0.5 s apart, the third
 * refused, then allowed as soon as the first has left the window, while the second still
 * counts (so the window slid; it was not reset wholesale or left to expire).
 */
export async function floodSlides(
  t: Test,
  say: (text: string, i: number) => Promise<{ statusCode: number; headers: Record<string, unknown> }>,
): Promise<void> {
  t.equal((await say('one', 0)).statusCode, 201)
  // A gap between the two, so the window can hold one without the other.
  await new Promise((r) => setTimeout(r, 500))
  t.equal((await say('two', 1)).statusCode, 201)
  const refused = await say('three', 2)
  t.equal(refused.statusCode, 429, 'the third is over the limit')
  t.equal(refused.headers['retry-after'], '1', 'Retry-After: whole seconds, rounded up')
  const deadline = Date.now() + 3000
  let status = refused.statusCode
  for (let i = 3; status === 429 && Date.now() < deadline; i++) {
    await new Promise((r) => setTimeout(r, 50))
    status = (await say('three, again', i)).statusCode
  }
  t.equal(status, 201, 'allowed again once the first left the window')
  t.equal((await say('four', 0)).statusCode, 429, 'the second still counts: the window slid')
}

/**
 * A test's `skip` option for what needs a binary of this machine (Chromium, redis-server):
 * skipped with the reason where it is missing, except in CI (CI=true), where the test runs
 * and fails, so that a missing install never passes as green.
 */
export function skipUnless(available: boolean, reason: string): string | false {
  return available || process.env.CI ? false : reason
}

/** Date.now moved on by hand (the session code reads the time from it); put back when the test ends. */
export function controlledClock(t: Teardown) {
  const realNow = Date.now
  let skew = 0
  Date.now = () => realNow() + skew
  t.teardown(() => {
    Date.now = realNow
  })
  return { advance: (seconds: number) => void (skew += seconds * 1000) }
}

/** A frame of a socket of several rooms. */
export type RoomsFrame = { type?: string; room?: string; ref?: string; error?: string; message?: string; reason?: string; events?: Event[]; [key: string]: unknown }

/** A socket of several rooms (`/websocket/socket[?QUERY]`) that records every frame and its close. */
export class RoomsClient {
  readonly frames: RoomsFrame[] = []
  closed: { code: number; reason: string } | undefined
  private waiters: (() => void)[] = []
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.frames.push(JSON.parse(data.toString()) as RoomsFrame)
      this.wake()
    })
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() }
      this.wake()
    })
  }
  static open(base: string, cookie: string, query = ''): Promise<RoomsClient> {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/websocket/socket${query}`, { headers: { cookie } })
    const client = new RoomsClient(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client))
      ws.once('error', reject)
    })
  }
  send(frame: unknown) {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }
  find(check: (f: RoomsFrame) => boolean): RoomsFrame | undefined {
    return this.frames.find(check)
  }
  /** A room's events, in the order they came. */
  events(room: string): Event[] {
    return this.frames.filter((f) => f.room === room && Array.isArray(f.events)).flatMap((f) => f.events!)
  }
  /** Whether the check came to hold within `ms` (rechecked on every frame and on close). */
  async until(check: () => boolean, ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!check()) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => (clearTimeout(timer), resolve()))
      })
    }
    return true
  }
  /** Waits for the first frame that passes the check, and returns it (throws, listing the frames, if none came). */
  async next(check: (f: RoomsFrame) => boolean, what: string, ms = 5000): Promise<RoomsFrame> {
    if (!(await this.until(() => this.find(check) !== undefined, ms))) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(this.frames)}`)
    return this.find(check)!
  }
  /** Subscribes to the room; its answer (subscribed or refused), or undefined if none came. */
  async subscribe(room: string): Promise<RoomsFrame | undefined> {
    const from = this.frames.length
    const answer = () => this.frames.slice(from).find((f) => (f.type === 'subscribed' || f.type === 'refused') && f.room === room)
    this.send({ type: 'subscribe', room })
    await this.until(() => answer() !== undefined)
    return answer()
  }
  /** The close, or undefined if the socket is still open after `ms`. */
  async closedWithin(ms = 5000) {
    await this.until(() => this.closed !== undefined, ms)
    return this.closed
  }
  /** The close (throws if the socket is still open after `ms`). */
  async untilClosed(ms = 5000): Promise<{ code: number; reason: string }> {
    const closed = await this.closedWithin(ms)
    if (!closed) throw new Error(`not closed: ${JSON.stringify(this.frames)}`)
    return closed
  }
  close() {
    if (!this.closed) this.ws.close()
  }
  private wake() {
    for (const w of this.waiters.splice(0)) w()
  }
}

/** One message of an event stream: its `event:` name (undefined for an event of a room), its data parsed, its `id:`. */
export type StreamMessage = { name: string | undefined; data: Record<string, unknown>; id: string | undefined }

/** An event of the person's stream: a room's (with its room) or their own (`person`, with the room it is about). */
export type StreamEvent = Event & { room: string }
export interface StreamAnswer {
  events: StreamEvent[]
  rooms: Record<string, { epoch: string; lastId: number }>
  refused: { room: string; status: number; error?: string; action?: string }[]
  /** With typing=1: others typing in the rooms, and others' presence. */
  signals?: { type: string; user: string; room?: string }[]
}

/**
 * A page's long poll of the person's stream (`/longpolling/messages?follow=me`), keeping a cursor
 * per room and one for its own events (`me`) as the page app does: rooms new to it start where the
 * answer says, a room left or put out of is dropped, a room refused for now (503, 429) is polled
 * again from its cursor. With `tab`, its page's id (the server keeps the page's rooms between polls).
 */
export class StreamPoller {
  readonly got: StreamEvent[] = []
  readonly cursors = new Map<string, { epoch: string; last: number }>()
  constructor(
    private readonly base: string,
    private readonly cookie: string,
    private readonly options: { tab?: string; strict?: boolean; typing?: boolean } = {},
  ) {}

  get tab(): string | undefined {
    return this.options.tab
  }

  query(): string {
    return [...this.cursors].map(([room, { epoch, last }]) => `&cursor=${encodeURIComponent(`${room}:${epoch}:${last}`)}`).join('')
  }

  /** One poll; `lose`: the answer never reaches the page (its cursors stay where they were). A strict poller throws on an answer other than 200. */
  async poll(lose = false): Promise<StreamAnswer & { status: number }> {
    const res = await fetch(`${this.base}/longpolling/messages?follow=me${this.tab === undefined ? '' : `&tab=${this.tab}`}${this.options.typing ? '&typing=1' : ''}${this.query()}`, { headers: { cookie: this.cookie } })
    if (this.options.strict && res.status !== 200) throw new Error(`poll: ${res.status} ${await res.text()}`)
    const body = (await res.json()) as StreamAnswer
    if (res.status !== 200 || lose) return { ...body, status: res.status }
    for (const event of body.events) {
      this.got.push(event)
      const cursor = this.cursors.get(event.type === 'person' ? 'me' : event.room)
      if (cursor) cursor.last = event.id
    }
    // Rooms new to this client (its first poll, a room joined): their entry is where to go on from.
    for (const [room, { epoch, lastId }] of Object.entries(body.rooms)) if (!this.cursors.has(room)) this.cursors.set(room, { epoch, last: lastId })
    for (const event of body.events) if (event.type === 'person' && (event.kind === 'left' || event.kind === 'removed')) this.cursors.delete(event.room)
    // A room refused for now (503, 429) is polled again from its cursor; any other refusal drops it.
    for (const refused of body.refused) if (refused.error !== 'Service Unavailable' && refused.error !== 'Too Many Requests') this.cursors.delete(refused.room)
    return { ...body, status: res.status }
  }

  /** Polls until `check` holds (each poll waits for something, or LONGPOLL_TIMEOUT). */
  async until(check: () => boolean, what: string, polls = 20): Promise<void> {
    for (let i = 0; i < polls && !check(); i++) await this.poll()
    if (!check()) throw new Error(`never: ${what}; got ${JSON.stringify(this.got.map((e) => [e.room, e.type, e.kind ?? e.text]))}`)
  }

  texts(room: string): string[] {
    return this.got.filter((e) => e.room === room && e.type === 'message').map((e) => e.text!)
  }
}

/** An event stream read as it comes (fetch, as a program reads it): its status, its text so far, whether it ended. */
export class EventStream {
  text = ''
  ended = false
  status = 0
  private readonly controller = new AbortController()
  private waiters: (() => void)[] = []

  static async open(url: string, headers: Record<string, string> = {}): Promise<EventStream> {
    const stream = new EventStream()
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: stream.controller.signal })
    stream.status = res.status
    void stream.pump(res)
    return stream
  }

  private async pump(res: Response): Promise<void> {
    try {
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        this.text += chunk.value
        this.wake()
      }
    } catch {
      // Aborted by the test.
    }
    this.ended = true
    this.wake()
  }

  /** Every whole message so far that has data. */
  messages(): StreamMessage[] {
    const blocks = this.text.split('\n\n').slice(0, -1)
    return blocks.flatMap((block) => {
      const data = /^data: (.*)$/m.exec(block)?.[1]
      return data === undefined ? [] : [{ name: /^event: (.*)$/m.exec(block)?.[1], data: JSON.parse(data) as Record<string, unknown>, id: /^id: (.*)$/m.exec(block)?.[1] }]
    })
  }

  /** The data of each `event: NAME` message, parsed. */
  named(name: string): Record<string, unknown>[] {
    return this.messages().filter((m) => m.name === name).map((m) => m.data)
  }

  /** Whether the check came to hold within `ms` (rechecked as the stream grows and when it ends). */
  async until(check: (stream: EventStream) => boolean, ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms
    while (!check(this)) {
      const left = deadline - Date.now()
      if (left <= 0) return false
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50))
        this.waiters.push(() => (clearTimeout(timer), resolve()))
      })
    }
    return true
  }

  /** Waits until the check holds; throws with what came if it does not within `ms`. */
  async expect(check: (stream: EventStream) => boolean, what: string, ms = 5000): Promise<void> {
    if (!(await this.until(check, ms))) throw new Error(`timed out waiting for ${what}: ${this.text}`)
  }

  close() {
    this.controller.abort()
  }

  private wake() {
    for (const w of this.waiters.splice(0)) w()
  }
}

/** A JSON POST to a served app (`base`) as `cookie`, from its own origin, as a page's script sends it. */
export const post = (base: string, cookie: string, url: string, payload: Record<string, string> = {}) =>
  fetch(`${base}${url}`, { method: 'POST', headers: { cookie, 'content-type': 'application/json', origin: base }, body: JSON.stringify(payload) })

/** A fresh app listening on a free port of 127.0.0.1 (long polls answer after 3 s unless `env` says otherwise), closed when the test ends. */
export async function served(t: Teardown, env: Record<string, string> = {}): Promise<{ app: FastifyInstance; base: string }> {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '3', ...env })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, base }
}

/**
 * Two apps of one chat on PostgreSQL + Redis (a database of the test's own, a key prefix of its
 * own; `ownRedis`: a redis-server of the test's, which it may stop and start). Skip the test
 * unless haveRedis and havePostgres().
 */
export async function twoProcesses(t: Teardown, options: { ownRedis?: boolean; env?: Record<string, string> } = {}) {
  const redis = await redisFor(t, options.ownRedis)
  const env = { BROKER: 'redis', STORE: 'postgres', DATABASE_URL: await freshDatabase(t), REDIS_URL: redis.url, REDIS_PREFIX: `test${Math.random().toString(36).slice(2)}:`, ...options.env }
  const a = await served(t, env)
  const b = await served(t, env)
  return { a, b, redis }
}
