import { spawn } from 'node:child_process'
import { socketScenario, signInUsers } from '/work/main/dist/bench/loadgen.js'
const port = 9177
const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/prof', '/work/main/dist/bench/baseline.js'], { env: { ...process.env, PORT: String(port), LOG_LEVEL: 'warn', SESSION_SECRET: 'x'.repeat(40), RATE_LIMIT_MESSAGES: '100000', RATE_LIMIT_WINDOW: '0.1', SIGNIN_RATE_LIMIT: '100000' }, stdio: 'inherit' })
await new Promise((r) => setTimeout(r, 1500))
const base = `http://127.0.0.1:${port}`
const cookies = await signInUsers(base, 20, 'p')
const r = await socketScenario({ kind: 'baseline', base, pid: child.pid }, cookies, { name: 'x', n: 100, senders: 10, rate: 100, seconds: 5 }, 'pp')
console.log(r.p50, r.p99, r.cpuPerMillion)
child.kill('SIGINT')
await new Promise((r) => child.once('exit', r))
