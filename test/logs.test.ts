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
