import { z } from 'zod'
import { foldMessage, messageLength } from '../client/render.js'

// Control characters other than newline; bidi overrides that would flip the rest of the page.
const forbidden = /[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E\u2066-\u2069]/

// A lone surrogate: half of a character, which JSON can carry ("\ud800") and UTF-8 cannot (it
// would reach readers as U+FFFD, or break a strict decoder). With the u flag a whole pair is one
// code point, so this matches only the halves alone: String.prototype.isWellFormed, which
// TypeScript's ES2023 lib does not know yet.
const loneSurrogate = /\p{Surrogate}/u

/** Why text is not well-formed Unicode (names the first lone surrogate), or undefined when it is. */
export function illFormed(text: string, what: string): string | undefined {
  const lone = loneSurrogate.exec(text)
  if (!lone) return undefined
  const code = lone[0].charCodeAt(0).toString(16).toUpperCase()
  return `${what} must be well-formed Unicode text: U+${code} is half of a character (a lone surrogate).`
}

/**
 * A message's text: 1..max characters after trimming, newlines allowed, CRLF folded. Checked by
 * hand (it runs for every message said, so no schema object is walked), with these answers.
 */
export function checkMessageText(text: unknown, max: number): { text: string } | { error: string } {
  if (typeof text !== 'string') return { error: 'A message must be text.' }
  const folded = foldMessage(text)
  if (folded.length === 0) return { error: 'A message cannot be empty.' }
  // Characters, not UTF-16 units (as the page counts them): counted only when the units alone could be over.
  if (folded.length > max && messageLength(folded) > max) return { error: `A message is at most ${max} characters.` }
  if (forbidden.test(folded)) return { error: 'A message cannot contain control characters.' }
  const broken = illFormed(folded, 'A message')
  if (broken) return { error: broken }
  return { text: folded }
}

/** An event id, a log's epoch, a page's id: as the schemas below and the long poll's quick check (parsePollQuery) read them. */
const EVENT_ID = /^\d{1,15}$/
const EPOCH = /^[A-Za-z0-9_-]{1,64}$/
const TAB = /^[A-Za-z0-9_-]{8,40}$/

/** The one cursor: the id of the last event the client has (absent: the replay window), and the epoch of its log. */
export const lastReceivedSchema = z.object({
  lastReceived: z.string().regex(EVENT_ID, 'lastReceived must be a non-negative whole number (an event id).').transform(Number).optional(),
  epoch: z.string().regex(EPOCH, 'epoch must be the room epoch the server sent (letters, digits, - and _).').optional(),
})

/** The Last-Event-ID header a browser's EventSource sends when it reconnects: the id of the last event it has. */
export const lastEventIdSchema = z
  .string()
  .regex(EVENT_ID, 'Last-Event-ID must be an event id (a non-negative whole number).')
  .transform(Number)
  .optional()

/** Which page of the user a request comes from: the random id the page got when it loaded. */
export const tabSchema = z.string().regex(TAB, 'tab must be the page id the server gave (8 to 40 letters, digits, - and _).')

/** A request from one page: the cursor, and the page's id. */
export const pageQuerySchema = lastReceivedSchema.extend({ tab: tabSchema.optional() })

/** GET /room/history: events before an id (default: the newest), at most `limit`. */
export const historyQuerySchema = z.object({
  before: z.string().regex(EVENT_ID, 'before must be an event id.').transform(Number).optional(),
  limit: z
    .string()
    .regex(/^\d{1,3}$/, 'limit must be a whole number from 1 to 200.')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 200, 'limit must be a whole number from 1 to 200.')
    .optional(),
  epoch: lastReceivedSchema.shape.epoch,
})

/** A long poll's query: the cursor, and whether to include typing signals (the page asks; curl need not). */
export const pollQuerySchema = pageQuerySchema.extend({
  typing: z
    .enum(['0', '1', 'false', 'true'], { error: 'typing must be 1 or 0.' })
    .transform((v) => v === '1' || v === 'true')
    .optional(),
})

