import type { Event } from '../chatroom/event.js'

/** A piece of a message: plain text, or a link (`href` is the parsed, normalized http(s) URL). */
export interface TextPart {
  text: string
  href?: string
}

/**
 * Splits a message into text and http(s) links. The one function both sides use: the server's
 * templates, and the browser scripts, which get this very function's source as
 * /public/js/linkify.js; so it must stay self-contained (nothing from outside its body).
 * Punctuation that ends a sentence is left out of a link; a closing bracket stays in when the
 * URL opened one (Wikipedia's "Foo_(bar)"). Anything `URL` does not parse as http(s) stays text.
 */
export function linkSegments(text: string): TextPart[] {
  const parts: TextPart[] = []
  const candidates = /\bhttps?:\/\/[^\s<>"'`]+/gi
  const count = (s: string, c: string) => s.split(c).length - 1
  let done = 0
  for (const match of text.matchAll(candidates)) {
    let url = match[0]
    for (;;) {
      const end = url.at(-1) ?? ''
      const opener = ({ ')': '(', ']': '[', '}': '{' } as Record<string, string>)[end]
      if (opener !== undefined ? count(url, end) > count(url, opener) : '.,;:!?*'.includes(end)) url = url.slice(0, -1)
      else break
    }
    let href: string
    try {
      const parsed = new URL(url)
      if ((parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.hostname === '') continue
      href = parsed.href
    } catch {
      continue
    }
    const start = match.index
    if (start > done) parts.push({ text: text.slice(done, start) })
    parts.push({ text: url, href })
    done = start + url.length
  }
  if (done < text.length) parts.push({ text: text.slice(done) })
  return parts
}

/**
 * The words of one line that stands for consecutive joins and leaves: "you joined", "bob
 * joined the room", "ann, bob and cy joined · dan left", "ann, bob and 4 others joined". Names
 * are parts of their own (`user`), so pages draw them as names; the viewer is "you". Like
 * linkSegments, the browser gets this very function (self-contained).
 */
export function joinLeaveWords(joined: readonly string[], left: readonly string[], me: string): { text: string; user?: true }[] {
  const out: { text: string; user?: true }[] = []
  const alone = joined.length + left.length === 1
  const says = (names: readonly string[], verb: string) => {
    if (names.length === 0) return
    if (out.length > 0) out.push({ text: ' · ' })
    const shown = names.length <= 3 ? names : names.slice(0, 2)
    shown.forEach((name, i) => {
      if (i > 0) out.push({ text: i === shown.length - 1 && shown.length === names.length ? ' and ' : ', ' })
      out.push({ text: name === me ? 'you' : name, user: true })
    })
    const more = names.length - shown.length
    if (more > 0) out.push({ text: ` and ${more} others` })
    out.push({ text: ` ${verb}${alone && names[0] !== me ? ' the room' : ''}` })
  }
  says(joined, 'joined')
  says(left, 'left')
  return out
}

/** The browser's copy of linkSegments and joinLeaveWords, as an ES module (served at /public/js/linkify.js). */
export const linkifyModule =
  `// Generated from app/transport/thread.ts: the server renders links and join lines with these same functions.\n` +
  `export const linkSegments = ${linkSegments.toString()}\n` +
  `export const joinLeaveWords = ${joinLeaveWords.toString()}\n`

/** Consecutive messages of one sender closer than this are shown as one group. */
export const GROUP_WITHIN_MS = 5 * 60_000

/** One line of the thread as the templates show it. */
export interface Row {
  /**
   * A message (as it stands: edited or deleted); a notice (one or more consecutive joins and
   * leaves, as one line); or a change (an edit or a deletion of a message shown before: the
   * page's script applies it there, it is no line of its own).
   */
  kind: 'message' | 'notice' | 'change'
  /** The message; a notice's last join or leave; the edit or deletion. */
  event: Event
  /** "you" for the viewer's own events. */
  who: string
  mine: boolean
  /** Continues the previous message's group: no avatar or name of its own. */
  cont: boolean
  /** A date line before this row (UTC on the server; the page's script shows local dates). */
  day: string | undefined
  iso: string
  /** HH:MM (UTC on the server; the page's script shows local time). */
  time: string
  /** A message's text (or an edit's new text), with its links. */
  parts: TextPart[]
  /** A notice's people, in order, each once: who joined and who left. */
  joined: string[]
  left: string[]
  /** A notice's words (joinLeaveWords). */
  words: { text: string; user?: true }[]
  /** A notice's every name, when its words leave some out ("Joined: …. Left: …."). */
  everyone: string | undefined
  /** A message edited since: when, in words (UTC). */
  edited: string | undefined
}

const dayLabel = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })
const fullLabel = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', dateStyle: 'full', timeStyle: 'short' })

