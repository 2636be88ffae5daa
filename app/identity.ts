import { createHash } from 'node:crypto'
import { remove as removeConfusables } from 'confusables'
import { z } from 'zod'
import { illFormed } from './validation.js'

export const transports = ['refresh', 'longpolling', 'websocket', 'sse', 'auto'] as const
export type Transport = (typeof transports)[number]

/** Each way in, in plain words: `label` on the welcome page, `short` in the room's top bar. */
export const transportNames: Record<Transport, { label: string; short: string; hint: string }> = {
  auto: { label: 'Automatic (recommended)', short: 'Live', hint: 'the best way your network allows: WebSocket, else a stream, else long polling; it switches by itself' },
  sse: { label: 'Live, one-way stream (Server-Sent Events)', short: 'Live · event stream', hint: 'for networks that block WebSocket but let streams through' },
  websocket: { label: 'Live (WebSocket)', short: 'Live · WebSocket', hint: 'messages arrive the moment they are sent' },
  longpolling: { label: 'Live, for strict networks (long polling)', short: 'Live · long polling', hint: 'works through proxies and firewalls that block WebSocket' },
  refresh: { label: 'Reloads every few seconds', short: 'Reloads every few seconds', hint: 'works without JavaScript' },
}

/** Where each transport's room starts (refresh joins on /refresh, then shows /refresh/room). */
export const transportEntry: Record<Transport, string> = {
  refresh: '/refresh',
  longpolling: '/longpolling/room',
  websocket: '/websocket/room',
  sse: '/sse/room',
  auto: '/auto/room',
}

export const NAME_MAX = 32

// Invisible characters: default-ignorable code points and format characters (zero-width
// joiners and spaces, soft hyphen, bidi controls, tag characters, variation selectors, the
// Hangul filler, ...). A variation selector or joiner inside an emoji sequence is allowed.
const invisible = /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{Cc}\p{Cs}]/u
const inEmoji = /\p{Extended_Pictographic}[\uFE0F\u200D]+(?=\p{Extended_Pictographic}|$)|\p{Extended_Pictographic}\uFE0F/gu
/** At most this many combining marks on one letter (é is one; zalgo is dozens). */
const MAX_MARKS = 2
const tooManyMarks = new RegExp(`\\p{M}{${MAX_MARKS + 1},}`, 'u')
const visible = /[\p{L}\p{N}]/u

/** Why a name cannot be read as it is, or undefined when it can. */
export function unreadable(name: string): string | undefined {
  const broken = illFormed(name, 'A name')
  if (broken) return broken
  const hidden = invisible.exec(name.replace(inEmoji, ''))
  if (hidden) {
    const code = hidden[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')
    return `A name cannot contain invisible characters (U+${code} is one).`
  }
  if (tooManyMarks.test(name.normalize('NFD'))) return `A name can have at most ${MAX_MARKS} accents on one letter.`
  if (!visible.test(name.normalize('NFKC'))) return 'A name needs at least one letter or digit.'
  return undefined
}

// Punctuation (dots, the middle dot, hyphens, underscores, quotes, brackets), spaces, and the
// symbols that read as marks beside letters (^ ` ~ + = < >): names are told apart by their
// letters, digits and emoji, not by these. Emoji and other pictures (\p{So}) and currency
// signs still count.
const insignificant = /[\p{P}\p{Z}\p{Sk}\p{Sm}]/gu

/**
 * A name's skeleton (after Unicode TR #39): what it looks like, so that look-alikes compare
 * equal. NFKC (fullwidth and compatibility forms), confusable letters mapped to Latin ones
 * (Cyrillic а, Greek ο, accented letters to their base, with the confusables package), case
 * folded, the usual digit and letter look-alikes, and without punctuation or spaces: "alice.",
 * ".alice", "a·lice" and "a-lice" are all alice.
 */
export function skeleton(name: string): string {
  // Folded first, so ALICE, alice and AL1CE all meet; i and l then count as one letter, which
  // also makes "ali" and "all" one name: a false "taken" costs a suggestion, a missed one a spoof.
  // Mapped before punctuation goes, as | is a symbol that reads as l.
  const folded = removeConfusables(name.normalize('NFKC'))
    .toLowerCase()
    .replace(/[il1|ǀ]/g, 'l')
    .replace(/0/g, 'o')
  const bare = folded.replace(insignificant, '')
  // Punctuation alone (never a valid name) keeps its own skeleton rather than becoming "".
  // Letter pairs after it goes, so "r.n" meets "rn" and so "m".
  return (bare === '' ? folded : bare)
    .replace(/rn/g, 'm')
    .replace(/vv/g, 'w')
    .normalize('NFC')
}

/** Names nobody may take: they would read as something the pages say themselves. */
const reserved = new Set(['you'].map(skeleton))

export const nameSchema = z
  .string()
  .trim()
  .min(1, 'Please choose a nick name or enter your email.')
  .refine((name) => Array.from(name).length <= NAME_MAX, `A name is at most ${NAME_MAX} characters.`)
  .superRefine((name, ctx) => {
    const problem = unreadable(name)
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
    else if (reserved.has(skeleton(name))) ctx.addIssue({ code: 'custom', message: `"${name}" is a word the chat uses itself; please pick another name.` })
  })

/** Who a signed-in person is, as their server-side session keeps it. Never taken from a request parameter. */
export interface User {
  /** Random, made at sign-in: presence, flood limits and the name claim go by it. */
  id: string
  /** A claim, unique among the people present (by look-alike skeleton). */
  name: string
  /** Signed in through an OAuth provider: which, and the provider's id for the user. */
  provider?: { name: string; id: string }
  /** MD5 of the trimmed, lower-cased email (Gravatar's key); the email itself is not kept. */
  emailHash?: string
  /** A registered account (its id is the account's, the same on every device); absent for a guest. */
  account?: true
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
export function userFromSignIn(input: string): { user: Omit<User, 'id'> } | { error: string } {
  const trimmed = input.trim()
  const at = trimmed.indexOf('@')
  const broken = illFormed(trimmed, at < 0 ? 'A name' : 'An email')
  if (broken) return { error: broken }
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

/** A provider's display name made into a valid name: invisible characters dropped, cut to NAME_MAX. */
export function nameFromProfile(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  const visibleOnly = value.replace(new RegExp(invisible.source, 'gu'), '').trim()
  const cleaned = Array.from(visibleOnly).slice(0, NAME_MAX).join('').trim()
  const name = nameSchema.safeParse(cleaned)
  return name.success ? name.data : undefined
}
