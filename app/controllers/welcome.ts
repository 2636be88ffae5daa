import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { NAME_MAX, transportEntry, transportNames, transports, userFromSignIn, type Transport } from '../identity.js'
import { accountUser } from '../accounts/accounts.js'
import { PASSWORD_MIN } from '../accounts/passwords.js'
import { knownDevice, rememberDevice } from '../plugins/accounts.js'
import { claimUser, suggestName } from '../plugins/session.js'
import { reasons } from '../transport/protocol.js'

const transportChoices = (['auto', 'websocket', 'sse', 'longpolling', 'refresh'] as const).map((value) => ({ value, ...transportNames[value] }))

/** The longest email the field takes; a name alone is at most NAME_MAX characters. */
const FIELD_MAX = 254

const signInForm = z.object({
  user: z.string({ error: 'Please choose a nick name or enter your email.' }).max(FIELD_MAX, `An email is at most ${FIELD_MAX} characters.`),
  transport: z.enum(transports),
})

type WelcomeForm = { user: string; transport: Transport }

/**
 * After a refused sign-in the browser is sent back to `/` (post/redirect/get, so reloading is
 * safe) with what it typed in this short-lived cookie; the welcome page reads it once.
 */
const FORM_COOKIE = 'chat_signin'
const flashSchema = z.object({
  user: z.string().max(FIELD_MAX),
  transport: z.enum(transports),
  problem: z.enum(['invalid', 'long', 'taken', 'left', 'registered', 'password', 'slow']),
  retryAfter: z.number().int().positive().optional(),
})
type Flash = z.infer<typeof flashSchema>

/** The welcome page: sign in (a name as a guest, or an account's name and password), or register. */
export function welcomePage(
  reply: FastifyReply,
  request: FastifyRequest,
  form: WelcomeForm,
  message?: { text: string; kind: 'error' | 'info' },
  extra: { register?: { name: string; email: string } } = {},
) {
  const providers = [...request.server.oauthProviders.values()].map(({ id, label }) => ({ id, label }))
  const register = extra.register ?? { name: request.user && !request.user.account ? request.user.name : '', email: '' }
  return reply.view('app/index', { user: request.user, form, transports: transportChoices, providers, message, nameMax: NAME_MAX, fieldMax: FIELD_MAX, register, passwordMin: PASSWORD_MIN })
}
const welcome = welcomePage

/** What went wrong with an OAuth sign-in, by the code the callback redirects with (never echoed text). */
const signInProblems: Record<string, string> = {
  cancelled: 'Sign-in was cancelled. Pick a nick name, or try again.',
  failed: 'Sign-in did not work out. Please try again, or pick a nick name.',
  noname: 'Your account did not give us a usable name. Please pick a nick name.',
  taken: 'Someone in the room goes by that name (or one that looks the same) right now. Pick another name.',
  expired: 'You were signed out (the sign-in expired, or you signed out in another tab). Enter the room again to go on.',
}

/** Why the typed name or email cannot be used (the same words the sign-in gave). */
function problemWith(typed: string): string | undefined {
  const form = signInForm.shape.user.safeParse(typed)
  if (!form.success) return form.error.issues[0]!.message
  const result = userFromSignIn(typed)
  return 'error' in result ? result.error : undefined
}

function takenMessage(request: FastifyRequest, typed: string): string {
  const result = userFromSignIn(typed)
  const name = 'user' in result ? result.user.name : typed
  return `Someone in the room goes by "${name}" (or a name that looks the same) right now. Try "${suggestName(request, name)}", or another name.`
}

function flashMessage(request: FastifyRequest, flash: Flash): string {
  switch (flash.problem) {
    case 'left':
      return 'You signed out. Come back any time.'
    case 'taken':
      return takenMessage(request, flash.user)
    case 'long':
      return `An email is at most ${FIELD_MAX} characters.`
    case 'invalid':
      return problemWith(flash.user) ?? 'Please try again.'
    case 'registered':
      return `"${flash.user}" (or a name that looks the same) is a registered name. If it is yours, sign in with its password; else pick another name.`
    case 'password':
      return PASSWORD_REFUSED
    case 'slow':
      return `Too many wrong passwords. Try again in ${flash.retryAfter ?? 1} s.`
  }
}

/** Reads (and clears) what a refused sign-in left for the welcome page. */
function takeFlash(request: FastifyRequest, reply: FastifyReply): Flash | undefined {
  const raw = request.cookies[FORM_COOKIE]
  if (raw === undefined) return undefined
  reply.clearCookie(FORM_COOKIE, { path: '/' })
  try {
    const flash = flashSchema.safeParse(JSON.parse(raw))
    return flash.success ? flash.data : undefined
  } catch {
    return undefined
  }
}

/**
 * A refused sign-in: a browser goes back to the welcome page with the form as typed; a program
 * (no text/html in Accept, e.g. curl) gets the status and the message as JSON.
 */
