import type { Event } from '../chatroom/event.js'
import { formatHtml, formatMessage, formattedText, plainLine } from '../../client/format.js'
import { continuesGroup, drawnAsImage, joinLeaveWords, moderationWords, reactedBy, sizeWords, thumbnailBox } from '../../client/render.js'

export { GROUP_WITHIN_MS, joinLeaveWords, linkSegments, type TextPart } from '../../client/render.js'

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
  /** A message's text (or an edit's new text) formatted (client/format.ts) as escaped HTML: its Markdown, links and the viewer's mentions. */
  html: string
  /** The text as typed, when the formatted text reads otherwise (the page's editor starts from it). */
  source: string | undefined
  /** A notice's people, in order, each once: who joined and who left. */
  joined: string[]
  left: string[]
  /** A notice's words (joinLeaveWords). */
  words: { text: string; user?: true }[]
  /** A notice's every name, when its words leave some out ("Joined: …. Left: …."). */
  everyone: string | undefined
  /** A message edited since: when, in words (UTC). */
  edited: string | undefined
  /** A reply shown in the room: the message it answers (its first line, or gone once deleted; unknown when pruned). */
  quote?: Quote | undefined
  /** A thread's first message: its replies, in words ("3 replies"), and the last one's time. */
  replies?: { count: number; words: string; iso: string; time: string } | undefined
  /** A message's reactions as they stand: each emoji with its count, who reacted (in words), and whether the viewer did. */
  reactions?: { emoji: string; count: number; who: string; mine: boolean }[] | undefined
  /** A message's file: an image with the size its thumbnail is drawn at, or a download with its size in words. */
  file?: FileView | undefined
  /** With a `change` row for a reaction or a reply kept in its thread: the message it changed, as it stands now (the page's script puts it in place). */
  target?: Row | undefined
}

/** How a message's file is drawn (the templates build its URLs from the room's). */
export interface FileView {
  id: string
  name: string
  size: string
  /** An image shown inline: its thumbnail's size, known before it loads (the thread does not jump). */
  image?: { width: number; height: number } | undefined
}

/** A file as drawn: an inline image (PNG, JPEG, GIF, WebP with its size known) fits THUMBNAIL_BOX; anything else is a download. */
export function fileView(file: NonNullable<Event['file']>): FileView {
  const view: FileView = { id: file.id, name: file.name, size: sizeWords(file.size) }
  if (drawnAsImage(file)) view.image = thumbnailBox(file.width!, file.height!)
  return view
}

/** What a reply shows of the message it answers. */
export interface Quote {
  id: number
  user: string
  line: string
  gone: boolean
}

/** What threadRows looks up beyond the events it draws: the messages replies answer, and messages as they stand now (for `change` rows). */
export interface RowContext {
  messages?: ReadonlyMap<number, Event>
  /** The room's own thread: a reply kept in its thread is no row of it (its first message counts it). */
  room?: boolean
}

/** Whether a message is a reply kept in its thread (not also sent to the room). */
export const threadOnly = (e: Event): boolean => e.type === 'message' && e.thread !== undefined && !e.alsoToRoom

/** The ids of messages the events' replies answer that are not among them (for RowContext.messages). */
export function quotedIds(events: readonly Event[]): number[] {
  const here = new Set(events.map((e) => e.id))
  return [...new Set(events.flatMap((e) => (e.type === 'message' && e.replyTo !== undefined && !here.has(e.replyTo) ? [e.replyTo] : [])))]
}

