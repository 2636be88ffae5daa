import { hash, verify } from '@node-rs/argon2'
import { illFormed } from '../validation.js'

/** argon2id with OWASP's baseline (19 MiB, 2 passes, 1 lane): about 25 ms here, the same for every check. */
const ARGON2ID = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const

export const PASSWORD_MIN = 8
export const PASSWORD_MAX = 256

/** Why a new password cannot be used, or undefined. Any characters; length in code points. */
export function passwordProblem(password: unknown): string | undefined {
  if (typeof password !== 'string' || password.length === 0) return 'Please choose a password.'
  const broken = illFormed(password, 'A password')
  if (broken) return broken
  const length = Array.from(password).length
  if (length < PASSWORD_MIN) return `A password needs at least ${PASSWORD_MIN} characters.`
  if (length > PASSWORD_MAX) return `A password is at most ${PASSWORD_MAX} characters.`
  return undefined
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2ID)
}

/** A hash of nothing anyone types, so a check for a missing account costs what a real one does. */
let decoy: Promise<string> | undefined

/**
 * Whether the password matches the hash. With no hash (no such account, or one without a
 * password) it still does the same work against a decoy, so timing says nothing.
 */
export async function verifyPassword(hashed: string | null | undefined, password: string): Promise<boolean> {
  if (password.length > PASSWORD_MAX * 4) password = password.slice(0, PASSWORD_MAX * 4)
  if (!hashed) {
    decoy ??= hash(`decoy-${Math.random()}`, ARGON2ID)
    await verify(await decoy, password).catch(() => false)
    return false
  }
  return verify(hashed, password).catch(() => false)
}
