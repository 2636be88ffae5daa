import t from 'tap'
import { startServer } from './helpers.js'

// Logs worth reading: the start line says where to go and what the server runs on; then one
// line per request at most, none for static files and probes at info; JSON lines when the output
// is not a terminal (a log collector's), as here.

t.test('the server logs one JSON line per request, none for static files and probes, and a start line with the URL, the store, the bus and the limits', async (t) => {
  const server = await startServer(t, { RATE_LIMIT_MESSAGES: '7' })
  const { base } = server
  await fetch(`${base}/healthz`)
  await fetch(`${base}/readyz`)
  await fetch(`${base}/public/css/chat.css`)
  await fetch(`${base}/`)
  const signIn = await fetch(`${base}/signin`, { method: 'POST', body: new URLSearchParams({ user: 'ann', transport: 'longpolling' }), redirect: 'manual' })
  const cookie = signIn.headers.getSetCookie()[0]!.split(';')[0]!
  await fetch(`${base}/search?q=secret+words`, { headers: { cookie, accept: 'application/json' } })
  await fetch(`${base}/nowhere`)
  // Lines are written as requests end; give the last one a moment to reach the pipe.
  const deadline = Date.now() + 5000
  while (!server.output().includes('GET /nowhere') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))

  const lines = server
    .output()
    .split('\n')
    .filter((l) => l.trim() !== '')
  const records = lines.map((l) => JSON.parse(l) as { msg: string; level: number })
  t.pass('every line is JSON')
  const start = records.find((r) => r.msg.startsWith('Chat room ready'))
  t.match(start?.msg, new RegExp(`open ${base.replace('127.0.0.1', 'localhost')}/ · store sqlite \\(.+chat\\.sqlite\\) · bus in-process \\(one process\\) · limits: 7 messages per 10 s, 2000 characters`), 'the start line: the URL, the store, the bus, the limits')
  const requests = records.filter((r) => /^(GET|POST) \//.test(r.msg)).map((r) => r.msg.replace(/ \d+ ms$/, ''))
  t.same(requests, ['GET / 200', 'POST /signin 303', 'GET /search 200', 'GET /nowhere 404'], 'one line per request; none for the probes and the stylesheet')
  t.notOk(server.output().includes('secret'), 'what was searched for stays out of the log')
  t.notOk(server.output().includes('incoming request'), "fastify's second line per request is gone")
})

t.test('the start line names PUBLIC_URL when it is set, and where the server listens', async (t) => {
  const server = await startServer(t, { PUBLIC_URL: 'https://chat.example.test' })
  const port = new URL(server.base).port
  t.match(server.output(), `Chat room ready: open https://chat.example.test/ (served on 127.0.0.1:${port}) · store`, 'the public address to open, then the listening one')
  t.notMatch(server.output(), `open http://localhost:${port}`, 'not the loopback name')
})

t.test("a request's logger is made when it writes: its lines carry the request id, and lines below the level are not written", async (t) => {
  const { Writable } = await import('node:stream')
  const Fastify = (await import('fastify')).default
  const { lazyRequestLogger } = await import('../app/plugins/request-log.js')
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  const app = Fastify({ logger: { level: 'warn', stream }, childLoggerFactory: lazyRequestLogger, disableRequestLogging: true })
  app.get('/quiet', async (request) => {
    request.log.info('an info line')
    request.log.debug({ detail: 1 }, 'a debug line')
    return { level: request.log.level, info: (request.log as unknown as { isLevelEnabled(l: string): boolean }).isLevelEnabled('info') }
  })
  app.get('/loud', async (request) => {
    request.log.warn({ detail: 2 }, 'a warning')
    request.log.child({ part: 'inner' }).error('an inner error')
    return 'ok'
  })
  app.get('/louder', async (request) => {
    request.log.level = 'info'
    request.log.info('now at info')
    return 'ok'
  })
  t.teardown(() => app.close())
  const quiet = await app.inject('/quiet')
  t.same(quiet.json(), { level: 'warn', info: false }, "the request's logger has its parent's level")
  const loud = await app.inject('/loud')
  const louder = await app.inject('/louder')
  t.equal(loud.statusCode + louder.statusCode, 400)
  t.same(
    lines.map((l) => [l.msg, l.detail, l.part]),
    [['a warning', 2, undefined], ['an inner error', undefined, 'inner'], ['now at info', undefined, undefined]],
    'the warning, its child logger and a level raised for one request write; the info and debug lines below the level do not',
  )
  t.ok(lines.every((l) => typeof l.reqId === 'string'), 'every line names its request')
  t.equal(new Set(lines.slice(0, 2).map((l) => l.reqId)).size, 1, "a child's line names the same request")
  t.not(lines[0]!.reqId, lines[2]!.reqId, 'another request, another id')
})
