import { z } from 'zod'

export const eventTypes = ['join', 'leave', 'message'] as const

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
})

export type Event = z.infer<typeof eventSchema>

const types: ReadonlySet<unknown> = new Set(eventTypes)
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
    Number.isInteger(e.timestamp) && optionalString(e.avatar) && optionalString(e.via) && optionalString(e.text) && (e.guest === undefined || e.guest === true)
  return ok ? (e as Event) : undefined
}

/** What a caller hands the room; the broker assigns id and timestamp. */
export type EventDraft = Omit<Event, 'id' | 'timestamp'>

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

/** Builds the event with a fixed key order, so every node serializes it the same way. */
export function createEvent(id: number, timestamp: number, draft: EventDraft): StoredEvent {
  const event: Event = { id, type: draft.type, user: draft.user, timestamp }
  if (draft.avatar !== undefined) event.avatar = draft.avatar
  if (draft.via !== undefined) event.via = draft.via
  if (draft.guest) event.guest = true
  if (draft.text !== undefined) event.text = draft.text
  return { event, json: JSON.stringify(event) }
}

/** A JSON array of events, joined from their stored JSON without re-serializing. */
export function jsonArray(events: readonly StoredEvent[]): string {
  if (events.length === 1) return `[${events[0]!.json}]`
  let out = '['
  for (let i = 0; i < events.length; i++) out += (i === 0 ? '' : ',') + events[i]!.json
  return out + ']'
}

/**
 * Ephemeral signals (someone is typing): not archived, no id consumed, never a cursor.
 * They travel beside events as {"type": "typing", "user": …}.
 */
export interface Signal {
  readonly type: 'typing'
  readonly user: string
  readonly json: string
}

export function createTypingSignal(user: string): Signal {
  return { type: 'typing', user, json: JSON.stringify({ type: 'typing', user }) }
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
