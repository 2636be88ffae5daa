import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Accounts } from '../accounts/accounts.js'

declare module 'fastify' {
  interface FastifyInstance {
    accounts: Accounts
  }
}

/** A long-lived cookie naming the account this browser signed in to: its owner is never throttled out. */
export const DEVICE_COOKIE = 'chat_device'
const YEAR_S = 365 * 24 * 3600

/** Marks this browser as one the account signed in from (signed; it holds the account id and nothing secret). */
export function rememberDevice(reply: FastifyReply, accountId: string): void {
  reply.setCookie(DEVICE_COOKIE, accountId, { signed: true, httpOnly: true, sameSite: 'lax', secure: reply.request.protocol === 'https', path: '/', maxAge: YEAR_S })
}

/** The account this browser signed in to before, if its device cookie is genuine. */
export function knownDevice(request: FastifyRequest): string | undefined {
  const raw = request.cookies[DEVICE_COOKIE]
  if (!raw) return undefined
  const unsigned = request.unsignCookie(raw)
  return unsigned.valid && unsigned.value ? unsigned.value : undefined
}

/** The accounts service over the store's accounts, claiming names through the room's bus. */
export default fp(
  async function accounts(app) {
    app.decorate('accounts', new Accounts(app.chatroom.accounts, { claim: (id, name) => app.chatroom.claimName({ id, name }) }))
  },
  { name: 'accounts', dependencies: ['chatroom', 'session'] },
)
