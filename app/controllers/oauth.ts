import { randomBytes } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { accountUser } from '../accounts/accounts.js'
import type { AccountRecord } from '../accounts/accounts.js'
import { NAME_MAX, nameFromProfile, nameSchema, skeleton, transportEntry, transports, type User } from '../identity.js'
import { rememberDevice } from '../plugins/accounts.js'

const TRANSPORT_COOKIE = 'chat_oauth_transport'

function provider(request: FastifyRequest, reply: FastifyReply) {
  const { provider: id } = request.params as { provider: string }
  const found = request.server.oauthProviders.get(id)
  if (!found) reply.code(404).send({ error: 'Not Found', message: `No sign-in provider "${id}" is configured.` })
  return found
}

/** GET /signin/oauth/:provider?transport=… — off to the provider, remembering the transport. */
export async function start(request: FastifyRequest, reply: FastifyReply) {
  const found = provider(request, reply)
  if (!found) return reply
  const { transport } = request.query as { transport?: string }
  const picked = transports.find((t) => t === transport) ?? 'websocket'
  reply.setCookie(TRANSPORT_COOKIE, picked, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: 600 })
  const uri = await found.client.generateAuthorizationUri(request, reply)
  return reply.redirect(uri, 302)
}

/** How many numbered variants of a taken profile name (name2, name3, ...) a new account tries. */
const VARIANTS = 50

/**
 * A new account (no password) named from the profile, or the first free variant of it: never a
 * name another account holds (by look-alike skeleton), nor one someone present goes by. A guest
 * who holds the name now keeps it, as with a password registration: the account takes their id.
 */
async function newAccount(request: FastifyRequest, name: string): Promise<AccountRecord | undefined> {
  const store = request.server.chatroom.accounts
  const guest = request.user && !request.user.account ? request.user : undefined
  const base = Array.from(name).slice(0, NAME_MAX - 3).join('')
  const candidates = [name, ...Array.from({ length: VARIANTS - 1 }, (_, i) => `${base}${i + 2}`)]
  candidates.push(`${Array.from(name).slice(0, NAME_MAX - 5).join('')}_${randomBytes(2).toString('hex')}`)
  for (const candidate of candidates) {
    // Cut inside an emoji sequence, a variant may not be a valid name: skip it.
    if (!nameSchema.safeParse(candidate).success) continue
    const key = skeleton(candidate)
    if (await store.bySkeleton(key)) continue
    const id = guest && skeleton(guest.name) === key ? guest.id : randomBytes(16).toString('base64url')
    if (!(await request.server.chatroom.claimName({ id, name: candidate }))) continue
    const account: AccountRecord = { id, name: candidate, skeleton: key, passwordHash: null, createdAt: Date.now() }
    // False when another sign-in took the name (or the id) meanwhile: on to the next one.
    if (await store.create(account)) return account
  }
  return undefined
}

/**
 * The account a provider's user signs in to: the one they are linked to; else the account
 * signed in now, which they are linked to ("link your provider"); else a new one, linked.
 * 'noname' when a new account is needed and the profile gave no usable name.
 */
async function accountFor(request: FastifyRequest, provider: string, providerUserId: string, name: string | undefined): Promise<AccountRecord | 'noname' | undefined> {
  const store = request.server.chatroom.accounts
  const linked = await store.linked(provider, providerUserId)
  if (linked) return store.byId(linked)
  const current = request.user?.account ? await store.byId(request.user.id) : undefined
  const account = current ?? (name === undefined ? undefined : await newAccount(request, name))
  if (!account) return name === undefined ? 'noname' : undefined
  if (await store.link(provider, providerUserId, account.id)) return account
  // Another sign-in of the same provider user linked it first: theirs is the account.
  // (A new account made here stays unlinked, with no password: nobody can sign in to it.)
  const first = await store.linked(provider, providerUserId)
  return first === undefined ? undefined : store.byId(first)
}

/**
 * GET /signin/oauth/:provider/callback — checks state, swaps the code for a token, reads the
 * profile, and signs in to the account the provider's user is linked to (made and linked on
 * their first sign-in, or linked to the account signed in now). The account keeps its own name.
 */
export async function callback(request: FastifyRequest, reply: FastifyReply) {
  const found = provider(request, reply)
  if (!found) return reply
  const query = request.query as { error?: string }
  if (query.error) return reply.redirect('/?signin=cancelled', 303)
  let name: string | undefined
  let providerId: string
  try {
    // Throws on a missing or forged state, and on a refused code.
    const { token } = await found.client.getAccessTokenFromAuthorizationCodeFlow(request, reply)
    const res = await fetch(found.profileUrl, {
      headers: { authorization: `Bearer ${token.access_token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(10_000),
    })
    if (!res.ok) throw new Error(`profile answered ${res.status}`)
    const profile = (await res.json()) as Record<string, unknown>
    name = nameFromProfile(profile[found.nameField])
    const id = profile.id ?? profile.sub
    // The id is what the account is linked by: never cut, as two ids cut alike would share one.
    if (!(typeof id === 'string' || typeof id === 'number') || String(id) === '') throw new Error('the profile has no id')
    if (String(id).length > 200) throw new Error('the profile id is longer than 200 characters')
    providerId = String(id)
  } catch (err) {
    request.log.warn({ err, provider: found.id }, 'OAuth sign-in failed')
    return reply.redirect('/?signin=failed', 303)
  }
  const transport = transports.find((t) => t === request.cookies[TRANSPORT_COOKIE]) ?? 'websocket'
  reply.clearCookie(TRANSPORT_COOKIE, { path: '/' }).clearCookie('chat_oauth_state', { path: '/' })
  const account = await accountFor(request, found.linkKey, providerId, name)
  if (account === 'noname') return reply.redirect('/?signin=noname', 303)
  if (!account) {
    request.log.warn({ provider: found.id }, 'OAuth sign-in found no account to sign in to')
    return reply.redirect('/?signin=failed', 303)
  }
  // Signed in through the provider: events say "via" it, as before accounts.
  const user: User = { ...accountUser(account), provider: { name: found.label, id: providerId } }
  // The account's own id holds its name, so another device of it never stands in the way.
  if (!(await request.server.chatroom.claimName(user))) return reply.redirect(`/?signin=taken&name=${encodeURIComponent(account.name)}`, 303)
  await reply.signIn(user)
  rememberDevice(reply, account.id)
  // The provider's redirect made this a cross-site navigation, and entering the room refuses
  // those: a page of our own moves on, so the next request comes from our own origin.
  return reply.view('app/continue', { user, next: transportEntry[transport] })
}
