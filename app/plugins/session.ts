import { createHash, randomBytes } from 'node:crypto'
import type { Removal } from '../chatroom/subscription.js'
import cookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import type { Config } from '../../conf/config.js'
import { avatarUrl } from '../avatars.js'
import { nameSchema, skeleton, type SignedInUser, type User } from '../identity.js'

export const SESSION_COOKIE = 'chat_session'

/** What a session keeps about its user (validated again when read back). */
const userSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/),
  name: nameSchema,
  emailHash: z.string().regex(/^[0-9a-f]{32}$/).optional(),
  provider: z.object({ name: z.string().min(1).max(40), id: z.string().min(1).max(200) }).optional(),
  account: z.literal(true).optional(),
})

/** How long this process trusts a session it has read before asking the store again. */
const CACHE_MS = 5000
/**
 * When the store does not answer a session's re-read in time (overloaded, failing over), a session
 * this process read at most this long ago goes on as read (a sign-out anywhere still ends it at
 * once, by the bus); one not read here so lately is refused 503.
 */
const STALE_MS = 60_000
/** A session ended here or on another process is remembered this long: no read under way (BACKEND_TIMEOUT ≤ 60 s) and no stale copy (STALE_MS) signs anyone in with it. */
const ENDED_MS = STALE_MS + 2 * 60_000
/** A failed write of a session's last use is tried again after this long (not at every request of an overloaded store). */
const TOUCH_RETRY_MS = 10_000
/**
 * A session's last-use time is written at most this often, and at most every tenth of
 * SESSION_IDLE: the stored time is then never older than the last use by more than that.
 */
const TOUCH_MS = 60_000
/** Expired sessions are deleted this often at most (and at least every half SESSION_IDLE). */
const SWEEP_MS = 10 * 60_000

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
    /** The signed-in user, or null: from the server-side session the cookie names, only. */
    user: SignedInUser | null
    /** The hash of this request's session id, when it has a valid one. */
    sessionHash: string | null
  }
  interface FastifyReply {
    /** A new session for the user (a new id: any session this request had is ended); sets the cookie. */
    signIn(user: User): Promise<void>
    /** Ends the session at once, on every process; clears the cookie. */
    signOut(): Promise<void>
  }
  interface FastifyInstance {
    /** The open sockets of each session (by hash): closed with 4401 when it is signed out anywhere. */
    sessionSockets: Map<string, Set<{ close(code: number, reason: string): void }>>
  }
}

const hashOf = (id: string) => createHash('sha256').update(id).digest('base64url')

interface Cached {
  user: User | null
  checkedAt: number
  /** When it was made: past SESSION_MAX_AGE it ends, a stale copy too. */
  createdAt: number
  /** The last use the store holds, as far as this process knows. */
  seenAt: number
  /** The last use on this process (or the store's, if newer): idle expiry is measured from it. */
  usedAt: number
}

/**
 * Server-side sessions: the cookie (signed, HttpOnly, SameSite=Lax) holds only a random id;
 * the store keeps the user under the id's hash. Sessions end on sign-out (at once, on every
 * process: the bus tells the others), after SESSION_IDLE seconds unused, and SESSION_MAX_AGE
 * seconds after sign-in; a new id is made at every sign-in. One address holds at most
 * SESSIONS_PER_ADDRESS sessions: past it, its least recently used one is signed out.
 */
