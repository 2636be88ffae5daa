import type { FastifyInstance } from 'fastify'
import type { StoredEvent } from '../chatroom/event.js'
import type { SignedInUser } from '../identity.js'
import { firstIssue, messageTextSchema } from '../validation.js'

export type Spoken =
  | { ok: true; stored: StoredEvent }
  | { ok: false; status: 400; message: string }
  | { ok: false; status: 429; message: string; retryAfter: number }
  | { ok: false; status: 503; message: string }

/**
 * What every transport does with a message: validate it, apply the user's flood limit
 * (shared by all their connections), then say it.
 */
export async function speak(app: FastifyInstance, user: SignedInUser, raw: unknown): Promise<Spoken> {
  const text = messageTextSchema(app.config.MAX_MESSAGE_LENGTH).safeParse(raw)
  if (!text.success) return { ok: false, status: 400, message: firstIssue(text.error) }
  try {
    const waitMs = await app.floodGuard.take(user.name)
    if (waitMs > 0) {
      const retryAfter = Math.max(1, Math.ceil(waitMs / 1000))
      const { RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW } = app.config
      return {
        ok: false,
        status: 429,
        retryAfter,
        message: `Slow down: at most ${RATE_LIMIT_MESSAGES} messages per ${RATE_LIMIT_WINDOW} s. Try again in ${retryAfter} s.`,
      }
    }
    return { ok: true, stored: await app.chatroom.say(user.name, text.data, user.avatar) }
  } catch (err) {
    // The broker is unreachable: say so plainly instead of hanging or pretending.
    app.log.error({ err }, 'could not publish a message')
    return { ok: false, status: 503, message: 'The chat is unavailable right now; your message was not sent. Try again shortly.' }
  }
}
