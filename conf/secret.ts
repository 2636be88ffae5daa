import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The session secret to use when SESSION_SECRET is not set: made once and kept in `dir`
 * (readable by this user only), so a restart keeps everyone signed in and avatars the same.
 */
export function keptSessionSecret(dir: string): { secret: string; file: string; created: boolean } {
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'session-secret')
  const read = () => {
    try {
      const secret = readFileSync(file, 'utf8').trim()
      return secret.length >= 32 ? secret : undefined
    } catch {
      return undefined
    }
  }
  const kept = read()
  if (kept) return { secret: kept, file, created: false }
  const secret = randomBytes(32).toString('base64url')
  try {
    writeFileSync(file, secret + '\n', { mode: 0o600, flag: 'wx' })
  } catch {
    // Another process made it first (or the file is unusable): use the one on disk if any.
    const other = read()
    if (other) return { secret: other, file, created: false }
    writeFileSync(file, secret + '\n', { mode: 0o600 })
  }
  return { secret, file, created: true }
}
