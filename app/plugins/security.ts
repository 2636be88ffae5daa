import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyRequest } from 'fastify'
import helmet from 'helmet'
import fp from 'fastify-plugin'
import type { Config } from '../../conf/config.js'
import { providerDefinitions } from './oauth.js'

const unsafeMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Helmet's headers a browser obeys only on a page it renders (a document): not sent with JSON or an event stream. */
const documentOnly = new Set([
  'content-security-policy',
  'cross-origin-opener-policy',
  'origin-agent-cluster',
  'referrer-policy',
  'x-dns-prefetch-control',
  'x-download-options',
  'x-frame-options',
  'x-permitted-cross-domain-policies',
  'x-xss-protection',
])

const CROSS_ORIGIN_REFUSED =
  'Cross-origin request refused: it came from another site, and only this chat\'s own pages can enter the room or act in it. Open the chat from its own address.'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A GET with a side effect: checked like a POST (see conf/routes.ts). */
    sameOrigin?: boolean
  }
}

/**
 * A request that changes state, enters the room (a room page, the socket, the stream, a poll)
 * must come from our own pages (or an allowed origin): another site's page must not put its
 * visitor in the room. Browsers send Origin or Sec-Fetch-Site on those (a navigation only the
 * latter); tools like curl send neither and carry no ambient cookies, so they pass.
 */
export function crossOrigin(request: FastifyRequest, allowed: ReadonlySet<string>): boolean {
  const origin = request.headers.origin
  if (origin !== undefined && origin !== 'null') {
    return origin !== `${request.protocol}://${request.host}` && !allowed.has(origin)
  }
  const site = request.headers['sec-fetch-site']
  if (site !== undefined) return site === 'cross-site' || site === 'same-site'
  // An opaque origin (sandboxed frame, data: URL) with nothing else to go on.
  return origin === 'null'
}

/** The headers helmet sets with these options, worked out once: its middleware run over a stand-in response. */
function securityHeaders(options: Parameters<typeof helmet>[0]): [string, string][] {
  const headers: [string, string][] = []
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers.push([name, String(value)])
    },
    removeHeader() {},
  }
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, () => {})
  return headers
}

/** Security headers and a strict CSP the pages work under (no inline script), and origin checks. */
export default fp(
  async function security(app, opts: { config: Config }) {
    const { config } = opts
    const imgSrc = ["'self'", ...(config.AVATARS === 'gravatar' ? ['https://www.gravatar.com'] : [])]
    // Chromium applies form-action to the redirect after the OAuth button's form too.
    const providers = providerDefinitions(config).flatMap((p) => (p.auth.authorizeHost ? [new URL(p.auth.authorizeHost).origin] : []))
    const headers = securityHeaders({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc,
          connectSrc: ["'self'"],
          formAction: ["'self'", ...providers],
          frameAncestors: ["'none'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
        },
      },
      crossOriginResourcePolicy: { policy: 'same-origin' },
      // no-referrer would make browsers send "Origin: null" on our own form posts.
      referrerPolicy: { policy: 'same-origin' },
    })
    // Set from two lists made at start (not per request): what protects any response on every
    // one, and what only a document obeys (its CSP, framing, referrer…) on all but JSON and event
    // streams, which a browser never runs as a page: a long poll's answer carries 3 headers, not 12.
    const everywhere = headers.filter(([name]) => !documentOnly.has(name.toLowerCase()))
    const forDocuments = headers.filter(([name]) => documentOnly.has(name.toLowerCase()))
    app.addHook('onSend', (_request, reply, payload, done) => {
      const type = reply.getHeader('content-type')
      if (typeof type !== 'string' || !(type.startsWith('application/json') || type.startsWith('text/event-stream'))) {
        for (const [name, value] of forDocuments) reply.raw.setHeader(name, value)
      }
      done(null, payload)
    })

    const allowed = new Set(config.ALLOWED_ORIGINS.map((o) => new URL(o).origin))
    // One hook, not a promise per request: the headers, then the origin check.
    app.addHook('onRequest', (request, reply, done) => {
      for (const [name, value] of everywhere) reply.raw.setHeader(name, value)
      const upgrade = request.headers.upgrade?.toLowerCase() === 'websocket'
      if (!upgrade && !unsafeMethods.has(request.method) && !request.routeOptions.config.sameOrigin) return done()
      if (!crossOrigin(request, allowed)) return done()
      request.log.warn({ origin: request.headers.origin, site: request.headers['sec-fetch-site'], url: request.url }, 'cross-origin request refused')
      // Through the error handler: a browser gets a page saying why, a program JSON.
      done(Object.assign(new Error(CROSS_ORIGIN_REFUSED), { statusCode: 403 }))
    })
  },
  { name: 'security' },
)