export default fp(
  async function session(app, opts: { config: Config }) {
    const { AVATARS, SESSION_SECRET, SESSION_MAX_AGE, SESSION_IDLE, SESSIONS_PER_ADDRESS } = opts.config
    const maxAgeMs = SESSION_MAX_AGE * 1000
    const idleMs = SESSION_IDLE * 1000
    const touchMs = Math.min(TOUCH_MS, idleMs / 10)
    const sweepMs = Math.min(SWEEP_MS, idleMs / 2)
    await app.register(cookie, { secret: SESSION_SECRET })
    const sessions = app.chatroom.sessions
    const cache = new Map<string, Cached>()
    /** Signed cookie value -> its session's hash (null: a bad signature). */
    const hashes = new Map<string, string | null>()
    /** Each session user with their avatar (an HMAC, made once, when first read). */
    const avatars = new WeakMap<User, SignedInUser>()
    const withAvatar = (user: User): SignedInUser => {
      let signed = avatars.get(user)
      if (!signed) {
        let avatar: string | undefined
        signed = {
          ...user,
          get avatar() {
            return (avatar ??= avatarUrl(user, AVATARS, SESSION_SECRET))
          },
        }
        avatars.set(user, signed)
      }
      return signed
    }
    const sockets = new Map<string, Set<{ close(code: number, reason: string): void }>>()
    app.decorate('sessionSockets', sockets)
    app.chatroom.onRevoked = (hash) => {
      ending(hash)
      // Its open sockets close at once: signing out ends what the session opened.
      for (const socket of sockets.get(hash) ?? []) socket.close(4401, 'signed out')
      sockets.delete(hash)
    }

    /** Reads of the store under way, by hash: a session's requests at once (its tabs' polls, all answered by one event) share one. */
    const reading = new Map<string, Promise<Cached>>()
    /** Sessions ended in the last ENDED_MS, with when: a request that was waiting on a read of one, or would take a stale copy of it, is not signed in by it. */
    const ended = new Map<string, number>()
    function ending(hash: string): void {
      cache.delete(hash)
      reading.delete(hash)
      const now = Date.now()
      ended.delete(hash)
      ended.set(hash, now)
      // Oldest first: those past ENDED_MS go.
      for (const [old, at] of ended) {
        if (now - at <= ENDED_MS) break
        ended.delete(old)
      }
    }
    const endedLately = (hash: string) => {
      const at = ended.get(hash)
      return at !== undefined && Date.now() - at <= ENDED_MS
    }

    /** The session as the store has it now (expired ones are deleted there). */
    async function check(hash: string, now: number, before: Cached | undefined): Promise<Cached> {
      const record = await sessions.read(hash)
      const parsed = record && userSchema.safeParse(JSON.parse(record.user))
      const usedAt = Math.max(record?.seenAt ?? 0, before?.usedAt ?? 0)
      const alive = record && parsed?.success && record.createdAt + maxAgeMs > now && usedAt + idleMs > now
      // Deleted when it can be: a store that does not answer now leaves it to the sweep (it is ended here all the same).
      if (record && !alive) await sessions.delete(hash).catch((err: unknown) => app.log.warn({ err }, 'could not delete an ended session'))
      return { user: alive ? parsed.data : null, checkedAt: now, createdAt: record?.createdAt ?? 0, seenAt: record?.seenAt ?? 0, usedAt }
    }

    /** The session's user, from this process's cache or the store (one read at a time per session). */
    async function lookup(hash: string): Promise<User | null> {
      const now = Date.now()
      let entry = cache.get(hash)
      if (!entry || now - entry.checkedAt > CACHE_MS) {
        const before = entry
        let read = reading.get(hash)
        if (!read) {
          const started: Promise<Cached> = check(hash, now, entry)
            .then((checked) => {
              // Not kept if the session was ended while it was read (signed out meanwhile: the next request reads again).
              if (reading.get(hash) === started) {
                if (cache.size > 50_000) cache.clear()
                cache.set(hash, checked)
              }
              return checked
            })
            .finally(() => {
              if (reading.get(hash) === started) reading.delete(hash)
            })
          read = started
          reading.set(hash, read)
        }
        try {
          entry = await read
        } catch (error) {
          if (!before?.user || now - before.checkedAt > STALE_MS || before.createdAt + maxAgeMs <= now || endedLately(hash)) throw error
          entry = before
        }
        // Signed out (here, or on another process) while it was read.
        if (endedLately(hash)) return null
      }
      if (entry.user) {
        entry.usedAt = now
        if (now - entry.seenAt > touchMs) {
          const seen = entry.seenAt
          entry.seenAt = now
          // Its last use, for the idle expiry: a store that does not answer now is told at a later request (this one goes on).
          try {
            await sessions.touch(hash, now)
          } catch (err) {
            entry.seenAt = Math.max(seen, now - touchMs + TOUCH_RETRY_MS)
            app.log.warn({ err }, 'could not record a session as used')
          }
        }
      }
      return entry.user
    }

    app.decorateRequest('user', null)
    app.decorateRequest('sessionHash', null)
    /** The session's user when this process read it lately and recorded its use lately (null: no one); undefined: lookup() must. */
    function fresh(hash: string): User | null | undefined {
      const now = Date.now()
      const entry = cache.get(hash)
      if (!entry || now - entry.checkedAt > CACHE_MS) return undefined
      if (!entry.user) return null
      if (now - entry.seenAt > touchMs) return undefined
      entry.usedAt = now
      return entry.user
    }
    const signedIn = (request: FastifyRequest, hash: string, user: User) => {
      request.sessionHash = hash
      request.user = withAvatar(user)
    }
    // Callback style: most requests find their session cached and go on with no promise made.
    app.addHook('onRequest', (request, _reply, done) => {
      const raw = request.cookies[SESSION_COOKIE]
      if (!raw) return done()
      // A cookie's signature and hash are worked out once per cookie, not once per request.
      let hash = hashes.get(raw)
      if (hash === undefined) {
        const unsigned = request.unsignCookie(raw)
        hash = unsigned.valid && unsigned.value ? hashOf(unsigned.value) : null
        if (hashes.size >= 50_000) hashes.clear()
        hashes.set(raw, hash)
      }
      if (hash === null) return done()
      const known = fresh(hash)
      if (known !== undefined) {
        if (known) signedIn(request, hash, known)
        return done()
      }
      const of = hash
      lookup(of).then(
        (user) => {
          if (user) signedIn(request, of, user)
          done()
        },
        (err: unknown) => {
          request.log.error({ err }, 'could not read a session')
          done(Object.assign(new Error('Sessions cannot be read right now; try again shortly.'), { statusCode: 503 }))
        },
      )
    })
    // Callback style: no promise per request. A reply sent here ends the request (done is not called).
    app.addHook('preValidation', (request, reply, done) => {
      const auth = request.routeOptions.config.auth
      if (!auth || request.user) return done()
      if (auth === 'page') reply.redirect('/', 303)
      else reply.code(401).send({ error: 'Unauthorized', message: 'Sign in first: POST /signin with user and transport.' })
    })

    const cookieOptions = (reply: FastifyReply) =>
      ({ signed: true, httpOnly: true, sameSite: 'lax', secure: reply.request.protocol === 'https', path: '/', maxAge: SESSION_MAX_AGE }) as const

    async function end(hash: string): Promise<void> {
      ending(hash)
      await sessions.delete(hash)
      app.chatroom.revoke(hash)
    }

    /**
     * Deletes sessions past their idle or absolute expiry. The stored last use may lag the real
     * one by touchMs: that much more slack, so a session in use is never swept.
     */
    let sweptAt = Date.now()
    async function sweep(): Promise<void> {
      const now = Date.now()
      sweptAt = now
      try {
        await sessions.prune(now - idleMs - touchMs, now - maxAgeMs)
      } catch (err) {
        app.log.warn({ err }, 'could not prune sessions')
      }
    }

    app.decorateReply('signIn', async function (this: FastifyReply, user: User) {
      // A suspended account signs in nowhere (every route of sign-in comes here): 403, saying who, until when and why.
      const suspended = user.account ? await app.chatroom.suspension(user.id) : undefined
      if (suspended) throw Object.assign(new Error(suspensionMessage(suspended)), { statusCode: 403 })
      if (this.request.sessionHash) await end(this.request.sessionHash)
      const id = randomBytes(32).toString('base64url')
      const hash = hashOf(id)
      const now = Date.now()
      const address = this.request.ip ?? ''
      const userAgent = (this.request.headers['user-agent'] ?? '').slice(0, 256)
      const account = user.account ? user.id : ''
      await sessions.create(hash, { user: JSON.stringify(userSchema.parse(user)), createdAt: now, seenAt: now, address, account, userAgent })
      // Sessions no longer pile up with cookie-less sign-ins: the address's least recently used
      // ones beyond the bound are signed out (everywhere, their sockets closed), and sign-ins,
      // which are what add rows, also sweep the expired ones when due.
      if (SESSIONS_PER_ADDRESS > 0) {
        for (const trimmed of await sessions.trim(address, SESSIONS_PER_ADDRESS, hash)) {
          ending(trimmed)
          app.chatroom.revoke(trimmed)
        }
      }
      if (now - sweptAt >= sweepMs) await sweep()
      // Not returned: a reply is a thenable that settles only once sent.
      this.setCookie(SESSION_COOKIE, id, cookieOptions(this))
    })
    app.decorateReply('signOut', async function (this: FastifyReply) {
      if (this.request.sessionHash) await end(this.request.sessionHash)
      this.clearCookie(SESSION_COOKIE, { path: '/' })
    })

    const prune = setInterval(() => void sweep(), sweepMs)
    prune.unref()
    app.addHook('onClose', async () => clearInterval(prune))
  },
  { name: 'session', dependencies: ['chatroom'] },
)

