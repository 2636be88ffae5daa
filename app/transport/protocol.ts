import type { RawData } from 'ws'
import { CloseCode, type ErrorBody as ClientErrorBody } from '../../client/protocol.js'
import type { Chatroom, Entered, Said } from '../chatroom/chatroom.js'
import type { Member } from '../chatroom/presence.js'
import type { Room } from '../chatroom/room.js'
import { removalMessage, type Removal } from '../chatroom/subscription.js'

/**
 * WebSocket close codes: the client library's table (client/protocol.ts), so the server, the
 * pages (which load the library) and a bot read the same numbers.
 */
export { CloseCode }

/** A non-event frame or body: what went wrong, for people and programs (the client's shape, its `reason` one of the server's). */
export interface ErrorBody extends ClientErrorBody {
  /** With Conflict: why the cursor cannot be resumed. */
  reason?: Refused['refused']
}

/** Why a cursor cannot be resumed, in words; each ends with what to do. */
export function startOverMessage(refused: Refused): string {
  switch (refused.refused) {
    case 'epoch':
      return `That cursor is from another log of this room; the room's log is now epoch ${refused.epoch} (newest event ${refused.lastId}): start over.`
    case 'ahead':
      return `lastReceived is ahead of the room, whose newest event is ${refused.lastId} (a log created anew): start over.`
    case 'behind':
      return `lastReceived is too far behind the room's newest event ${refused.lastId} to replay: start over from the newest events.`
    case 'unavailable':
      return 'The chat is unavailable right now; try again shortly.'
    case 'name':
      return 'Someone else in the room now goes by your name: sign in again with another one.'
    case 'tooMany':
      return 'You have too many connections open to this room already; close some tabs and try again.'
    case 'banned':
      return 'You are banned from this room.'
  }
}

/** The first frame on a socket: which log the ids that follow belong to. */
export function helloFrame(epoch: string, lastId: number): string {
  return JSON.stringify({ type: 'hello', epoch, lastId })
}

/** A say() that did not go through, as every protocol reports it. */
export type Refusal = Exclude<Said, { outcome: 'ok' }>
type Refused = Extract<Entered, { ok: false }>

const sayStatus = { invalid: 400, forbidden: 403, missing: 404, flooded: 429, unavailable: 503 } as const
/** HTTP reason phrases, for the `error` of every JSON error body and page (app/plugins/errors.ts too). */
export const reasons = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  408: 'Request Timeout', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type',
  429: 'Too Many Requests', 503: 'Service Unavailable',
} as const

/** HTTP (long polling's JSON, the refresh page's flash): status, body and headers of a refusal. */
export function httpRefusal(said: Refusal): { status: number; body: ErrorBody; headers: Record<string, string> } {
  const status = sayStatus[said.outcome]
  const body: ErrorBody = { error: reasons[status], message: said.message }
  if (said.outcome !== 'flooded') return { status, body, headers: {} }
  return { status, body, headers: { 'retry-after': String(said.retryAfter) } }
}

/**
 * WebSocket: the error frame for a refusal, with the `ref` the client gave its frame (so the
 * page knows which draft was refused); the socket stays open (invalid frames are counted apart).
 */
export function errorFrame(said: Refusal, ref?: string): string {
  const body: ErrorBody = { error: reasons[sayStatus[said.outcome]], message: said.message }
  if (said.outcome === 'flooded') body.retryAfter = said.retryAfter
  if (ref !== undefined) body.ref = ref
  return JSON.stringify(body)
}

/**
 * WebSocket: a message (an edit, a deletion) was committed; `ref` is the client's for its frame,
 * `id` the event's; `duplicate` when its clientId was sent before (`id` is that first event's).
 */
export function ackFrame(ref: string, id: number, duplicate?: true): string {
  return JSON.stringify(duplicate ? { type: 'ack', ref, id, duplicate } : { type: 'ack', ref, id })
}

