import { z } from 'zod'
import { reactionsAfter } from '../../client/render.js'

export const eventTypes = ['join', 'leave', 'message', 'edit', 'delete', 'person', 'moderation', 'reaction'] as const

/** What a moderation event did (type "moderation"): each refers to a person (`target`) or a message (`ref`). */
export const moderationActions = ['promote', 'demote', 'delete', 'mute', 'unmute', 'kick', 'ban', 'unban', 'slow', 'close', 'open', 'topic', 'suspend', 'unsuspend'] as const
export type ModerationAction = (typeof moderationActions)[number]

/** What a reaction event does to its message's reactions: one person's emoji added, or taken back. */
export const reactionActions = ['add', 'remove'] as const
export type ReactionAction = (typeof reactionActions)[number]

/** A message's reactions as they stand: each emoji once, in the order first used, with who reacted (their names, in order). */
export interface Reaction {
  emoji: string
  users: string[]
}

/** What a person's own event says (their log, `me` on the person's stream): a room joined, left, invited to, a direct room opened to them, read up to an id. */
export const personKinds = ['joined', 'left', 'invited', 'direct', 'read', 'renamed', 'handled', 'removed'] as const

export const eventSchema = z.object({
  /** Consecutive per room from 1: the one cursor every transport resumes from. */
  id: z.number().int().positive(),
  type: z.enum(eventTypes),
  user: z.string(),
  /** The user's avatar URL (never their email). */
  avatar: z.string().optional(),
  /** Signed in through this OAuth provider (shown beside the name). */
  via: z.string().optional(),
  /** A guest's event: their name is theirs only while they stay (accounts' events have no mark). */
  guest: z.literal(true).optional(),
  /** Milliseconds since the epoch; for display only, never a cursor. */
  timestamp: z.number().int(),
  text: z.string().optional(),
  /** A message's id from its sender (8–64 characters): a resend with the same one answers this event. */
  clientId: z.string().optional(),
  /** An edit's, a deletion's or a reaction's message id. */
  ref: z.number().int().positive().optional(),
  /** A reply: the message it answers, and its thread's first message (the one its replies hang from). */
  replyTo: z.number().int().positive().optional(),
  thread: z.number().int().positive().optional(),
  /** A reply: who wrote the message it answers (so they are told, as by a mention). */
  replyToUser: z.string().optional(),
  /** A reply (or a reply's deletion, with `thread`): how many replies its thread has now (a reader's count of the thread follows, whatever it read before). */
  threadReplies: z.number().int().nonnegative().optional(),
  /** A reply in a thread that is also shown in the room's own thread (else only in the thread). */
  alsoToRoom: z.literal(true).optional(),
  /** A message replied to in its thread: how many replies stand (deleted ones not counted), and when the last came (ms since the epoch). */
  replies: z.number().int().nonnegative().optional(),
  lastReply: z.number().int().optional(),
  /** A message's reactions as they stand. */
  reactions: z.array(z.object({ emoji: z.string(), users: z.array(z.string()) })).optional(),
  /** A message with a file (`text` is its caption, if any): the file's id in the store, its name, size in bytes, sniffed type, and an image's size in pixels. */
  file: z.object({ id: z.string(), name: z.string(), size: z.number().int().nonnegative(), type: z.string(), width: z.number().int().positive().optional(), height: z.number().int().positive().optional() }).optional(),
  /** A reaction event's emoji (its `action`: add or remove). */
  emoji: z.string().optional(),
  /** A message edited since: when it was last edited (its text is the new one). */
  edited: z.number().int().optional(),
  /** A message deleted since: its text is gone from the store. */
  deleted: z.literal(true).optional(),
  /** A person's event (type "person"): what happened, in which room, and the room's id it happened at (a read marker's id). */
  kind: z.enum(personKinds).optional(),
  room: z.string().optional(),
  at: z.number().int().nonnegative().optional(),
  /** A moderation event (type "moderation", `user` did it): what, to whom (their name), why, until when (ms since the epoch; none: for good). */
  action: z.enum([...moderationActions, ...reactionActions]).optional(),
  target: z.string().optional(),
  reason: z.string().optional(),
  until: z.number().int().optional(),
  /** Slow mode (action "slow"): one message per this many seconds per person; 0: off. */
  seconds: z.number().int().nonnegative().optional(),
  /** A room's new topic and title (action "topic"). */
  topic: z.string().optional(),
  title: z.string().optional(),
})

export type Event = z.infer<typeof eventSchema>

