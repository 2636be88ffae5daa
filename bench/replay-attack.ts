// The replay attack of issue 21, measured: a room of 2 KB messages, then people opening 16 long
// polls each with a cursor 5,000 events back, at once. Prints the server's peak RSS and how long
// /healthz takes meanwhile. Run: npx tsx bench/replay-attack.ts [people=4]
// Bounded: 5,000 messages, people × 16 polls, everything on 127.0.0.1, the server ended by pid.
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const people = Number(process.argv[2] ?? 4)
const MESSAGES = 5000
const dataDir = mkdtempSync(join(tmpdir(), 'chat-replay-'))
const child = spawn(process.execPath, ['--import', 'tsx', 'app/server.ts'], {
  env: { ...process.env, PORT: '0', STORE: 'sqlite', DATA_DIR: dataDir, RATE_LIMIT_MESSAGES: '100000', SIGNIN_RATE_LIMIT: '100000', MAX_POLLS_PER_USER: '64', SESSION_SECRET: 'replay-bench-secret-replay-bench-secret-0' },
  stdio: ['ignore', 'pipe', 'inherit'],
})
const base = await new Promise<string>((resolve, reject) => {
  let output = ''
  const timer = setTimeout(() => reject(new Error('server did not start')), 30_000)
  child.stdout!.on('data', (d: Buffer) => {
    output += d
    const port = /open http:\/\/(?:localhost|127\.0\.0\.1):(\d+)\/|served on 127\.0\.0\.1:(\d+)\)/.exec(output)?.slice(1).find(Boolean)
    const url = port && `http://127.0.0.1:${port}`
    if (url) {
      clearTimeout(timer)
      resolve(url)
    }
  })
})
const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024

async function signIn(user: string): Promise<string> {
  const res = await fetch(`${base}/signin`, { method: 'POST', body: new URLSearchParams({ user, transport: 'longpolling' }), redirect: 'manual' })
  return res.headers.getSetCookie().find((c) => c.startsWith('chat_session='))!.split(';')[0]!
}

try {
  const sender = await signIn('sender')
  const text = 'x'.repeat(1990)
  for (let i = 0; i < MESSAGES; i += 50) {
    await Promise.all(
      Array.from({ length: 50 }, () =>
        fetch(`${base}/longpolling/room/messages`, { method: 'POST', headers: { cookie: sender, 'content-type': 'application/json' }, body: JSON.stringify({ text }) }),
      ),
    )
  }
  const first = await fetch(`${base}/longpolling/room/messages`, { headers: { cookie: sender } })
  const epoch = first.headers.get('x-room-epoch')
  const last = ((await first.json()) as { id: number }[]).at(-1)!.id
  const cursor = last - MESSAGES + 10
  const cookies = await Promise.all(Array.from({ length: people }, (_, i) => signIn(`reader${i}`)))
  const rssBefore = kb('VmRSS')
  let slowest = 0
  let probing = true
  const probe = (async () => {
    while (probing) {
      const began = Date.now()
      await fetch(`${base}/healthz`)
      slowest = Math.max(slowest, Date.now() - began)
      await new Promise((r) => setTimeout(r, 50))
    }
  })()
  const began = Date.now()
  let bytes = 0
  await Promise.all(
    cookies.flatMap((cookie) =>
      Array.from({ length: 16 }, async () => {
        const res = await fetch(`${base}/longpolling/room/messages?lastReceived=${cursor}&epoch=${epoch}`, { headers: { cookie } })
        bytes = Math.max(bytes, (await res.arrayBuffer()).byteLength)
      }),
    ),
  )
  probing = false
  await probe
  console.log(
    `${people} people x 16 long polls, cursor ${last - cursor} events back (2 KB each): ` +
      `RSS ${rssBefore.toFixed(0)} MB before, peak ${kb('VmHWM').toFixed(0)} MB; largest answer ${(bytes / 1e6).toFixed(2)} MB; ` +
      `all answered in ${Date.now() - began} ms; slowest /healthz meanwhile ${slowest} ms`,
  )
} finally {
  child.kill('SIGKILL')
  rmSync(dataDir, { recursive: true, force: true })
}