/** HTTP: why enter() refused: 409 with where the room stands, so the client starts over there (503: try again). */
export function httpEnterRefusal(refused: Refused): { status: 403 | 409 | 429 | 503; body: ErrorBody } {
  const { refused: reason, epoch, lastId } = refused
  if (reason === 'banned') return { status: 403, body: { error: reasons[403], message: startOverMessage(refused), reason } }
  if (reason === 'unavailable') return { status: 503, body: { error: reasons[503], message: startOverMessage(refused) } }
  if (reason === 'name') return { status: 409, body: { error: reasons[409], message: startOverMessage(refused), reason } }
  if (reason === 'tooMany') return { status: 429, body: { error: reasons[429], message: startOverMessage(refused), reason } }
  return { status: 409, body: { error: reasons[409], message: startOverMessage(refused), reason, epoch, lastId } }
}

const closeReasons = {
  epoch: 'another epoch: start over',
  ahead: 'lastReceived is ahead of the room: start over',
  behind: 'lastReceived is too far behind: start over',
  unavailable: 'the chat is unavailable right now: reconnect shortly',
  name: 'someone else now goes by your name: sign in again',
  tooMany: 'too many connections for one user',
  banned: 'you are banned from this room',
} as const

/** A kick or ban as the transports say it: a close reason of at most 123 bytes (cut on a character), and the JSON a stream, a frame or a poll's 403 carries. */
export function removalClose(removal: Removal): [number, string] {
  let text = removalMessage(removal)
  while (Buffer.byteLength(text) > 123) text = `${text.slice(0, -2)}…`
  return [CloseCode.removed, text]
}

export function removalBody(removal: Removal, room?: string): ErrorBody & { action: Removal['action']; by: string; until?: number; room?: string } {
  return {
    error: reasons[403],
    message: removalMessage(removal),
    action: removal.action,
    by: removal.by,
    ...(removal.until !== undefined && { until: removal.until }),
    ...(room !== undefined && { room }),
  }
}

/** WebSocket: why enter() refused, as a close code and a reason (a close reason is at most 123 bytes). */
export function closeForEnterRefusal(refused: Refused): [number, string] {
  const codes: Partial<Record<Refused['refused'], number>> = { unavailable: CloseCode.tryAgainLater, name: CloseCode.nameTaken, tooMany: CloseCode.policy, banned: CloseCode.removed }
  const code = codes[refused.refused] ?? CloseCode.startOver
  return [code, closeReasons[refused.refused]]
}

/**
 * Client frames: {"text": …, "clientId"?: …, "replyTo"?: ID, "alsoToRoom"?: true} says something
 * (with an optional "ref", up to 40 characters, that the answer repeats: {"type": "ack", "ref",
 * "id"} or an error frame), {"type": "edit", "id", "text"} and {"type": "delete", "id"} change
 * one's own message, {"type": "react", "id", "emoji", "action"?} reacts to one,
 * {"typing": true} tells others you are typing.
 */
const MAX_REF = 40

export type ClientFrame =
  | { kind: 'say'; text: unknown; ref?: string | undefined; clientId?: unknown; replyTo?: unknown; alsoToRoom?: unknown }
  | { kind: 'react'; id: number; emoji: unknown; action: unknown; ref?: string | undefined }
  | { kind: 'edit'; id: number; text: unknown; ref?: string | undefined }
  | { kind: 'delete'; id: number; ref?: string | undefined }
  | { kind: 'typing' }
  /** A moderator's action, as POST /rooms/:room/moderation takes it. */
  | { kind: 'moderation'; form: Record<string, unknown>; ref?: string | undefined }
  /** Not understood: the error frame to send back. */
  | { kind: 'bad'; body: string }
  /** A binary frame: the protocol is JSON text; the socket is closed with this code and reason. */
  | { kind: 'binary'; close: [number, string] }

const badFrame = (message: string) => JSON.stringify({ error: 'Bad Request', message } satisfies ErrorBody)