const types: ReadonlySet<unknown> = new Set(eventTypes)
const kinds: ReadonlySet<unknown> = new Set(personKinds)
const actions: ReadonlySet<unknown> = new Set([...moderationActions, ...reactionActions])
const positive = (v: unknown) => v === undefined || (Number.isInteger(v) && (v as number) > 0)
const fileOk = (v: unknown) => {
  if (v === undefined) return true
  if (typeof v !== 'object' || v === null) return false
  const f = v as Record<string, unknown>
  return typeof f.id === 'string' && typeof f.name === 'string' && typeof f.type === 'string' && Number.isInteger(f.size) && (f.size as number) >= 0 && positive(f.width) && positive(f.height)
}
const optionalId = (v: unknown) => v === undefined || (Number.isInteger(v) && (v as number) > 0)
const reactionsOk = (v: unknown) =>
  v === undefined || (Array.isArray(v) && v.every((r) => typeof r === 'object' && r !== null && typeof r.emoji === 'string' && Array.isArray(r.users) && r.users.every((u: unknown) => typeof u === 'string')))
const optionalString = (v: unknown) => v === undefined || typeof v === 'string'

/**
 * The same check as eventSchema, by hand, for events that arrive by the thousand (from the bus):
 * the event, or undefined when it is not one.
 */
export function readEvent(value: unknown): Event | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const e = value as Record<string, unknown>
  const ok =
    Number.isInteger(e.id) && (e.id as number) > 0 && types.has(e.type) && typeof e.user === 'string' &&
    Number.isInteger(e.timestamp) && optionalString(e.avatar) && optionalString(e.via) && optionalString(e.text) && (e.guest === undefined || e.guest === true) &&
    optionalString(e.clientId) && (e.ref === undefined || (Number.isInteger(e.ref) && (e.ref as number) > 0)) &&
    (e.edited === undefined || Number.isInteger(e.edited)) && (e.deleted === undefined || e.deleted === true) &&
    (e.kind === undefined || kinds.has(e.kind)) && optionalString(e.room) && (e.at === undefined || (Number.isInteger(e.at) && (e.at as number) >= 0)) &&
    (e.action === undefined || actions.has(e.action)) && optionalString(e.target) && optionalString(e.reason) && (e.until === undefined || Number.isInteger(e.until)) &&
    (e.seconds === undefined || (Number.isInteger(e.seconds) && (e.seconds as number) >= 0)) && optionalString(e.topic) && optionalString(e.title) &&
    optionalId(e.replyTo) && optionalId(e.thread) && optionalString(e.replyToUser) && (e.threadReplies === undefined || (Number.isInteger(e.threadReplies) && (e.threadReplies as number) >= 0)) && (e.alsoToRoom === undefined || e.alsoToRoom === true) &&
    (e.replies === undefined || (Number.isInteger(e.replies) && (e.replies as number) >= 0)) && (e.lastReply === undefined || Number.isInteger(e.lastReply)) &&
    reactionsOk(e.reactions) && optionalString(e.emoji) && fileOk(e.file)
  return ok ? (e as Event) : undefined
}

/**
 * What a caller hands the room; the store assigns id and timestamp. `sender` (the person's id,
 * never shown) is whose message it is: a clientId is unique per sender, and only the sender
 * edits or deletes it.
 */
export type EventDraft = Omit<Event, 'id' | 'timestamp' | 'edited' | 'deleted' | 'replies' | 'lastReply' | 'reactions' | 'threadReplies'> & { sender?: string | undefined }

/**
 * An event together with its JSON, made once when the event is created, so that
 * transports write the same string to every client instead of serializing per client.
 */
export interface StoredEvent {
  readonly event: Event
  readonly json: string
  /** Cache for frameOf(): the event alone as a JSON array, UTF-8 encoded once. */
  frame?: Buffer
  /** Cache for sseFrameOf(): the event as one Server-Sent Events message, UTF-8 encoded once. */
  sse?: Buffer
  /** Cache for wsFrameFor(): frame bytes as they go on the wire (WebSocket header + `[event]`). */
  ws?: Buffer
  /** Cache for a connection of several rooms: `{"room", "events": [event]}` as WebSocket wire bytes (an event is of one room). */
  roomWs?: Buffer
  /** Set on what append() answers for a resend: the event its clientId was first sent as (nothing new was written). */
  readonly duplicate?: true
}

/**
 * `[event]` as bytes, made on first use and shared by every reader: with one event
 * waiting (the common case) every socket and poll writes the very same Buffer.
 */
export function frameOf(stored: StoredEvent): Buffer {
  return (stored.frame ??= Buffer.from(`[${stored.json}]`))
}

