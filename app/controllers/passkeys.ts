import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { accountUser } from '../accounts/accounts.js'
import { CHALLENGE_MS, Passkeys, type PasskeyRefused, type RelyingParty } from '../accounts/passkeys.js'
import type { AccountRecord } from '../accounts/accounts.js'
import type { FloodGuard } from '../chatroom/flood.js'
import { transportEntry, transports } from '../identity.js'
import { rememberDevice } from '../plugins/accounts.js'
import { currentUser } from '../plugins/session.js'
import { reasons } from '../transport/protocol.js'
import { fromQuery } from '../transport/http.js'

type Purpose = 'add' | 'signin'

/**
 * The challenge a browser was given waits in a signed, HttpOnly cookie scoped to the route
 * that checks it (so any process can check it, and nothing is kept per browser on the
 * server). It names its purpose, the account (when adding), and when it expires; it is
 * cleared when read, and a challenge is marked used on the broker (shared by every process),
 * so the same signed cookie sent again is refused: one try per challenge.
 */
const challengeCookies: Record<Purpose, { name: string; path: string }> = {
  add: { name: 'chat_passkey_add', path: '/account/passkeys' },
  signin: { name: 'chat_passkey_signin', path: '/signin/passkey' },
}

/** Challenges used in the last CHALLENGE_MS, per app: a second take of one is refused. */
const usedChallenges = new WeakMap<FastifyInstance, FloodGuard>()

function usedGuard(app: FastifyInstance): FloodGuard {
  let guard = usedChallenges.get(app)
  if (!guard) usedChallenges.set(app, (guard = app.limiter('passkey-challenge', 1, CHALLENGE_MS)))
  return guard
}

function keepChallenge(request: FastifyRequest, reply: FastifyReply, purpose: Purpose, challenge: string, accountId = '') {
  const { name, path } = challengeCookies[purpose]
  const value = [purpose, Date.now() + CHALLENGE_MS, accountId, challenge].join('.')
  reply.setCookie(name, value, { signed: true, httpOnly: true, sameSite: 'strict', secure: request.protocol === 'https', path, maxAge: CHALLENGE_MS / 1000 })
}

/** The challenge this browser was given for `purpose`, once: undefined when missing, forged, expired or used. */
async function takeChallenge(request: FastifyRequest, reply: FastifyReply, purpose: Purpose): Promise<{ challenge: string; accountId: string } | undefined> {
  const { name, path } = challengeCookies[purpose]
  const raw = request.cookies[name]
  if (raw === undefined) return undefined
  reply.clearCookie(name, { path })
  const unsigned = request.unsignCookie(raw)
  if (!unsigned.valid || !unsigned.value) return undefined
  const [kind, expires, accountId, challenge, ...rest] = unsigned.value.split('.')
  if (kind !== purpose || rest.length > 0 || !challenge || !(Number(expires) > Date.now())) return undefined
  if ((await usedGuard(request.server).take(challenge)) > 0) return undefined
  return { challenge, accountId: accountId ?? '' }
}

/**
 * Who the passkeys are for. PUBLIC_URL names the site in production. Unset (development,
 * tests), the request's own origin is used, so http://localhost:3000 works as it is (browsers
 * allow WebAuthn on localhost without https; they refuse an IP address such as 127.0.0.1 as
 * an rp id, so open the chat as localhost there). The Host header comes from the client:
 * behind a proxy or in production, set PUBLIC_URL.
 */
function relyingParty(request: FastifyRequest): RelyingParty | undefined {
  try {
    const url = new URL(request.server.config.PUBLIC_URL ?? `${request.protocol}://${request.host}`)
    return { id: url.hostname, origin: url.origin }
  } catch {
    return undefined
  }
}

const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/html')

function refuse(reply: FastifyReply, refused: Pick<PasskeyRefused, 'status' | 'message'> | { status: 403; message: string }) {
  return reply.code(refused.status).header('cache-control', 'no-store').send({ error: reasons[refused.status], message: refused.message })
}