export type PollQuery = z.infer<typeof pollQuerySchema>

const TYPING = new Set(['0', '1', 'false', 'true'])
const fits = (value: unknown, pattern: RegExp) => value === undefined || (typeof value === 'string' && pattern.test(value))

/**
 * A long poll's query (pollQuerySchema): checked by hand when it is well formed, as every poll
 * of every page is (the schema costs a few per cent of a long poll's CPU), else by the schema,
 * which says what is wrong.
 */
export function parsePollQuery(query: unknown): { data: PollQuery } | { error: string } {
  const { lastReceived, epoch, tab, typing } = (query ?? {}) as Record<string, unknown>
  if (fits(lastReceived, EVENT_ID) && fits(epoch, EPOCH) && fits(tab, TAB) && (typing === undefined || (typeof typing === 'string' && TYPING.has(typing)))) {
    return {
      data: {
        lastReceived: lastReceived === undefined ? undefined : Number(lastReceived),
        epoch: epoch as string | undefined,
        tab: tab as string | undefined,
        typing: typing === undefined ? undefined : typing === '1' || typing === 'true',
      },
    }
  }
  const parsed = pollQuerySchema.safeParse(query)
  return parsed.success ? { data: parsed.data } : { error: firstIssue(parsed.error) }
}

/**
 * A send's client message id (made by the page's outbox, or by a program): 8 to 64 visible
 * ASCII characters. Absent: the send is not deduplicated.
 */
export function checkClientId(id: unknown): string | undefined | { error: string } {
  if (id === undefined || id === null || id === '') return undefined
  if (typeof id === 'string' && /^[\x21-\x7e]{8,64}$/.test(id)) return id
  return { error: 'clientId is 8 to 64 visible ASCII characters (letters, digits, punctuation; no spaces).' }
}

/** What a say asks beyond its text to be a reply: the message it answers, and whether a thread's reply also shows in the room. */
export interface ReplyAsked {
  replyTo?: unknown
  alsoToRoom?: unknown
}

/** A reply's fields (form fields are strings: "12", "on"), checked: none for a plain message. */
export function checkReply(asked: ReplyAsked | undefined): { replyTo?: number; alsoToRoom?: true } | { error: string } {
  const { replyTo, alsoToRoom } = asked ?? {}
  if (replyTo === undefined || replyTo === null || replyTo === '') return {}
  const id = typeof replyTo === 'string' && EVENT_ID.test(replyTo) ? Number(replyTo) : replyTo
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) return { error: 'replyTo is the id of a message of this room.' }
  const also = alsoToRoom === true || alsoToRoom === 'true' || alsoToRoom === 'on' || alsoToRoom === '1'
  return also ? { replyTo: id, alsoToRoom: true } : { replyTo: id }
}

/** One emoji (as Unicode draws it: a flag, a skin tone, a family are each one), built at run time (the `v` flag). */
const oneEmoji = new RegExp('^\\p{RGI_Emoji}$', 'v')

/** A reaction's emoji and action (`add`, the default, or `remove`), checked. */
export function checkReaction(emoji: unknown, action: unknown): { emoji: string; action: 'add' | 'remove' } | { error: string } {
  if (action !== undefined && action !== '' && action !== 'add' && action !== 'remove') return { error: 'action is "add" or "remove".' }
  if (typeof emoji !== 'string' || emoji.length > 32) return { error: 'emoji is one emoji, such as 👍.' }
  // A variation selector where Unicode's own form has none ("👍️" for "👍") is the same emoji: kept in Unicode's form, so both count as one.
  const bare = emoji.replace(/\uFE0F/g, '')
  const one = oneEmoji.test(emoji) ? emoji : oneEmoji.test(bare) ? bare : undefined
  if (one === undefined) return { error: 'emoji is one emoji, such as 👍.' }
  return { emoji: one, action: action === 'remove' ? 'remove' : 'add' }
}