/** The event as a Server-Sent Events message, its id as the stream's: `id: N\ndata: {…}\n\n`. */
export function sseText(stored: StoredEvent): string {
  return `id: ${stored.event.id}\ndata: ${stored.json}\n\n`
}

/** sseText as bytes, made on first use and shared by every event stream (like frameOf for sockets). */
export function sseFrameOf(stored: StoredEvent): Buffer {
  return (stored.sse ??= Buffer.from(sseText(stored)))
}

/** What goes to one event stream for what it has waiting: the shared bytes for a single event, else one string. */
export function sseFrameFor(events: readonly StoredEvent[], signals: readonly Signal[]): string | Buffer {
  if (events.length === 1 && signals.length === 0) return sseFrameOf(events[0]!)
  let out = ''
  for (const stored of events) out += sseText(stored)
  // Signals carry no id, so the stream's last event id stays the last event's.
  for (const signal of signals) out += `event: ${signal.type}\ndata: ${signal.json}\n\n`
  return out
}

/** A message's file, its keys in a fixed order. */
export type FileRef = NonNullable<Event['file']>
function fileOf(f: FileRef): FileRef {
  const out: FileRef = { id: f.id, name: f.name, size: f.size, type: f.type }
  if (f.width !== undefined) out.width = f.width
  if (f.height !== undefined) out.height = f.height
  return out
}

/** Builds the event with a fixed key order, so every node serializes it the same way. */
export function createEvent(id: number, timestamp: number, draft: EventDraft): StoredEvent {
  const event: Event = { id, type: draft.type, user: draft.user, timestamp }
  if (draft.avatar !== undefined) event.avatar = draft.avatar
  if (draft.via !== undefined) event.via = draft.via
  if (draft.guest) event.guest = true
  if (draft.text !== undefined) event.text = draft.text
  if (draft.clientId !== undefined) event.clientId = draft.clientId
  if (draft.ref !== undefined) event.ref = draft.ref
  if (draft.replyTo !== undefined) event.replyTo = draft.replyTo
  if (draft.thread !== undefined) event.thread = draft.thread
  if (draft.replyToUser !== undefined) event.replyToUser = draft.replyToUser
  if (draft.alsoToRoom) event.alsoToRoom = true
  if (draft.emoji !== undefined) event.emoji = draft.emoji
  if (draft.file !== undefined) event.file = fileOf(draft.file)
  if (draft.kind !== undefined) event.kind = draft.kind
  if (draft.room !== undefined) event.room = draft.room
  if (draft.at !== undefined) event.at = draft.at
  if (draft.action !== undefined) event.action = draft.action
  if (draft.target !== undefined) event.target = draft.target
  if (draft.reason !== undefined) event.reason = draft.reason
  if (draft.until !== undefined) event.until = draft.until
  if (draft.seconds !== undefined) event.seconds = draft.seconds
  if (draft.topic !== undefined) event.topic = draft.topic
  if (draft.title !== undefined) event.title = draft.title
  return { event, json: JSON.stringify(event) }
}

/** The event made anew from its fields (the same key order as createEvent): after an edit or a deletion. */
export function restored(event: Event): StoredEvent {
  const { id, type, user, avatar, via, guest, timestamp, text, clientId, ref, replyTo, thread, replyToUser, threadReplies, alsoToRoom, emoji, file, edited, deleted, replies, lastReply, reactions, kind, room, at, action, target, reason, until, seconds, topic, title } = event
  const out: Event = { id, type, user, timestamp }
  if (avatar !== undefined) out.avatar = avatar
  if (via !== undefined) out.via = via
  if (guest) out.guest = true
  if (text !== undefined && !deleted) out.text = text
  if (clientId !== undefined) out.clientId = clientId
  if (ref !== undefined) out.ref = ref
  if (replyTo !== undefined) out.replyTo = replyTo
  if (thread !== undefined) out.thread = thread
  if (replyToUser !== undefined) out.replyToUser = replyToUser
  if (threadReplies !== undefined) out.threadReplies = threadReplies
  if (alsoToRoom) out.alsoToRoom = true
  if (emoji !== undefined) out.emoji = emoji
  // A deleted message's file is gone from the store too.
  if (file !== undefined && !deleted) out.file = fileOf(file)
  if (edited !== undefined && !deleted) out.edited = edited
  if (deleted) out.deleted = true
  if (replies !== undefined) out.replies = replies
  if (lastReply !== undefined) out.lastReply = lastReply
  if (reactions !== undefined && reactions.length > 0 && !deleted) out.reactions = reactions
  if (kind !== undefined) out.kind = kind
  if (room !== undefined) out.room = room
  if (at !== undefined) out.at = at
  if (action !== undefined) out.action = action
  if (target !== undefined) out.target = target
  if (reason !== undefined) out.reason = reason
  if (until !== undefined) out.until = until
  if (seconds !== undefined) out.seconds = seconds
  if (topic !== undefined) out.topic = topic
  if (title !== undefined) out.title = title
  return { event: out, json: JSON.stringify(out) }
}