const noSite = { status: 400, message: 'This request does not say which site it is for (no Host header).' } as const
const staleChallenge = { status: 400, message: 'That passkey request expired or was used already. Please try again.' } as const

/** The signed-in account's record; a guest (or an account that is gone) gets 403. */
async function ownAccount(request: FastifyRequest, reply: FastifyReply): Promise<AccountRecord | undefined> {
  const user = currentUser(request)
  const account = user.account ? await request.server.chatroom.accounts.byId(user.id) : undefined
  if (!account) refuse(reply, { status: 403, message: 'Guests have no account: register your name first, then add a passkey to it.' })
  return account
}

const passkeys = (request: FastifyRequest) => new Passkeys(request.server.chatroom.accounts)

/** POST /account/passkeys/options — what navigator.credentials.create needs to make a passkey for this account. */
export async function registrationOptions(request: FastifyRequest, reply: FastifyReply) {
  const account = await ownAccount(request, reply)
  if (!account) return reply
  const rp = relyingParty(request)
  if (!rp) return refuse(reply, noSite)
  const options = await passkeys(request).registrationOptions(account, rp)
  keepChallenge(request, reply, 'add', options.challenge, account.id)
  return reply.header('cache-control', 'no-store').send(options)
}

/** POST /account/passkeys — the new credential (PublicKeyCredential JSON): checked and kept, 201 {id}. */
export async function add(request: FastifyRequest, reply: FastifyReply) {
  const account = await ownAccount(request, reply)
  if (!account) return reply
  const rp = relyingParty(request)
  if (!rp) return refuse(reply, noSite)
  const given = await takeChallenge(request, reply, 'add')
  if (!given || given.accountId !== account.id) return refuse(reply, staleChallenge)
  const result = await passkeys(request).register(account.id, request.body, given.challenge, rp)
  if (!result.ok) return refuse(reply, result)
  request.log.info({ account: account.id }, 'passkey added')
  return reply.code(201).send({ id: result.passkey.id })
}

/** POST /account/passkeys/:id/delete — removes one of the account's passkeys. */
export async function remove(request: FastifyRequest, reply: FastifyReply) {
  const account = await ownAccount(request, reply)
  if (!account) return reply
  const { id } = request.params as { id: string }
  const result = await passkeys(request).remove(account, id)
  if (!result.ok) return refuse(reply, result)
  if (wantsHtml(request)) return reply.redirect(`/account?done=passkey-removed${fromQuery(request, '&')}`, 303)
  return reply.send({ ok: true })
}

/** POST /signin/passkey/options — what navigator.credentials.get needs: any passkey of this site, no name asked. */
export async function signInOptions(request: FastifyRequest, reply: FastifyReply) {
  const rp = relyingParty(request)
  if (!rp) return refuse(reply, noSite)
  const options = await passkeys(request).authenticationOptions(rp)
  keepChallenge(request, reply, 'signin', options.challenge)
  return reply.header('cache-control', 'no-store').send(options)
}

/**
 * POST /signin/passkey — the signed challenge (PublicKeyCredential JSON, plus an optional
 * `transport`): signs in as the passkey's account on this device, as a password would.
 * 200 {ok, redirect}: the chosen way into the room.
 */
export async function signIn(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const transport = transports.find((t) => t === body.transport) ?? 'auto'
  const rp = relyingParty(request)
  if (!rp) return refuse(reply, noSite)
  const given = await takeChallenge(request, reply, 'signin')
  if (!given) return refuse(reply, staleChallenge)
  const result = await passkeys(request).authenticate(body, given.challenge, rp)
  if (!result.ok) return refuse(reply, result)
  // The account's name is its own: held by another of its devices, it is taken over (by id).
  const user = accountUser(result.account)
  if (!(await request.server.chatroom.claimName(user))) {
    return refuse(reply, { status: 409, message: `Someone in the room goes by "${user.name}" (or a name that looks the same) right now. Please try again in a moment.` })
  }
  await reply.signIn(user)
  rememberDevice(reply, user.id)
  return reply.send({ ok: true, redirect: transportEntry[transport] })
}
