import type { Event } from './chatroom/event.js'

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

/** The browser's copy of linkSegments, as an ES module (served at /public/js/linkify.js). */
export const linkifyModule = `// Generated from app/thread.ts: the server renders links with this same function.\nexport const linkSegments = ${linkSegments.toString()}\n`

/** Consecutive messages of one sender closer than this are shown as one group. */
export const GROUP_WITHIN_MS = 5 * 60_000

/** One event as the templates show it. */
export interface Row {
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
  parts: TextPart[]
}

const dayLabel = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })

/**
 * The thread as rows: grouping and date lines follow the same rule as public/js/chat.js
 * (a group: messages of one sender, within GROUP_WITHIN_MS, on one day). `previous` is the
 * event shown just before these, when the page already has some.
 */
export function threadRows(events: readonly Event[], me: string, previous?: Event): Row[] {
  let before = previous
  return events.map((event) => {
    const iso = new Date(event.timestamp).toISOString()
    const day = iso.slice(0, 10)
    const newDay = before === undefined || new Date(before.timestamp).toISOString().slice(0, 10) !== day
    const cont =
      !newDay &&
      event.type === 'message' &&
      before?.type === 'message' &&
      before.user === event.user &&
      event.timestamp - before.timestamp < GROUP_WITHIN_MS
    before = event
    const mine = event.user === me
    return {
      event,
      who: mine ? 'you' : event.user,
      mine,
      cont,
      day: newDay ? dayLabel.format(event.timestamp) : undefined,
      iso,
      time: iso.slice(11, 16),
      parts: event.type === 'message' ? linkSegments(event.text ?? '') : [],
    }
  })
}