/**
 * A message as it stands after an edit or a deletion event (`change`) that refers to it: the new
 * text with the edit's time, or no text at all. A deleted message stays deleted.
 */
export function applyChange(message: Event, change: Event): StoredEvent {
  if (message.deleted || change.type === 'delete') return restored({ ...message, deleted: true })
  return restored({ ...message, text: change.text ?? message.text, edited: change.timestamp })
}

/**
 * A thread's first message as a reply (`reply`, one more) or a reply's deletion (one fewer) leaves
 * it: its count of replies standing, and when the last one came.
 */
export function withReply(root: Event, reply: Event, change: 1 | -1): StoredEvent {
  return withReplyCount(root, Math.max(0, (root.replies ?? 0) + change), change === 1 ? reply.timestamp : undefined)
}

/** A thread's first message with its count of replies as it now stands (and a newer last reply's time). */
export function withReplyCount(root: Event, replies: number, lastReply?: number): StoredEvent {
  const last = lastReply === undefined ? root.lastReply : Math.max(lastReply, root.lastReply ?? 0)
  return restored({ ...root, replies, ...(last !== undefined && { lastReply: last }) })
}

/**
 * A message as a reaction leaves it: the person's emoji added (once: adding twice is one) or taken
 * back; undefined when it changes nothing (then no event is written).
 */
export function withReaction(message: Event, reaction: Event): StoredEvent | undefined {
  const reactions = reactionsAfter(message.reactions ?? [], reaction.user, reaction.emoji!, reaction.action)
  return reactions && restored({ ...message, reactions })
}

/** An edit as a later edit leaves it: carrying the message's newest text (what the message says now), so no text edited away stays in the log. */
export function withText(stored: StoredEvent, text: string): StoredEvent {
  if (stored.event.text === text) return stored
  return restored({ ...stored.event, text })
}

export function withoutText(stored: StoredEvent): StoredEvent {
  if (stored.event.text === undefined) return stored
  const { text: _text, ...rest } = stored.event
  return restored(rest)
}

/** A JSON array of events, joined from their stored JSON without re-serializing. */
export function jsonArray(events: readonly StoredEvent[]): string {
  if (events.length === 1) return `[${events[0]!.json}]`
  let out = '['
  for (let i = 0; i < events.length; i++) out += (i === 0 ? '' : ',') + events[i]!.json
  return out + ']'
}

/**
 * Ephemeral signals (someone is typing, someone's presence changed): not archived, no id
 * consumed, never a cursor. They travel beside events as {"type": "typing", "user": …} and
 * {"type": "presence", "user": …, "presence": "online" | "away" | "offline"}.
 */
export interface Signal {
  readonly type: 'typing' | 'presence'
  readonly user: string
  readonly presence?: PresenceState
  /** With a room's presence signal: the avatar to list them with. */
  readonly avatar?: string
  readonly json: string
  /** A typing signal: when this process heard it (a kept one older than TYPING_SHOWS_MS is not handed on). */
  readonly at?: number
}

/** How long "NAME is typing" shows after their last signal (the pages show it 4 s). */
export const TYPING_SHOWS_MS = 4000

/**
 * The signals still worth handing to a reader: a typing signal kept (a long poll's queue between
 * two polls) past TYPING_SHOWS_MS would show someone typing who stopped long ago. Presence is
 * each person's latest state, never stale. Returns the same array when nothing is dropped.
 */
export function currentSignals(signals: Signal[], now = Date.now()): Signal[] {
  for (const signal of signals) {
    if (signal.at !== undefined && now - signal.at > TYPING_SHOWS_MS) return signals.filter((s) => s.at === undefined || now - s.at <= TYPING_SHOWS_MS)
  }
  return signals
}

/** A person's presence across all their tabs, devices and processes. */
export type PresenceState = 'online' | 'away' | 'offline'

export function createTypingSignal(user: string): Signal {
  return { type: 'typing', user, json: JSON.stringify({ type: 'typing', user }), at: Date.now() }
}

