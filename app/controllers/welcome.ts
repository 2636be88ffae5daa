import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { transportEntry, transports, userFromSignIn, type Transport } from '../identity.js'
import { claimUser, suggestName } from '../plugins/session.js'

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
  taken: 'Someone in the room goes by that name (or one that looks the same) right now. Pick another name.',
  expired: 'You were signed out (the sign-in expired, or you signed out in another tab). Enter the room again to go on.',
}

/** GET /[?signin=PROBLEM&name=NAME] — the welcome page; after a problem, the name typed before is filled in. */
export function index(request: FastifyRequest, reply: FastifyReply) {
  const { signin, name } = request.query as { signin?: string; name?: string }
  const problem = signin !== undefined && Object.hasOwn(signInProblems, signin) ? signInProblems[signin] : undefined
  const typed = typeof name === 'string' ? name.slice(0, 254) : ''
  return welcome(reply, request, { user: request.user?.name ?? typed, transport: 'websocket' }, problem)
}

/** POST /signin — signs in with a nick or an email (the name must be free in the room), then enters the chosen transport's room. */
export async function signIn(request: FastifyRequest, reply: FastifyReply) {
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
  const user = await claimUser(request, result.user)
  if (!user) {
    const name = result.user.name
    const message = `Someone in the room goes by "${name}" (or a name that looks the same) right now. Try "${suggestName(request, name)}", or another name.`
    return welcome(reply.code(409), request, { user: form.data.user, transport: picked }, message)
  }
  await reply.signIn(user)
  return reply.redirect(transportEntry[form.data.transport], 303)
}

/** POST /signout — ends the session at once (on every process) and leaves the room. */
export async function signOut(request: FastifyRequest, reply: FastifyReply) {
  if (request.user) {
    for (const transport of transports) await request.server.chatroom.leave(request.user, transport)
  }
  await reply.signOut()
  return reply.redirect('/', 303)
}
