import cookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import type { Config } from '../../conf/config.js'
import { avatarUrl } from '../avatars.js'
import { nameSchema, type SignedInUser, type User } from '../identity.js'

export const SESSION_COOKIE = 'chat_session'

// What the signed cookie carries: the user, and when they signed in (for expiry).
const payloadSchema = z.object({
  name: nameSchema,
  emailHash: z.string().regex(/^[0-9a-f]{32}$/).optional(),
  issuedAt: z.number().int(),
})

/**
 * Who may call a route: 'page' sends strangers to the welcome page, 'api' answers 401
 * (before any WebSocket upgrade). Routes without it are public.
 */
export type Auth = 'page' | 'api'

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: Auth
  }
  interface FastifyRequest {
    /** The signed-in user, or null: from the signed session cookie only. */
    user: SignedInUser | null
  }
  interface FastifyReply {
    signIn(user: User): FastifyReply
    signOut(): FastifyReply
  }
}

/** Signed, HttpOnly, SameSite=Lax session cookie. A tampered or expired one reads as signed out. */
export default fp(
  async function session(app, opts: { config: Config }) {
    const maxAge = opts.config.SESSION_MAX_AGE
    await app.register(cookie, { secret: opts.config.SESSION_SECRET })

    app.decorateRequest('user', null)
    const { AVATARS, SESSION_SECRET } = opts.config
    app.addHook('onRequest', async (request) => {
      const user = readSession(request, maxAge)
      // The avatar (an HMAC) is made only if this request reads it: most never do.
      let avatar: string | undefined
      request.user = user && {
        ...user,
        get avatar() {
          return (avatar ??= avatarUrl(user, AVATARS, SESSION_SECRET))
        },
      }
    })
    app.addHook('preValidation', async (request, reply) => {
      const auth = request.routeOptions.config.auth
      if (!auth || request.user) return
      if (auth === 'page') return reply.redirect('/', 303)
      return reply.code(401).send({ error: 'Unauthorized', message: 'Sign in first: POST /signin with user and transport.' })
    })

    app.decorateReply('signIn', function (this: FastifyReply, user: User) {
      const payload = { ...user, issuedAt: Math.floor(Date.now() / 1000) }
      return this.setCookie(SESSION_COOKIE, Buffer.from(JSON.stringify(payload)).toString('base64url'), {
        signed: true,
        httpOnly: true,
        sameSite: 'lax',
        secure: this.request.protocol === 'https',
        path: '/',
        maxAge,
      })
    })
    app.decorateReply('signOut', function (this: FastifyReply) {
      return this.clearCookie(SESSION_COOKIE, { path: '/' })
    })
  },
  { name: 'session' },
)

/** The signed-in user of a route that has auth set (the guard has run). */
export function currentUser(request: FastifyRequest): SignedInUser {
  if (!request.user) throw new Error(`${request.url} needs auth set in conf/routes.ts`)
  return request.user
}

function readSession(request: FastifyRequest, maxAge: number): User | null {
  const raw = request.cookies[SESSION_COOKIE]
  if (!raw) return null
  const unsigned = request.unsignCookie(raw)
  if (!unsigned.valid || unsigned.value === null) return null
  let json: unknown
  try {
    json = JSON.parse(Buffer.from(unsigned.value, 'base64url').toString('utf8'))
  } catch {
    return null
  }
  const parsed = payloadSchema.safeParse(json)
  if (!parsed.success) return null
  const { issuedAt, ...user } = parsed.data
  if (issuedAt + maxAge < Date.now() / 1000) return null
  return user.emailHash === undefined ? { name: user.name } : user
}