export function createPresenceSignal(user: string, presence: PresenceState, avatar?: string): Signal {
  if (avatar === undefined) return { type: 'presence', user, presence, json: JSON.stringify({ type: 'presence', user, presence }) }
  return { type: 'presence', user, presence, avatar, json: JSON.stringify({ type: 'presence', user, presence, avatar }) }
}

/** A signal as the bus carries it (its JSON); undefined for anything else. An older process sent a typist's bare name. */
export function parseSignal(text: string): Signal | undefined {
  if (!text.startsWith('{')) return createTypingSignal(text)
  try {
    const value = JSON.parse(text) as { type?: unknown; user?: unknown; presence?: unknown; avatar?: unknown }
    if (typeof value.user !== 'string') return undefined
    if (value.type === 'typing') return createTypingSignal(value.user)
    if (value.type === 'presence' && (value.presence === 'online' || value.presence === 'away' || value.presence === 'offline')) return createPresenceSignal(value.user, value.presence, typeof value.avatar === 'string' ? value.avatar : undefined)
    // Anything else of type "presence" is between processes only (People reads its JSON).
    if (value.type === 'presence') return { type: 'presence', user: value.user, json: text }
  } catch {
    // Not a signal.
  }
  return undefined
}

/**
 * What goes to one reader for what it has waiting: the event's shared Buffer in the common
 * case of a single event, else one JSON array of events then signals.
 */
export function frameFor(events: readonly StoredEvent[], signals: readonly Signal[]): string | Buffer {
  return events.length === 1 && signals.length === 0 ? frameOf(events[0]!) : jsonBatch(events, signals)
}

/** Events then signals, as one JSON array, from their stored JSON. */
export function jsonBatch(events: readonly StoredEvent[], signals: readonly Signal[]): string {
  if (signals.length === 0) return jsonArray(events)
  let out = events.length > 0 ? jsonArray(events).slice(0, -1) + ',' : '['
  for (let i = 0; i < signals.length; i++) out += (i === 0 ? '' : ',') + signals[i]!.json
  return out + ']'
}

/**
 * A server-to-client WebSocket text frame (RFC 6455 5.2: FIN, opcode 1, unmasked) around the
 * payload, as bytes: made once per event (or per batch) and written as is to every socket.
 */
export function wsFrame(payload: Buffer): Buffer {
  const length = payload.length
  const headerLength = length < 126 ? 2 : length < 65536 ? 4 : 10
  const frame = Buffer.allocUnsafe(headerLength + length)
  frame[0] = 0x81
  if (length < 126) frame[1] = length
  else if (length < 65536) {
    frame[1] = 126
    frame.writeUInt16BE(length, 2)
  } else {
    frame[1] = 127
    frame.writeBigUInt64BE(BigInt(length), 2)
  }
  payload.copy(frame, headerLength)
  return frame
}

/**
 * What readers that are at the same place get in a tick is the same batch: the last batch made
 * is kept (by its first and last id), so the second and every later reader of a tick reuse its
 * bytes instead of building their own. Signals make a batch the reader's own (they are not cached).
 */
class BatchCache {
  private first: StoredEvent | undefined
  private last: StoredEvent | undefined
  private length = 0
  private bytes: Buffer | undefined

  get(events: readonly StoredEvent[], make: () => Buffer): Buffer {
    const first = events[0]!
    const last = events[events.length - 1]!
    // The same event objects (every reader of a room shares them), so a batch of another room
    // in this process (tests; a new log) never matches by its ids alone.
    if (this.bytes === undefined || first !== this.first || last !== this.last || events.length !== this.length) {
      this.bytes = make()
      this.first = first
      this.last = last
      this.length = events.length
    }
    return this.bytes
  }
}

const wsBatches = new BatchCache()
const sseBatches = new BatchCache()

/** The WebSocket frame bytes for what one reader has waiting (shared by every reader with the same batch). */
export function wsFrameFor(events: readonly StoredEvent[], signals: readonly Signal[]): Buffer {
  if (signals.length > 0) return wsFrame(Buffer.from(jsonBatch(events, signals)))
  if (events.length === 1) return (events[0]!.ws ??= wsFrame(frameOf(events[0]!)))
  if (events.length === 0) return wsFrame(Buffer.from('[]'))
  return wsBatches.get(events, () => wsFrame(Buffer.from(jsonArray(events))))
}

/** sseFrameFor, with batches shared the same way. */
export function sseBytesFor(events: readonly StoredEvent[], signals: readonly Signal[]): string | Buffer {
  if (signals.length > 0 || events.length < 2) return sseFrameFor(events, signals)
  return sseBatches.get(events, () => Buffer.from(sseFrameFor(events, signals) as string))
}