/** A moment in words for a title (UTC on the server; the page's script shows local time). */
export function when(timestamp: number): string {
  return `${fullLabel.format(timestamp)} UTC`
}

const utcDay = (timestamp: number) => new Date(timestamp).toISOString().slice(0, 10)
const isPresence = (e: Event | undefined) => e?.type === 'join' || e?.type === 'leave'

/**
 * The thread as rows: grouping and date lines follow the same rule as public/js/chat.js
 * (a group: messages of one sender, within GROUP_WITHIN_MS, on one day). Consecutive joins and
 * leaves of one day are one notice. Edits and deletions are already applied to the messages
 * they refer to (the server's window and history show messages as they stand): they become
 * `change` rows, for a page that shows the message from before. `previous` is the event shown
 * just before these, when the page already has some.
 */
export function threadRows(events: readonly Event[], me: string, previous?: Event): Row[] {
  const rows: Row[] = []
  let before = previous
  for (const event of events) {
    const iso = new Date(event.timestamp).toISOString()
    const base = { event, who: event.user === me ? 'you' : event.user, mine: event.user === me, iso, time: iso.slice(11, 16), joined: [], left: [], words: [], everyone: undefined }
    if (event.type === 'edit' || event.type === 'delete') {
      rows.push({ ...base, kind: 'change', cont: false, day: undefined, parts: event.type === 'edit' ? linkSegments(event.text ?? '') : [], edited: event.type === 'edit' ? when(event.timestamp) : undefined })
      continue
    }
    const newDay = before === undefined || utcDay(before.timestamp) !== iso.slice(0, 10)
    const last = rows.findLast((r) => r.kind !== 'change')
    if (isPresence(event) && !newDay && last?.kind === 'notice' && isPresence(before)) {
      // One more join or leave on the line before: the line stands for it too.
      fold(last, event, me, iso)
      before = event
      continue
    }
    const cont =
      !newDay &&
      event.type === 'message' &&
      before?.type === 'message' &&
      before.user === event.user &&
      event.timestamp - before.timestamp < GROUP_WITHIN_MS
    before = event
    const row: Row = {
      ...base,
      kind: event.type === 'message' ? 'message' : 'notice',
      cont,
      day: newDay ? dayLabel.format(event.timestamp) : undefined,
      parts: event.type === 'message' && !event.deleted ? linkSegments(event.text ?? '') : [],
      edited: event.type === 'message' && event.edited !== undefined && !event.deleted ? when(event.edited) : undefined,
    }
    if (row.kind === 'notice') fold(row, event, me, iso)
    rows.push(row)
  }
  return rows
}

/** Adds a join or leave to a notice: its lists, its words, and its time (the last one's). */
function fold(row: Row, event: Event, me: string, iso: string) {
  const list = event.type === 'join' ? row.joined : row.left
  if (!list.includes(event.user)) list.push(event.user)
  row.event = event
  row.iso = iso
  row.time = iso.slice(11, 16)
  row.words = joinLeaveWords(row.joined, row.left, me)
  const shown = row.words.filter((w) => w.user).length
  row.everyone =
    shown < row.joined.length + row.left.length
      ? [row.joined.length > 0 ? `Joined: ${row.joined.join(', ')}.` : '', row.left.length > 0 ? `Left: ${row.left.join(', ')}.` : ''].filter(Boolean).join(' ')
      : undefined
}
