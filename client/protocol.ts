// What the server sends and takes, as the client sees it: events, signals, frames, close codes,
// and the URLs of a room. Nothing here touches the network.

/**
 * WebSocket close codes, in one place for the server (app/protocol.ts re-exports them) and every
 * client (4000-4999 are ours).
 */
export const CloseCode = Object.freeze({
  normal: 1000,
  goingAway: 1001,
  invalidData: 1007,
  policy: 1008,
  tooBig: 1009,
  /** Fell too far behind: reconnect and resume from your cursor. */
  lagged: 4000,
  /** You left the room (this page, or a leave or sign-out elsewhere): do not reconnect. */
  left: 4001,
  /** A moderator removed you (kicked or banned; the reason says who and why): do not reconnect. */
  removed: 4003,
  badRequest: 4400,
  unauthorized: 4401,
  /** The room cannot serve you right now: reconnect shortly. */
  tryAgainLater: 1013,
  /** Someone else present now holds your name. */
  nameTaken: 4403,
  /** The cursor cannot be resumed (another epoch, ahead of the log, too far behind): start over. */
  startOver: 4409,
} as const)

/** The ways into a room, strongest first. */
export type Transport = 'websocket' | 'sse' | 'longpolling'
export const TRANSPORTS: readonly Transport[] = ['websocket', 'sse', 'longpolling']

interface EventBase {
  /** Consecutive per room from 1: the cursor. */
  id: number
  user: string
  /** Milliseconds since the epoch, by the server's clock; for display only. */
  timestamp: number
  avatar?: string
  /** Signed in through this OAuth provider. */
  via?: string
  /** A guest's event (the name is theirs only while they stay). */
  guest?: true
}

export interface MessageEvent extends EventBase {
  type: 'message'
  /** Absent once deleted. */
  text?: string
  /** The sender's id for it: a resend with the same one answers this event. */
  clientId?: string
  /** In history: when it was last edited (its text is the new one). */
  edited?: number
  /** In history: deleted since (its text is gone). */
  deleted?: true
  /** A reply: the message it answers, and its thread's first message. */
  replyTo?: number
  thread?: number
  /** A reply: who wrote the message it answers. */
  replyToUser?: string
  /** A reply: its thread's count of replies with it. */
  threadReplies?: number
  /** A reply in a thread also shown in the room (else only in the thread). */
  alsoToRoom?: true
  /** A thread's first message: how many replies stand, and when the last came (ms). */
  replies?: number
  lastReply?: number
  /** A file sent with it (`text` its caption, if any): its id, name, size in bytes, sniffed type, an image's size in pixels. */
  file?: { id: string; name: string; size: number; type: string; width?: number; height?: number }
  /** Reactions as they stand: each emoji once, with who reacted, in order. */
  reactions?: { emoji: string; users: string[] }[]
}
/** Someone (`user`) added or took back their `emoji` on message `ref`. */
export interface ReactionEvent extends EventBase {
  type: 'reaction'
  ref: number
  emoji: string
  action: 'add' | 'remove'
}
export interface JoinEvent extends EventBase {
  type: 'join'
}
export interface LeaveEvent extends EventBase {
  type: 'leave'
}
/** One's own message `ref` now reads `text`. */
export interface EditEvent extends EventBase {
  type: 'edit'
  ref: number
  text: string
}
/** One's own message `ref` is deleted (a reply: its thread, and the thread's count now). */
export interface DeleteEvent extends EventBase {
  type: 'delete'
  ref: number
  thread?: number
  threadReplies?: number
}
/** A moderator acted (`user`): on a person (`target`) or a message (`ref`), with why, and until when (ms; none: for good). */
export interface ModerationEvent extends EventBase {
  type: 'moderation'
  action: 'promote' | 'demote' | 'delete' | 'mute' | 'unmute' | 'kick' | 'ban' | 'unban' | 'slow' | 'close' | 'open' | 'topic' | 'suspend' | 'unsuspend'
  target?: string
  ref?: number
  reason?: string
  until?: number
  /** Slow mode's seconds (0: off). */
  seconds?: number
  /** A new topic and title. */
  topic?: string
  title?: string
}
/** An event of a room's log. */
export type ChatEvent = MessageEvent | JoinEvent | LeaveEvent | EditEvent | DeleteEvent | ModerationEvent | ReactionEvent
/** Someone is typing: ephemeral, no id, never stored. */
export interface TypingSignal {
  type: 'typing'
  user: string
}
/**
 * Someone's presence: in a room other than the lobby, whether they have it open (`online` or
 * `offline`); on the person's stream, the person's own (`online`, `away`, `offline`). No id.
 */
export interface PresenceSignal {
  type: 'presence'
  user: string
  presence: 'online' | 'away' | 'offline'
  avatar?: string
}
/** What a connection delivers: events and signals, in order. */
export type Item = ChatEvent | TypingSignal | PresenceSignal

export const isEvent = (item: Item): item is ChatEvent => item.type !== 'typing' && item.type !== 'presence'

const eventTypes: ReadonlySet<unknown> = new Set(['message', 'join', 'leave', 'edit', 'delete', 'moderation', 'reaction'])

/** The events and signals of a frame or a body; anything else in it is skipped. */
export function readItems(value: unknown): Item[] {
  if (!Array.isArray(value)) return []
  return value.filter((v): v is Item => {
    if (typeof v !== 'object' || v === null) return false
    const item = v as Record<string, unknown>
    if (item.type === 'typing') return typeof item.user === 'string'
    if (item.type === 'presence') return typeof item.user === 'string' && (item.presence === 'online' || item.presence === 'away' || item.presence === 'offline')
    return eventTypes.has(item.type) && Number.isSafeInteger(item.id) && (item.id as number) > 0 && typeof item.user === 'string'
  })
}

/** A JSON error body (or frame) of the server. */
export interface ErrorBody {
  error: string
  message: string
  /** Seconds to wait, with Too Many Requests. */
  retryAfter?: number
  /** With Conflict: where the room stands now. */
  epoch?: string
  lastId?: number
  /** With Conflict: why the cursor cannot be resumed ('epoch', 'ahead', 'behind', 'name', …). */
  reason?: string
  /** A socket's answer: the `ref` of the frame it answers. */
  ref?: string
  /** An event stream's refusal: the HTTP status it stands for. */
  status?: number
}

export function readError(value: unknown): ErrorBody | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const body = value as Record<string, unknown>
  return typeof body.error === 'string' ? (body as unknown as ErrorBody) : undefined
}

/** Parses JSON, or undefined. */
export function parse(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/**
 * A path of a room: `/KIND/room/REST` for the lobby (the Revel routes), `/KIND/rooms/NAME/REST`
 * for another; KIND '' for the room's own routes (history, users, edits).
 */
export function roomPath(kind: Transport | '', room: string, rest: string): string {
  const where = room === 'lobby' ? 'room' : `rooms/${encodeURIComponent(room)}`
  return `${kind ? `/${kind}` : ''}/${where}${rest}`
}

/** 16 random bytes as base64url (22 characters): a message's id from its sender. */
export function newClientId(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16))
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}