/** The messages `change` rows need as they stand (what reactions and thread-only replies changed). */
export function changedIds(events: readonly Event[]): number[] {
  return [...new Set(events.flatMap((e) => (e.type === 'reaction' && e.ref !== undefined ? [e.ref] : threadOnly(e) ? [e.thread!] : [])))]
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
 * The thread as rows: grouping follows the rule the page's script follows too (continuesGroup:
 * messages of one sender, within GROUP_WITHIN_MS, on one day; UTC days here, local ones there). Consecutive joins and
 * leaves of one day are one notice. Edits and deletions are already applied to the messages
 * they refer to (the server's window and history show messages as they stand): they become
 * `change` rows, for a page that shows the message from before. `previous` is the event shown
 * just before these, when the page already has some.
 */
export function threadRows(events: readonly Event[], me: string, previous?: Event, context: RowContext = {}): Row[] {
  const rows: Row[] = []
  let before = previous
  const byId = new Map(events.map((e) => [e.id, e]))
  const lookup = (id: number) => byId.get(id) ?? context.messages?.get(id)
  for (const event of events) {
    const iso = new Date(event.timestamp).toISOString()
    const base = { event, who: event.user === me ? 'you' : event.user, mine: event.user === me, iso, time: iso.slice(11, 16), joined: [], left: [], words: [], everyone: undefined }
    if (event.type === 'edit' || event.type === 'delete') {
      rows.push({ ...base, kind: 'change', cont: false, day: undefined, ...formatted(event.type === 'edit' ? event.text : undefined, me), edited: event.type === 'edit' ? when(event.timestamp) : undefined })
      continue
    }
    if (event.type === 'reaction' || (context.room && threadOnly(event))) {
      // No line of its own: the message it changed, as it stands now, for a page that shows it.
      const ref = event.type === 'reaction' ? event.ref! : event.thread!
      const now = context.messages?.get(ref)
      const drawn = now ? threadRows([now], me, undefined, { messages: context.messages })[0] : undefined
      const target = drawn && { ...drawn, day: undefined }
      rows.push({ ...base, kind: 'change', cont: false, day: undefined, html: '', source: undefined, edited: undefined, target })
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
    const cont = continuesGroup(before, event, !newDay)
    before = event
    const row: Row = {
      ...base,
      kind: event.type === 'message' ? 'message' : 'notice',
      cont,
      day: newDay ? dayLabel.format(event.timestamp) : undefined,
      ...formatted(event.type === 'message' && !event.deleted ? event.text : undefined, me),
      edited: event.type === 'message' && event.edited !== undefined && !event.deleted ? when(event.edited) : undefined,
    }
    if (event.type === 'moderation') row.words = moderationWords(event, me)
    else if (row.kind === 'notice') fold(row, event, me, iso)
    if (event.type === 'message') decorate(row, event, me, lookup)
    rows.push(row)
  }
  return rows
}

/** A message row's reply quote, its thread's count and its reactions. */
function decorate(row: Row, event: Event, me: string, lookup: (id: number) => Event | undefined): void {
  if (event.replyTo !== undefined) {
    const quoted = lookup(event.replyTo)
    row.quote = quoted
      ? { id: quoted.id, user: quoted.user === me ? 'you' : quoted.user, line: quoted.deleted ? '' : plainLine(quoted.text ?? ''), gone: quoted.deleted === true }
      : { id: event.replyTo, user: event.replyToUser === me ? 'you' : (event.replyToUser ?? ''), line: '', gone: false }
    if (quoted && !quoted.deleted && !row.quote.line && quoted.file) row.quote.line = `📎 ${quoted.file.name}`
  }
  if (event.replies !== undefined && event.replies > 0 && event.lastReply !== undefined) {
    const iso = new Date(event.lastReply).toISOString()
    row.replies = { count: event.replies, words: `${event.replies} ${event.replies === 1 ? 'reply' : 'replies'}`, iso, time: iso.slice(11, 16) }
  }
  if (event.file && !event.deleted) row.file = fileView(event.file)
  if (event.reactions && !event.deleted) row.reactions = event.reactions.map((r) => ({ emoji: r.emoji, count: r.users.length, who: reactedBy(r.users, me), mine: r.users.includes(me) }))
}

/** A message's text as the templates draw it: formatted as HTML, and the source when its formatted text reads otherwise. */
function formatted(text: string | undefined, me: string): { html: string; source: string | undefined } {
  if (text === undefined) return { html: '', source: undefined }
  const nodes = formatMessage(text, me)
  return { html: formatHtml(nodes), source: formattedText(nodes) === text ? undefined : text }
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
