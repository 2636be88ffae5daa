import type { FastifyReply, FastifyRequest } from 'fastify'
import { nameFromProfile, transportEntry, transports } from '../identity.js'
import { claimUser } from '../plugins/session.js'

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

/** GET /signin/oauth/:provider/callback — checks state, swaps the code for a token, reads the name, signs in. */
export async function callback(request: FastifyRequest, reply: FastifyReply) {
  const found = provider(request, reply)
  if (!found) return reply
  const query = request.query as { error?: string }
  if (query.error) return reply.redirect('/?signin=cancelled', 303)
  let name: string | undefined
  let providerId: string | undefined
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
    if (!name) return reply.redirect('/?signin=noname', 303)
    const id = profile.id ?? profile.sub
    providerId = typeof id === 'string' || typeof id === 'number' ? String(id).slice(0, 200) : undefined
  } catch (err) {
    request.log.warn({ err, provider: found.id }, 'OAuth sign-in failed')
    return reply.redirect('/?signin=failed', 303)
  }
  const transport = transports.find((t) => t === request.cookies[TRANSPORT_COOKIE]) ?? 'websocket'
  reply.clearCookie(TRANSPORT_COOKIE, { path: '/' }).clearCookie('chat_oauth_state', { path: '/' })
  const user = await claimUser(request, { name, ...(providerId && { provider: { name: found.label, id: providerId } }) })
  if (!user) return reply.redirect(`/?signin=taken&name=${encodeURIComponent(name)}`, 303)
  await reply.signIn(user)
  // The provider's redirect made this a cross-site navigation, and entering the room refuses
  // those: a page of our own moves on, so the next request comes from our own origin.
  return reply.view('app/continue', { user, next: transportEntry[transport] })
}