/**
 * The user to sign in as, with their name claimed for them: the current session's id when it
 * is the same name (another tab, another transport: the same person) or a guest taking another
 * guest name (the same person renamed: a room's ban or mute of them still holds), else a new
 * random id. Undefined when someone else present holds the name (or a look-alike of it).
 */
export async function claimUser(request: FastifyRequest, candidate: Omit<User, 'id'>): Promise<User | undefined> {
  const current = request.user
  const same = current && (skeleton(current.name) === skeleton(candidate.name) || (!current.account && !candidate.account))
  const id = same ? current.id : randomBytes(16).toString('base64url')
  const user: User = { ...candidate, id }
  return (await request.server.chatroom.claimName(user)) ? user : undefined
}

/** A free variant of a taken name, judged by who is in the room now (the claim decides at sign-in). */
export function suggestName(request: FastifyRequest, name: string): string {
  const taken = new Set(request.server.chatroom.presentNames().map(skeleton))
  const base = Array.from(name).slice(0, 29).join('')
  for (let n = 2; n < 1000; n++) if (!taken.has(skeleton(`${base}${n}`))) return `${base}${n}`
  return `${base}_${randomBytes(2).toString('hex')}`
}

/**
 * Ends `connection` (closes the socket, ends the stream, answers the poll) when the request's
 * session is signed out, on this process or another; returns how to let go of it.
 */
export function bindToSession(request: FastifyRequest, connection: { close(code: number, reason: string): void }): () => void {
  const hash = request.sessionHash
  if (!hash) return () => {}
  const { sessionSockets } = request.server
  const mine = sessionSockets.get(hash) ?? new Set()
  sessionSockets.set(hash, mine.add(connection))
  return () => {
    mine.delete(connection)
    if (mine.size === 0 && sessionSockets.get(hash) === mine) sessionSockets.delete(hash)
  }
}

/** The signed-in user of a route that has auth set (the guard has run). */
export function currentUser(request: FastifyRequest): SignedInUser {
  if (!request.user) throw new Error(`${request.url} needs auth set in conf/routes.ts`)
  return request.user
}

/** A suspension in words, for the person it stops. */
export function suspensionMessage(suspension: Removal): string {
  const until = suspension.until === undefined ? '' : ` until ${new Date(suspension.until).toISOString().slice(0, 16).replace('T', ' ')} UTC`
  return `This account is suspended${until} by ${suspension.by}${suspension.reason ? `: ${suspension.reason}` : '.'}`
}
