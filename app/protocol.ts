/** WebSocket close codes, in one place (4000-4999 are ours). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  invalidData: 1007,
  policy: 1008,
  tooBig: 1009,
  /** Fell too far behind: reconnect and resume from your cursor. */
  lagged: 4000,
  badRequest: 4400,
  unauthorized: 4401,
  /** The cursor is ahead of the room (it restarted without its history): resume from 0. */
  cursorAhead: 4409,
} as const

/** A non-event frame or body: what went wrong, for people and programs. */
export interface ErrorBody {
  error: string
  message: string
  /** Seconds to wait, with Too Many Requests. */
  retryAfter?: number
}

export const cursorAheadMessage = (lastId: number) =>
  `lastReceived is ahead of the room, whose newest event is ${lastId} (the server restarted without its history): resume from 0.`