/** What a client's WebSocket frame asks for. */
export function readClientFrame(data: RawData, isBinary: boolean): ClientFrame {
  if (isBinary) return { kind: 'binary', close: [CloseCode.invalidData, 'frames are JSON text: {"text": "..."}'] }
  let parsed: unknown
  try {
    parsed = JSON.parse(data.toString())
  } catch {
    return { kind: 'bad', body: badFrame('A frame must be JSON: {"text": "..."}.') }
  }
  // Checked by hand: this runs for every frame a client sends.
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
    const frame = parsed as Record<string, unknown>
    const { ref } = frame
    const refOk = ref === undefined || (typeof ref === 'string' && ref.length <= MAX_REF)
    const change = readChange(frame)
    if (change && refOk) return { ...change, ref: ref as string | undefined }
    if ('text' in frame && frame.type === undefined) {
      if (refOk) return { kind: 'say', text: frame.text, ref: ref as string | undefined, clientId: frame.clientId, replyTo: frame.replyTo, alsoToRoom: frame.alsoToRoom }
    } else if (frame.typing === true) return { kind: 'typing' }
    else if (frame.type === 'moderation' && refOk) return { kind: 'moderation', form: moderationForm(frame), ref: ref as string | undefined }
  }
  return { kind: 'bad', body: badFrame('A frame must be {"text": "...", "clientId"?: "...", "replyTo"?: ID, "ref"?: "..."}, {"type": "edit", "id", "text"}, {"type": "delete", "id"}, {"type": "react", "id", "emoji", "action"?}, {"type": "moderation", "action", …} or {"typing": true}.') }
}

/** A moderation frame's fields, as POST /rooms/:room/moderation takes them (action, user or id, minutes, reason). */
export function moderationForm(frame: Record<string, unknown>): Record<string, unknown> {
  return { action: frame.action, user: frame.user, id: frame.id, minutes: frame.minutes, reason: frame.reason, seconds: frame.seconds, topic: frame.topic, title: frame.title }
}

/** An edit, a deletion or a reaction frame (`id`: the message's), or undefined when the frame is not one. */
export function readChange(frame: Record<string, unknown>): { kind: 'edit'; id: number; text: unknown } | { kind: 'delete'; id: number } | { kind: 'react'; id: number; emoji: unknown; action: unknown } | undefined {
  if (!Number.isSafeInteger(frame.id) || (frame.id as number) < 1) return undefined
  if (frame.type === 'edit' && 'text' in frame) return { kind: 'edit', id: frame.id as number, text: frame.text }
  if (frame.type === 'delete') return { kind: 'delete', id: frame.id as number }
  if (frame.type === 'react') return { kind: 'react', id: frame.id as number, emoji: frame.emoji, action: frame.action }
  return undefined
}

/** What a say, an edit, a deletion or a reaction frame does in its room (every socket: one room's, or several rooms'). */
export function act(room: Room, user: Member, frame: Extract<ClientFrame, { kind: 'say' | 'edit' | 'delete' | 'react' }>): Promise<Said> {
  if (frame.kind === 'edit') return room.edit(user, frame.id, frame.text)
  if (frame.kind === 'delete') return room.remove(user, frame.id)
  if (frame.kind === 'react') return room.react(user, frame.id, frame.emoji, frame.action)
  return room.say(user, frame.text, undefined, frame.clientId, { replyTo: frame.replyTo, alsoToRoom: frame.alsoToRoom })
}

/**
 * WebSocket: the answer to a moderation frame, on a one-room socket and (with its room first) on
 * the socket of several rooms: an ack with the moderation event's id, or the refusal with its
 * status and why (a refused delete as a refused say: retryAfter when flooded).
 */
export function moderationAnswer(done: Awaited<ReturnType<Chatroom['moderate']>>, ref: string | undefined): { ok: boolean; frame: string } {
  if (done.ok) return { ok: true, frame: ackFrame(ref ?? '', done.event.event.id) }
  if ('said' in done) return { ok: false, frame: `{"status":${httpRefusal(done.said).status},${errorFrame(done.said, ref).slice(1)}` }
  return { ok: false, frame: JSON.stringify({ error: reasons[done.status], message: done.message, status: done.status, ...(ref !== undefined && { ref }) }) }
}
