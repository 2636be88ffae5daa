// How a thread reads, in one place for the server's pages (app/transport/thread.ts, the
// templates) and the page's script (served as /public/js/client/render.js): links in a message,
// the words of a join/leave line, when messages group, and @mentions. Nothing here touches the
// DOM or the network.

/** A piece of a message: plain text, or a link (`href` is the parsed, normalized http(s) URL). */
export interface TextPart {
  text: string
  href?: string
}

/**
 * Splits a message into text and http(s) links: the server's templates and the page's script
 * both draw links with it. Punctuation that ends a sentence is left out of a link; a closing bracket stays in when the
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
 * are parts of their own (`user`), so pages draw them as names; the viewer is "you".
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

/** For how long, in words: "10 minutes", "2 hours", "3 days" (rounded to the nearest). */
export function duration(ms: number): string {
  const minutes = Math.max(1, Math.round(ms / 60_000))
  const [n, unit] = minutes < 120 ? [minutes, 'minute'] : minutes < 48 * 60 ? [Math.round(minutes / 60), 'hour'] : [Math.round(minutes / 1440), 'day']
  return `${n} ${unit}${n === 1 ? '' : 's'}`
}

/**
 * A moderation event as a line of the thread: "ann muted cat for 10 minutes: spam", "ann
 * deleted a message by cat", "ann made bob a moderator"; names are parts of their own (`user`).
 */
export function moderationWords(event: { user: string; action?: string; target?: string; reason?: string; until?: number; seconds?: number; topic?: string; timestamp: number }, me?: string): (TextPart & { user?: true })[] {
  const name = (n: string) => ({ text: n === me ? 'you' : n, user: true as const })
  const whom = event.target === undefined ? { text: 'someone' } : name(event.target)
  const out: (TextPart & { user?: true })[] = [name(event.user)]
  switch (event.action) {
    case 'promote':
      out.push({ text: ' made ' }, whom, { text: ' a moderator' })
      break
    case 'demote':
      out.push({ text: ' made ' }, whom, { text: ' a member again' })
      break
    case 'delete':
      out.push({ text: ' deleted a message by ' }, whom)
      break
    case 'mute':
      out.push({ text: ' muted ' }, whom, { text: event.until === undefined ? ' for good' : ` for ${duration(event.until - event.timestamp)}` })
      break
    case 'unmute':
      out.push({ text: ' unmuted ' }, whom)
      break
    case 'kick':
      out.push({ text: ' removed ' }, whom, { text: ' from the room' })
      break
    case 'ban':
      out.push({ text: ' banned ' }, whom, { text: event.until === undefined ? ' for good' : ` for ${duration(event.until - event.timestamp)}` })
      break
    case 'unban':
      out.push({ text: ' lifted the ban on ' }, whom)
      break
    case 'suspend':
      out.push({ text: ' suspended the account of ' }, whom, { text: event.until === undefined ? ' for good' : ` for ${duration(event.until - event.timestamp)}` })
      break
    case 'unsuspend':
      out.push({ text: ' lifted the suspension of ' }, whom)
      break
    case 'slow':
      out.push({ text: event.seconds ? ` set slow mode: one message every ${event.seconds < 60 ? `${event.seconds} seconds` : duration(event.seconds * 1000)} per person` : ' turned slow mode off' })
      break
    case 'close':
      out.push({ text: ' closed the room to new members' })
      break
    case 'open':
      out.push({ text: ' opened the room to new members' })
      break
    case 'topic':
      out.push({ text: ` set the topic: ${event.topic || '(none)'}` })
      break
    default:
      out.push({ text: ' moderated' })
  }
  if (event.reason) out.push({ text: `: ${event.reason}` })
  return out
}

/** Consecutive messages of one sender closer than this are shown as one group. */
export const GROUP_WITHIN_MS = 5 * 60_000

/** Whether a message continues the group of the one shown just before it (same sender, same day, within GROUP_WITHIN_MS). */
export function continuesGroup(before: { type: string; user: string; timestamp: number } | undefined, event: { type: string; user: string; timestamp: number }, sameDay: boolean): boolean {
  return sameDay && event.type === 'message' && before?.type === 'message' && before.user === event.user && event.timestamp - before.timestamp < GROUP_WITHIN_MS
}


// @mentions: "@yourname" as a whole word, any case.

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** A letter, digit or underscore: what may not touch a mention on either side for it to be a whole word. */
const WORD = '[\\p{L}\\p{N}\\p{M}_]'

/** The pattern of "@name" as a whole word, any case; names may hold spaces and punctuation. */
export function mentionPattern(name: string): RegExp {
  return new RegExp(`(?<!${WORD})@${escapeRegExp(name)}(?!${WORD})`, 'giu')
}

