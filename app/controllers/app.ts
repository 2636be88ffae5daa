import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { avatarFilePattern, identiconSvg } from '../avatars.js'
import { nameFromProfile, transportEntry, transports, userFromSignIn, type Transport } from '../identity.js'
import { currentUser } from '../plugins/session.js'

const transportChoices: { value: Transport; label: string; hint: string }[] = [
  { value: 'refresh', label: 'Ajax, active refresh', hint: 'the page fetches the thread every few seconds' },
  { value: 'longpolling', label: 'Ajax, long polling', hint: 'the server answers when something happens' },
  { value: 'websocket', label: 'WebSocket', hint: 'one open connection, both ways' },
]

const signInForm = z.object({
  user: z
    .string({ error: 'Please choose a nick name or enter your email.' })
    .max(254, 'A name or email is at most 254 characters.'),
  transport: z.enum(transports, { error: 'Please pick a transport.' }),
})

type WelcomeForm = { user: string; transport: Transport }

function welcome(reply: FastifyReply, request: FastifyRequest, form: WelcomeForm, error?: string) {
  const providers = [...request.server.oauthProviders.values()].map(({ id, label }) => ({ id, label }))
  return reply.view('app/index', { user: request.user, form, transports: transportChoices, providers, error })
}

/** What went wrong with an OAuth sign-in, by the code the callback redirects with (never echoed text). */
const signInProblems: Record<string, string> = {
  cancelled: 'Sign-in was cancelled. Pick a nick name, or try again.',
  failed: 'Sign-in did not work out. Please try again, or pick a nick name.',
  noname: 'Your account did not give us a usable name. Please pick a nick name.',
}

/** GET / — the welcome page. */
export function index(request: FastifyRequest, reply: FastifyReply) {
  const { signin } = request.query as { signin?: string }
  const problem = signin !== undefined && Object.hasOwn(signInProblems, signin) ? signInProblems[signin] : undefined
  return welcome(reply, request, { user: request.user?.name ?? '', transport: 'websocket' }, problem)
}

/** POST /signin — signs in with a nick or an email, then enters the chosen transport's room. */
export function signIn(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const typed = typeof body.user === 'string' ? body.user : ''
  const picked = transports.find((t) => t === body.transport) ?? 'websocket'
  const form = signInForm.safeParse(body)
  if (!form.success) {
    const typedForm = { user: typed.slice(0, 254), transport: picked }
    return welcome(reply.code(400), request, typedForm, form.error.issues[0]!.message)
  }
  const result = userFromSignIn(form.data.user)
  if ('error' in result) {
    return welcome(reply.code(400), request, { user: form.data.user, transport: picked }, result.error)
  }
  return reply.signIn(result.user).redirect(transportEntry[form.data.transport], 303)
}

/** POST /signout — forgets who you are. */
export function signOut(_request: FastifyRequest, reply: FastifyReply) {
  return reply.signOut().redirect('/', 303)
}

/** GET /room/users — who is online, with avatars, as of event lastId. */
export function users(request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').send(request.server.chatroom.roster())
}

/** GET /avatars/:file — a deterministic identicon, made here (no third-party request). */
export function avatar(request: FastifyRequest, reply: FastifyReply) {
  const { file } = request.params as { file: string }
  const key = avatarFilePattern.exec(file)?.[1]
  if (!key) return reply.code(404).send({ error: 'Not Found', message: 'No such avatar.' })
  return reply
    .type('image/svg+xml')
    .header('cache-control', 'public, max-age=31536000, immutable')
    .send(identiconSvg(key))
}

const TRANSPORT_COOKIE = 'chat_oauth_transport'

function provider(request: FastifyRequest, reply: FastifyReply) {
  const { provider: id } = request.params as { provider: string }
  const found = request.server.oauthProviders.get(id)
  if (!found) reply.code(404).send({ error: 'Not Found', message: `No sign-in provider "${id}" is configured.` })
  return found
}

/** GET /signin/oauth/:provider?transport=… — off to the provider, remembering the transport. */
export async function oauthStart(request: FastifyRequest, reply: FastifyReply) {
  const found = provider(request, reply)
  if (!found) return reply
  const { transport } = request.query as { transport?: string }
  const picked = transports.find((t) => t === transport) ?? 'websocket'
  reply.setCookie(TRANSPORT_COOKIE, picked, { httpOnly: true, sameSite: 'lax', path: '/', maxAge: 600 })
  const uri = await found.client.generateAuthorizationUri(request, reply)
  return reply.redirect(uri, 302)
}

/** GET /signin/oauth/:provider/callback — checks state, swaps the code for a token, reads the name, signs in. */
export async function oauthCallback(request: FastifyRequest, reply: FastifyReply) {
  const found = provider(request, reply)
  if (!found) return reply
  const query = request.query as { error?: string }
  if (query.error) return reply.redirect('/?signin=cancelled', 303)
  let name: string | undefined
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
  } catch (err) {
    request.log.warn({ err, provider: found.id }, 'OAuth sign-in failed')
    return reply.redirect('/?signin=failed', 303)
  }
  const transport = transports.find((t) => t === request.cookies[TRANSPORT_COOKIE]) ?? 'websocket'
  reply.clearCookie(TRANSPORT_COOKIE, { path: '/' }).clearCookie('chat_oauth_state', { path: '/' })
  return reply.signIn({ name }).redirect(transportEntry[transport], 303)
}

/** GET /healthz — the process is alive. */
export function healthz(_request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').send({ status: 'ok' })
}

/** GET /readyz — the process can serve the room: its broker answers (503 while Redis is down). */
export async function readyz(request: FastifyRequest, reply: FastifyReply) {
  const ready = await request.server.chatroom.ready()
  return reply
    .code(ready ? 200 : 503)
    .header('cache-control', 'no-store')
    .send(ready ? { status: 'ready' } : { status: 'unavailable', message: 'The broker cannot be reached.' })
}

/** GET /metrics — Prometheus text format. */
export async function metrics(request: FastifyRequest, reply: FastifyReply) {
  const registry = request.server.metricsRegistry
  return reply.type(registry.contentType).header('cache-control', 'no-store').send(await registry.metrics())
}
