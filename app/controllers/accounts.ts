import type { FastifyReply, FastifyRequest } from 'fastify'
import { accountUser, type Refused } from '../accounts/accounts.js'
import { PASSWORD_MIN } from '../accounts/passwords.js'
import { skeleton, transportEntry, transports } from '../identity.js'
import { rememberDevice } from '../plugins/accounts.js'
import { currentUser } from '../plugins/session.js'
import { reasons } from '../transport/protocol.js'
import { cameFrom, fromQuery } from '../transport/http.js'
import { welcomePage } from './welcome.js'

const wantsHtml = (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/html')
const body = (request: FastifyRequest) => (request.body ?? {}) as Record<string, unknown>
const field = (value: unknown) => (typeof value === 'string' ? value : '')

/** A refusal: a browser sees the page again with the message (and what it typed, but never a password); a program gets JSON. */
function refuse(request: FastifyRequest, reply: FastifyReply, refused: Refused, page: () => unknown) {
  reply.code(refused.status)
  if (refused.retryAfter) reply.header('retry-after', String(refused.retryAfter))
  if (wantsHtml(request)) return page()
  return reply.send({ error: reasons[refused.status], message: refused.message })
}

/**
 * POST /accounts — name, password, optional email (and the way in for a browser): creates the
 * account and signs it in on this device. A guest who holds the name keeps it: it becomes
 * theirs. 303 to the chosen way in for a browser, 201 {id, name} for a program; 400 or 409
 * with the reason.
 */
export async function create(request: FastifyRequest, reply: FastifyReply) {
  const form = body(request)
  const transport = transports.find((t) => t === form.transport) ?? 'auto'
  const guest = request.user && !request.user.account ? request.user : undefined
  const keeps = guest && typeof form.name === 'string' && skeleton(form.name.trim()) === skeleton(guest.name)
  const result = await request.server.accounts.register({ name: form.name, password: form.password, email: form.email }, keeps ? guest.id : undefined)
  if (!result.ok) {
    return refuse(request, reply, result, () =>
      welcomePage(reply, request, { user: field(form.name).slice(0, 254), transport }, { text: result.message, kind: 'error' }, { register: { name: field(form.name).slice(0, 254), email: field(form.email).slice(0, 254) } }),
    )
  }
  await reply.signIn(accountUser(result.account))
  rememberDevice(reply, result.account.id)
  if (wantsHtml(request) || form.transport !== undefined) return reply.redirect(transportEntry[transport], 303)
  return reply.code(201).send({ id: result.account.id, name: result.account.name })
}

/** The sessions of the signed-in account, newest use first, this one marked. */
async function listed(request: FastifyRequest) {
  const user = currentUser(request)
  const sessions = user.account ? await request.server.chatroom.sessions.list(user.id) : []
  return sessions.map((s) => ({ id: s.hash, current: s.hash === request.sessionHash, createdAt: s.createdAt, lastSeenAt: s.seenAt, userAgent: s.userAgent }))
}

/** GET /account — the account page: sessions (sign out one, or every other), the password, passkeys; for a guest, how to keep the name. */
export function page(request: FastifyRequest, reply: FastifyReply) {
  return accountPage(request, reply)
}

async function accountPage(request: FastifyRequest, reply: FastifyReply, error?: string) {
  const user = currentUser(request)
  const sessions = (await listed(request)).map((s) => ({ ...s, device: deviceName(s.userAgent), seen: new Date(s.lastSeenAt).toISOString().slice(0, 16).replace('T', ' ') + ' UTC' }))
  const passkeys = user.account ? await request.server.chatroom.accounts.passkeys(user.id) : []
  const notice = (request.query as { done?: string }).done
  const notices: Record<string, string> = {
    ended: 'That session is signed out.',
    others: 'Every other session is signed out.',
    password: 'Your password is changed; every other session is signed out.',
    'passkey-added': 'Your passkey is added: you can sign in with it from the welcome page.',
    'passkey-removed': 'That passkey is removed.',
  }
  return reply.view('account/index', { title: 'Your account', user, sessions, passkeys, passwordMin: PASSWORD_MIN, notice: notice && notices[notice], error, back: cameFrom(request), from: fromQuery(request) })
}

/** GET /account/sessions — {"sessions": [{id, current, createdAt, lastSeenAt, userAgent}]}; a guest has no account (403). */
export async function sessions(request: FastifyRequest, reply: FastifyReply) {
  if (!currentUser(request).account) return reply.code(403).send({ error: 'Forbidden', message: 'Guests have no account: register your name (POST /accounts) to see and end sessions.' })
  return reply.header('cache-control', 'no-store').send({ sessions: await listed(request) })
}

/** POST /account/sessions/end — `id` (one session of the account) or `all=others`: signed out at once, on every process. */
export async function endSessions(request: FastifyRequest, reply: FastifyReply) {
  const user = currentUser(request)
  const form = body(request)
  if (!user.account) return reply.code(403).send({ error: 'Forbidden', message: 'Guests have no account: register your name to end sessions.' })
  const store = request.server.chatroom.sessions
  let ended: string[]
  if (form.all === 'others') ended = await store.endAccount(user.id, request.sessionHash ?? undefined)
  else if (typeof form.id === 'string') {
    const mine = (await store.list(user.id)).some((s) => s.hash === form.id)
    if (!mine) return reply.code(404).send({ error: 'Not Found', message: 'No such session of yours.' })
    await store.delete(form.id)
    ended = [form.id]
  } else return reply.code(400).send({ error: 'Bad Request', message: 'Say which session: id=…, or all=others.' })
  for (const hash of ended) request.server.chatroom.revoke(hash)
  if (ended.includes(request.sessionHash ?? '')) reply.clearCookie('chat_session', { path: '/' })
  if (wantsHtml(request)) return reply.redirect(`/account?done=${form.all === 'others' ? 'others' : 'ended'}${fromQuery(request, '&')}`, 303)
  return reply.send({ ended: ended.length })
}

/** POST /account/password — `current`, `password`: changes it and signs out every other session. */
export async function password(request: FastifyRequest, reply: FastifyReply) {
  const user = currentUser(request)
  const form = body(request)
  if (!user.account) return reply.code(403).send({ error: 'Forbidden', message: 'Guests have no password: register your name first.' })
  const result = await request.server.accounts.changePassword(user.id, form.current, form.password)
  if (!result.ok) return refuse(request, reply, result, () => accountPage(request, reply, result.message))
  const ended = await request.server.chatroom.sessions.endAccount(user.id, request.sessionHash ?? undefined)
  for (const hash of ended) request.server.chatroom.revoke(hash)
  if (wantsHtml(request)) return reply.redirect(`/account?done=password${fromQuery(request, '&')}`, 303)
  return reply.send({ ok: true, ended: ended.length })
}

/** "Firefox on Linux" from a User-Agent, for the list (the raw string is in the JSON). */
export function deviceName(userAgent: string): string {
  if (!userAgent) return 'Unknown device'
  const browser = /Edg\//.test(userAgent) ? 'Edge' : /Firefox\//.test(userAgent) ? 'Firefox' : /Chrom(e|ium)\//.test(userAgent) ? 'Chrome' : /Safari\//.test(userAgent) ? 'Safari' : /curl\//.test(userAgent) ? 'curl' : 'A browser'
  const system = /Android/.test(userAgent) ? 'Android' : /iPhone|iPad/.test(userAgent) ? 'iOS' : /Windows/.test(userAgent) ? 'Windows' : /Mac OS X/.test(userAgent) ? 'macOS' : /Linux/.test(userAgent) ? 'Linux' : ''
  return system ? `${browser} on ${system}` : browser
}