/** Whether `text` mentions `name`. */
export function mentions(text: string | undefined, name: string | undefined): boolean {
  if (!text || !name) return false
  const pattern = mentionPattern(name)
  return pattern.test(text)
}

/** `text` cut at each mention of `name`: [{text, mention: boolean}]. */
export function mentionParts(text: string, name: string | undefined): { text: string; mention: boolean }[] {
  if (!name || !text.includes('@')) return [{ text, mention: false }]
  const parts: { text: string; mention: boolean }[] = []
  let at = 0
  for (const match of text.matchAll(mentionPattern(name))) {
    if (match.index > at) parts.push({ text: text.slice(at, match.index), mention: false })
    parts.push({ text: match[0], mention: true })
    at = match.index + match[0].length
  }
  if (at < text.length) parts.push({ text: text.slice(at), mention: false })
  return parts
}


// What a message is, as the server keeps and counts it, and who is typing, in words.

/** A message as the server keeps it: line ends folded to `\n`, trimmed. */
export function foldMessage(text: string): string {
  return (text.includes('\r') ? text.replace(/\r\n?/g, '\n') : text).trim()
}

/** Characters as the server counts a message (code points of the folded text): what MAX_MESSAGE_LENGTH bounds. */
export function messageLength(text: string): number {
  return Array.from(foldMessage(text)).length
}

/** "NAME is typing…", "A, B are typing…", "Several people are typing…" ('' for nobody): the refresh page's words and the live pages'. */
export function typingText(names: readonly string[]): string {
  if (names.length === 0) return ''
  if (names.length === 1) return `${names[0]} is typing…`
  return names.length <= 3 ? `${names.join(', ')} are typing…` : 'Several people are typing…'
}

/** A kick or a ban, in words for the person it put out of a room (the server's close reasons and errors say the same). */
export function removalMessage(removal: { action: 'kick' | 'ban'; by: string; reason: string; until?: number | undefined }): string {
  const why = removal.reason ? `: ${removal.reason}` : '.'
  if (removal.action === 'kick') return `${removal.by} removed you from this room${why} You may join it again.`
  const until = removal.until === undefined ? '' : ` until ${new Date(removal.until).toISOString().slice(0, 16).replace('T', ' ')} UTC`
  return `${removal.by} banned you from this room${until}${why}`
}

/** A file's size in words: "820 B", "14 KB", "3.2 MB" (the server's pages and the page's script). */
export function sizeWords(size: number): string {
  if (size < 1024) return `${size} B`
  if (size < 1024 * 1024) return `${Math.round(size / 1024)} KB`
  return `${(size / (1024 * 1024)).toFixed(1)} MB`
}

/** The longest side an image is drawn at in the thread (its thumbnail's, at most). */
export const THUMBNAIL_BOX = 360

/** The size an image of width × height is drawn at: within THUMBNAIL_BOX, its shape kept, never enlarged. */
export function thumbnailBox(width: number, height: number): { width: number; height: number } {
  const scale = Math.min(1, THUMBNAIL_BOX / Math.max(width, height))
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) }
}

/** Who reacted, in words, the viewer as "you": "ann, you and 3 others" (the server's pages and the page's script). */
export function reactedBy(users: readonly string[], me: string): string {
  const names = users.map((u) => (u === me ? 'you' : u))
  if (names.length <= 3) return names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`
  return `${names.slice(0, 2).join(', ')} and ${names.length - 2} others`
}

/**
 * A message's reactions after one person adds or takes back an emoji (the store, the room's
 * window and the page's script all apply it so): each emoji once, in the order first used, its
 * users in order; undefined when it changes nothing (added twice, or taken back when there was none).
 */
export function reactionsAfter(reactions: readonly { emoji: string; users: readonly string[] }[], user: string, emoji: string, action: 'add' | 'remove' | string | undefined): { emoji: string; users: string[] }[] | undefined {
  const now = reactions.map((r) => ({ emoji: r.emoji, users: [...r.users] }))
  const found = now.find((r) => r.emoji === emoji)
  if (action === 'remove') {
    if (!found || !found.users.includes(user)) return undefined
    found.users = found.users.filter((u) => u !== user)
  } else {
    if (found?.users.includes(user)) return undefined
    if (found) found.users.push(user)
    else now.push({ emoji, users: [user] })
  }
  return now.filter((r) => r.users.length > 0)
}

/** Whether a message's file is drawn as an image: one of the types shown inline, its size known. */
export function drawnAsImage(file: { type: string; width?: number | undefined; height?: number | undefined }): boolean {
  return Boolean(file.width && file.height) && /^image\/(png|jpeg|gif|webp)$/.test(file.type)
}