/** Formats the first zod issue as the one message a client sees. */
export function firstIssue(error: z.ZodError): string {
  return error.issues[0]?.message ?? 'Invalid input.'
}

/** One room's cursor on a connection that carries several rooms. */
export interface RoomCursor {
  room: string
  epoch?: string | undefined
  lastReceived?: number | undefined
}

const ROOM_CURSOR = /^([^\s:,]{1,64}):([A-Za-z0-9_-]{0,64}):(\d{0,15})$/u

/** Cursors a connection that follows the person may resume at most (a room each, their own `me` beside them). */
export const FOLLOW_CURSORS = 500

/**
 * Cursors as `ROOM:EPOCH:ID` (repeated `cursor` parameters, or comma-separated as in an event
 * stream's Last-Event-ID); `ROOM::` starts at the room's replay window (from its newest when
 * following the person). At most `max` rooms (FOLLOW_CURSORS following), each once.
 */
export function parseCursors(value: unknown, max: number, follow = false): { cursors: RoomCursor[] } | { error: string } {
  const raw = (Array.isArray(value) ? value : value === undefined ? [] : [value]).flatMap((v) => (typeof v === 'string' ? v.split(',') : [v]))
  // Following the person (`follow=me`), the rooms are theirs: cursors only say where to resume.
  if (raw.length === 0 && follow) return { cursors: [] }
  if (raw.length === 0) return { error: 'Say which rooms: cursor=ROOM:EPOCH:LASTID (ROOM:: for a room\'s newest), repeated per room.' }
  // Following, a cursor per room of theirs comes back on every resume, however many rooms they are in: bounded by FOLLOW_CURSORS.
  const cap = follow ? Math.max(max, FOLLOW_CURSORS) + 1 : max
  if (raw.length > cap) return { error: `At most ${cap - (follow ? 1 : 0)} rooms on one connection.` }
  const cursors: RoomCursor[] = []
  for (const item of raw) {
    const match = typeof item === 'string' ? ROOM_CURSOR.exec(item) : null
    if (!match) return { error: 'A cursor is ROOM:EPOCH:LASTID (ROOM:: for a room\'s newest).' }
    const [, room, epoch, id] = match
    if (cursors.some((c) => c.room === room)) return { error: `The room ${room} is named twice.` }
    cursors.push({ room: room!, ...(epoch && { epoch }), ...(id && { lastReceived: Number(id) }) })
  }
  return { cursors }
}

/** A time in a query: milliseconds since the epoch, or a date (2026-11-30) or date and time (ISO 8601). */
const when = z
  .string()
  .max(40)
  .transform((value, ctx) => {
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
    if (Number.isFinite(ms)) return ms
    ctx.addIssue({ code: 'custom', message: 'before and after are dates (2026-11-30), ISO 8601 times or milliseconds since 1970.' })
    return z.NEVER
  })

/** A search form sends its empty filters as empty strings: absent. */
const blank = (value: unknown) => (value === '' ? undefined : value)

/** GET /search: the words (at most 200 characters), and optionally one room, one person, a time range and how many. */
export const searchQuerySchema = z.object({
  q: z.string().max(200, 'q is at most 200 characters.').default(''),
  room: z.preprocess(blank, z.string().min(1).max(64).optional()),
  user: z.preprocess(blank, z.string().min(1).max(64).optional()),
  before: z.preprocess(blank, when.optional()),
  after: z.preprocess(blank, when.optional()),
  limit: z.preprocess(blank, z.coerce.number().int().min(1).max(200).optional()),
})

/** `follow=me` on a connection of several rooms: it follows the person (every room they belong to, now and later, and their own events). */
export function followsMe(query: unknown): boolean {
  return typeof query === 'object' && query !== null && (query as { follow?: unknown }).follow === 'me'
}