function backToWelcome(reply: FastifyReply, flash: Flash, message?: () => string) {
  if (message && !(reply.request.headers.accept ?? '').includes('text/html')) {
    const status = { taken: 409, registered: 409, password: 401, slow: 429 }[flash.problem as string] ?? 400
    if (flash.retryAfter) reply.header('retry-after', String(flash.retryAfter))
    return reply.code(status).send({ error: reasons[status as keyof typeof reasons], message: message() })
  }
  reply.setCookie(FORM_COOKIE, JSON.stringify(flash), { httpOnly: true, sameSite: 'lax', path: '/', maxAge: 300, secure: reply.request.protocol === 'https' })
  return reply.redirect('/', 303)
}

/** GET /[?signin=PROBLEM&name=NAME] — the welcome page; after a problem, the name typed before is filled in. */
export function index(request: FastifyRequest, reply: FastifyReply) {
  const flash = takeFlash(request, reply)
  if (flash) {
    const form = { user: flash.user, transport: flash.transport }
    return welcome(reply, request, form, { text: flashMessage(request, flash), kind: flash.problem === 'left' ? 'info' : 'error' })
  }
  const { signin, name } = request.query as { signin?: string; name?: string }
  const problem = signin !== undefined && Object.hasOwn(signInProblems, signin) ? signInProblems[signin] : undefined
  const typed = typeof name === 'string' ? name.slice(0, FIELD_MAX) : ''
  return welcome(reply, request, { user: request.user?.name ?? typed, transport: 'auto' }, problem ? { text: problem, kind: 'error' } : undefined)
}

/**
 * POST /signin — signs in with a nick or an email (the name must be free in the room), then
 * enters the chosen transport's room. A refusal goes back to `/` with the form as typed.
 */
export async function signIn(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const typed = typeof body.user === 'string' ? body.user.slice(0, FIELD_MAX) : ''
  const transport = transports.find((t) => t === body.transport) ?? 'auto'
  // A form always says how; a client that does not (or names no known way) gets the default.
  const form = signInForm.safeParse({ user: body.user, transport })
  const result = form.success ? userFromSignIn(form.data.user) : undefined
  if (!result || 'error' in result) {
    const flash: Flash = { user: typed, transport, problem: typeof body.user === 'string' && body.user.length > FIELD_MAX ? 'long' : 'invalid' }
    return backToWelcome(reply, flash, () => flashMessage(request, flash))
  }
  if (typeof body.password === 'string' && body.password !== '') return signInWithPassword(request, reply, result.user.name, body.password, typed, transport)
  // A registered name (or a look-alike) is its account's: a guest cannot take it, whoever holds it now.
  const holder = await request.server.accounts.holding(result.user.name)
  // Already signed in as that account (another tab's form): just go in.
  if (holder && request.user?.id === holder.id) return reply.redirect(transportEntry[transport], 303)
  if (holder) {
    const flash: Flash = { user: typed, transport, problem: 'registered' }
    return backToWelcome(reply, flash, () => flashMessage(request, flash))
  }
  const user = await claimUser(request, result.user)
  if (!user) {
    const flash: Flash = { user: typed, transport, problem: 'taken' }
    return backToWelcome(reply, flash, () => flashMessage(request, flash))
  }
  await reply.signIn(user)
  return reply.redirect(transportEntry[transport], 303)
}

const PASSWORD_REFUSED = 'That name and password do not match an account.'

/**
 * An account's sign-in: the same answer, after the same work, for a name nobody registered and
 * for a wrong password. The account's name is its own: held by one of its other devices or a
 * crashed tab, it is simply taken over (the claim goes by the account's id).
 */
async function signInWithPassword(request: FastifyRequest, reply: FastifyReply, name: string, password: string, typed: string, transport: Transport) {
  const { accounts } = request.server
  const result = await accounts.signIn(name, password, request.ip ?? '', knownDevice(request))
  if (!result.ok) {
    const flash: Flash = { user: typed, transport, problem: result.status === 429 ? 'slow' : 'password', ...(result.retryAfter && { retryAfter: result.retryAfter }) }
    return backToWelcome(reply, flash, () => flashMessage(request, flash))
  }
  const user = accountUser(result.account)
  if (!(await request.server.chatroom.claimName(user))) {
    const flash: Flash = { user: typed, transport, problem: 'taken' }
    return backToWelcome(reply, flash, () => flashMessage(request, flash))
  }
  await reply.signIn(user)
  rememberDevice(reply, user.id)
  return reply.redirect(transportEntry[transport], 303)
}

/** POST /signout — leaves the room and ends the session at once (on every process); the welcome page keeps the name. */
export async function signOut(request: FastifyRequest, reply: FastifyReply) {
  const user = request.user
  if (user) await request.server.chatroom.leave(user)
  await reply.signOut()
  if (!user) return reply.redirect('/', 303)
  return backToWelcome(reply, { user: user.name.slice(0, FIELD_MAX), transport: 'auto', problem: 'left' })
}
