import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { skipUnless, startServer } from './helpers.js'

/**
 * The docs cannot drift from the server: every curl session in docs/*.md (a ```sh block whose
 * first line is `# session: NAME`, followed by a ```text block with what it prints) is run with
 * bash against a real server, in order, one temporary folder per page (so the cookie jars the
 * sessions write carry from one session to the next), and its output must match. Placeholders in
 * the expected output stand for what changes from run to run; everything else is literal.
 */
const ROOT = fileURLToPath(new URL('../', import.meta.url))
const DOC_BASE = 'http://127.0.0.1:9000'
const METRICS_TOKEN = 'docs-metrics-token-0123'
const skip = skipUnless(spawnSync('curl', ['--version']).status === 0, 'curl is not installed (apt-get install curl)')

const placeholders: Record<string, string> = {
  '<epoch>': '[A-Za-z0-9_-]{6,64}',
  '<time>': '\\d{10,}',
  '<avatar>': '/avatars/[0-9a-f]+\\.svg',
  '<n>': '\\d+',
  '<token>': '[A-Za-z0-9._~%+/=-]+',
  '<...>': '.*?',
}
const placeholder = new RegExp(Object.keys(placeholders).map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g')

/** One expected line as a pattern: literal text, placeholders as wildcards. */
function linePattern(line: string): RegExp {
  let source = ''
  let at = 0
  for (const match of line.matchAll(placeholder)) {
    source += line.slice(at, match.index).replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + placeholders[match[0]]
    at = match.index + match[0].length
  }
  source += line.slice(at).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  return new RegExp(`^${source}$`)
}

interface Session {
  name: string
  script: string
  expected: string
  line: number
}

/** The sessions of one page, in order: each ```sh block marked `# session:` and the ```text block right after it. */
function sessionsOf(markdown: string): Session[] {
  const blocks = [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({
    lang: m[1]!,
    body: m[2]!,
    start: m.index,
    end: m.index + m[0].length,
    line: markdown.slice(0, m.index).split('\n').length,
  }))
  const sessions: Session[] = []
  for (const [i, block] of blocks.entries()) {
    const name = block.lang === 'sh' ? /^# session: (\S+)/.exec(block.body)?.[1] : undefined
    if (!name) continue
    const next = blocks[i + 1]
    const between = next ? markdown.slice(block.end, next.start) : ''
    if (!next || next.lang !== 'text' || between.trim() !== '') throw new Error(`session ${name} (line ${block.line}): a \`\`\`text block with its output must follow it`)
    sessions.push({ name, script: block.body, expected: next.body, line: block.line })
  }
  return sessions
}

function run(script: string, cwd: string): Promise<{ out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env: { ...process.env, METRICS_TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', () => {
      clearTimeout(timer)
      resolve({ out, err })
    })
  })
}

const lines = (text: string) => text.replace(/\s+$/, '').split('\n').map((l) => l.replace(/\s+$/, ''))

const pages = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort()

for (const page of pages) {
  const markdown = readFileSync(join(ROOT, 'docs', page), 'utf8')
  const sessions = sessionsOf(markdown)
  if (sessions.length === 0) continue
  t.test(`docs/${page}: the curl sessions print what the page says`, { skip }, async (t) => {
    // The server as `npm start` runs it (SQLite in a data folder of its own), with metrics on.
    const { base } = await startServer(t, { METRICS_TOKEN })
    const dir = mkdtempSync(join(tmpdir(), 'chat-docs-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    for (const session of sessions) {
      const { out, err } = await run(session.script.replaceAll(DOC_BASE, base), dir)
      const actual = lines(out.replaceAll(base, DOC_BASE))
      const expected = lines(session.expected)
      const wrong = expected.findIndex((line, i) => actual[i] === undefined || !linePattern(line).test(actual[i]))
      const ok = wrong === -1 && actual.length === expected.length
      t.ok(ok, `${session.name} (docs/${page}:${session.line})`, ok ? {} : {
        firstDifference: wrong === -1 ? `line ${expected.length + 1}: more output than the page shows` : `line ${wrong + 1}`,
        expectedLine: wrong === -1 ? undefined : expected[wrong],
        actualLine: wrong === -1 ? actual[expected.length] : actual[wrong],
        actual: actual.join('\n'),
        stderr: err,
      })
    }
  })
}

t.test('docs/protocol.md has a session for each thing a client does', async (t) => {
  const names = sessionsOf(readFileSync(join(ROOT, 'docs/protocol.md'), 'utf8')).map((s) => s.name)
  for (const wanted of ['signin', 'say', 'read', 'wait', 'history', 'edit-delete', 'search', 'sse', 'refused', 'rooms']) {
    t.ok(names.includes(wanted), `a session named ${wanted}`)
  }
})

/** The anchors GitHub makes for a page's headings: lower case, punctuation dropped, spaces as dashes. */
function anchorsOf(markdown: string): Set<string> {
  const headings = markdown.replace(/^```[\s\S]*?^```$/gm, '').matchAll(/^#{1,6} (.+)$/gm)
  return new Set([...headings].map((m) => m[1]!.toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, '').replace(/ /g, '-')))
}

t.test('the README stays short, and every relative link in it and in docs/ leads to a file (and heading)', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const count = readme.replace(/\n$/, '').split('\n').length
  t.ok(count <= 150, `README.md is ${count} lines (at most 150)`)
  for (const file of ['README.md', ...pages.map((p) => `docs/${p}`)]) {
    const text = readFileSync(join(ROOT, file), 'utf8').replace(/^```[\s\S]*?^```$/gm, '')
    const targets = [...text.matchAll(/\]\(([^)\s]+)\)|\bsrc="([^"]+)"/g)].map((m) => (m[1] ?? m[2])!)
    for (const target of targets) {
      if (/^(https?:|mailto:)/.test(target)) continue
      const [path, anchor] = target.split('#') as [string, string | undefined]
      const resolved = path === '' ? join(ROOT, file) : resolve(dirname(join(ROOT, file)), decodeURIComponent(path))
      const found = existsSync(resolved) && (anchor === undefined || anchorsOf(readFileSync(resolved, 'utf8')).has(anchor))
      t.ok(found, `${file}: ${target}`)
    }
  }
})
