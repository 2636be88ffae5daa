import { createHash } from 'node:crypto'
import { z } from 'zod'

export const transports = ['refresh', 'longpolling', 'websocket'] as const
export type Transport = (typeof transports)[number]

/** Where each transport's room starts (refresh joins on /refresh, then shows /refresh/room). */
export const transportEntry: Record<Transport, string> = {
  refresh: '/refresh',
  longpolling: '/longpolling/room',
  websocket: '/websocket/room',
}

// Control characters, and the invisible format characters used to spoof names
// (bidi overrides and isolates, zero-width spaces, BOM).
const hidden = /[\p{Cc}\p{Cs}\u200B\u200E\u200F\u202A-\u202E\u2060\u2066-\u2069\uFEFF]/u
export const NAME_MAX = 32

export const nameSchema = z
  .string()
  .trim()
  .min(1, 'Please choose a nick name or enter your email.')
  .refine((name) => !hidden.test(name), 'A name cannot contain control or invisible characters.')
  .refine((name) => Array.from(name).length <= NAME_MAX, `A name is at most ${NAME_MAX} characters.`)

/** Who a signed-in person is, as the session cookie keeps it. Never taken from a request parameter. */
export interface User {
  name: string
  /** MD5 of the trimmed, lower-cased email (Gravatar's key); the email itself is not kept. */
  emailHash?: string
}

/** A signed-in user as requests see them: with the avatar URL others are shown. */
export interface SignedInUser extends User {
  avatar: string
}

const emailSchema = z.email()

/**
 * The welcome form's one field: a nick name, or an email whose part before "@" is the
 * display name. Returns the user or the message to show.
 */
export function userFromSignIn(input: string): { user: User } | { error: string } {
  const trimmed = input.trim()
  const at = trimmed.indexOf('@')
  if (at < 0) {
    const name = nameSchema.safeParse(trimmed)
    return name.success ? { user: { name: name.data } } : { error: name.error.issues[0]!.message }
  }
  if (!emailSchema.safeParse(trimmed).success) return { error: 'That email address does not look right.' }
  const name = nameSchema.safeParse(trimmed.slice(0, at))
  if (!name.success) return { error: name.error.issues[0]!.message }
  const emailHash = createHash('md5').update(trimmed.toLowerCase()).digest('hex')
  return { user: { name: name.data, emailHash } }
}

/** A provider's display name made into a valid name: hidden characters dropped, cut to NAME_MAX. */
export function nameFromProfile(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const cleaned = Array.from(value.replace(new RegExp(hidden.source, 'gu'), '').trim()).slice(0, NAME_MAX).join('').trim()
  const name = nameSchema.safeParse(cleaned)
  return name.success ? name.data : undefined
}
