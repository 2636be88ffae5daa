// `npm start` and `npm run bench` build first; this skips tsc (a few seconds) when nothing it
// compiles is newer than the last build, so a start with unchanged sources is immediate.
import { execFileSync } from 'node:child_process'
import { readdirSync, statSync, utimesSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const stamp = join(root, 'dist', '.tsbuildinfo')

function newest(path) {
  const info = statSync(path)
  if (!info.isDirectory()) return path.endsWith('.ts') || path.endsWith('.json') ? info.mtimeMs : 0
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))))
}

let built = 0
try {
  built = statSync(stamp).mtimeMs
} catch {
  // Never built.
}
const sources = Math.max(...['app', 'conf', 'bench', 'client', 'examples', 'page', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map((p) => newest(join(root, p))))
if (built >= sources && !process.argv.includes('--force')) process.exit(0)
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { stdio: 'inherit' })
// tsc leaves its build info alone when nothing changed in what it emits; mark this build as seen.
const now = new Date()
utimesSync(stamp, now, now)
