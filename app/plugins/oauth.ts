import type { OAuth2Namespace, ProviderConfiguration } from '@fastify/oauth2'
import fp from 'fastify-plugin'
import type { Config } from '../../conf/config.js'

export interface OAuthProvider {
  id: string
  /** Shown as "Sign in with LABEL". */
  label: string
  /**
   * Whose user ids these are, for account links: the provider, not the button, so a relabelled
   * button keeps its links and pointing OAUTH_* at another provider never reuses them.
   */
  linkKey: string
  client: OAuth2Namespace
  /** Answers the signed-in user's profile for a Bearer token. */
  profileUrl: string
  /** The profile field that becomes the user's name. */
  nameField: string
}

declare module 'fastify' {
  interface FastifyInstance {
    oauthProviders: Map<string, OAuthProvider>
  }
}

interface ProviderDefinition {
  id: string
  label: string
  linkKey: string
  clientId: string
  clientSecret: string
  auth: ProviderConfiguration
  profileUrl: string
  nameField: string
  scope: string[]
}

/** Facebook's endpoints (as @fastify/oauth2's FACEBOOK_CONFIGURATION, which is not loaded unless OAuth is on). */
const FACEBOOK: ProviderConfiguration = {
  authorizeHost: 'https://facebook.com',
  authorizePath: '/v6.0/dialog/oauth',
  tokenHost: 'https://graph.facebook.com',
  tokenPath: '/v6.0/oauth/access_token',
}

function hostAndPath(url: string) {
  const parsed = new URL(url)
  return { host: parsed.origin, path: parsed.pathname + parsed.search }
}

/** The providers the configuration turns on: Facebook (seed 002), and any one OAuth2 provider by URL. */
export function providerDefinitions(config: Config): ProviderDefinition[] {
  const out: ProviderDefinition[] = []
  if (config.FB_CLIENT_ID && config.FB_CLIENT_SECRET) {
    out.push({
      id: 'facebook',
      label: 'Facebook',
      linkKey: 'facebook',
      clientId: config.FB_CLIENT_ID,
      clientSecret: config.FB_CLIENT_SECRET,
      auth: FACEBOOK,
      profileUrl: 'https://graph.facebook.com/v6.0/me?fields=name',
      nameField: 'name',
      scope: ['public_profile'],
    })
  }
  const { OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET, OAUTH_AUTHORIZE_URL, OAUTH_TOKEN_URL, OAUTH_PROFILE_URL } = config
  if (OAUTH_CLIENT_ID && OAUTH_CLIENT_SECRET && OAUTH_AUTHORIZE_URL && OAUTH_TOKEN_URL && OAUTH_PROFILE_URL) {
    const authorize = hostAndPath(OAUTH_AUTHORIZE_URL)
    const token = hostAndPath(OAUTH_TOKEN_URL)
    out.push({
      id: 'oauth',
      label: config.OAUTH_LABEL,
      // The host that answers the profile (and so the user's id) says whose ids they are.
      linkKey: `oauth:${new URL(OAUTH_PROFILE_URL).host}`,
      clientId: OAUTH_CLIENT_ID,
      clientSecret: OAUTH_CLIENT_SECRET,
      auth: { authorizeHost: authorize.host, authorizePath: authorize.path, tokenHost: token.host, tokenPath: token.path },
      profileUrl: OAUTH_PROFILE_URL,
      nameField: config.OAUTH_NAME_FIELD,
      scope: config.OAUTH_SCOPE.split(/\s+/).filter(Boolean),
    })
  }
  return out
}

/**
 * OAuth2 sign-in through @fastify/oauth2: a random state in a signed cookie, checked on the
 * way back. The provider's user is linked to an account (controllers/oauth.ts).
 */
export default fp(
  async function oauth(app, opts: { config: Config }) {
    const providers = new Map<string, OAuthProvider>()
    const definitions = providerDefinitions(opts.config)
    const publicUrl = opts.config.PUBLIC_URL?.replace(/\/+$/, '')
    if (definitions.length > 0 && !publicUrl) {
      app.log.warn(`OAuth sign-in is off: set PUBLIC_URL (the address people use) so callbacks never come from the Host header`)
    }
    // Loaded only when a provider is on: it is a sixth of the process's memory at start.
    const oauth2 = definitions.length > 0 && publicUrl ? (await import('@fastify/oauth2')).default : undefined
    for (const def of oauth2 ? definitions : []) {
      if (!oauth2) break
      const name = `oauth2${def.id[0]!.toUpperCase()}${def.id.slice(1)}` as const
      await app.register(oauth2, {
        name,
        scope: def.scope,
        credentials: { client: { id: def.clientId, secret: def.clientSecret }, auth: def.auth },
        callbackUri: `${publicUrl}/signin/oauth/${def.id}/callback`,
        redirectStateCookieName: 'chat_oauth_state',
        cookie: { signed: true, httpOnly: true, sameSite: 'lax', path: '/', maxAge: 600 },
        userAgent: false,
      })
      const client = app[name as `oauth2F${string}`]
      if (!client) throw new Error(`@fastify/oauth2 did not decorate ${name}`)
      providers.set(def.id, { id: def.id, label: def.label, linkKey: def.linkKey, client, profileUrl: def.profileUrl, nameField: def.nameField })
    }
    app.decorate('oauthProviders', providers)
  },
  { name: 'oauth', dependencies: ['session'] },
)
