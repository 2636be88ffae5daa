import { OAuth2Server } from 'oauth2-mock-server'
import t from 'tap'
import { freePort } from './redis.js'
import { loadConfig } from '../conf/config.js'
import { buildTestApp } from './helpers.js'

/** A browser's worth of cookies and manual redirects. */
class Browser {
  private jar = new Map<string, string>()
  async get(url: string): Promise<Response> {
    return this.request(url)
  }
  /** A JSON POST, as a page's script sends it. */
  post(url: string, body: unknown): Promise<Response> {
    return this.request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } })
  }
  private async request(url: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const cookie = [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, ...(cookie ? { cookie } : {}) } })
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';')
      const eq = pair!.indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      if (value === '' || /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(line)) this.jar.delete(name)
      else this.jar.set(name, value)
    }
    return res
  }
  has(name: string) {
    return this.jar.has(name)
  }
}

/** The app on a port known in advance, so PUBLIC_URL (where OAuth callbacks go) is its address. */
async function serveAt(t: Parameters<typeof buildTestApp>[0], env: Record<string, string>) {
  const port = await freePort()
  const app = await buildTestApp(t, { ...env, PUBLIC_URL: `http://127.0.0.1:${port}` })
  return { app, base: await app.listen({ host: '127.0.0.1', port }) }
}

async function mockProvider(t: Parameters<typeof buildTestApp>[0]) {
  const server = new OAuth2Server()
  await server.issuer.keys.generate('RS256')
  await server.start(0, '127.0.0.1')
  t.teardown(() => server.stop())
  const issuer = server.issuer.url!
  const env = {
    OAUTH_LABEL: 'Mock',
    OAUTH_CLIENT_ID: 'chat-client',
    OAUTH_CLIENT_SECRET: 'chat-client-secret',
    OAUTH_AUTHORIZE_URL: `${issuer}/authorize`,
    OAUTH_TOKEN_URL: `${issuer}/token`,
    OAUTH_PROFILE_URL: `${issuer}/userinfo`,
    OAUTH_NAME_FIELD: 'name',
  }
  return { server, env }
}

t.test('sign in through a real OAuth2 server, then every transport trusts the name', async (t) => {
  const { server, env } = await mockProvider(t)
  server.service.on('beforeUserinfo', (res) => {
    res.body = { sub: 'jane-1', name: '  Jane <Doe>\u202E ' }
  })
  const { app, base } = await serveAt(t, env)

  const welcome = await app.inject({ method: 'GET', url: '/' })
  t.match(welcome.body, /formaction="\/signin\/oauth\/oauth"[^>]*>Sign in with Mock</)

  const browser = new Browser()
  const start = await browser.get(`${base}/signin/oauth/oauth?transport=longpolling&user=ignored`)
  t.equal(start.status, 302)
  const authorize = new URL(start.headers.get('location')!)
  t.equal(authorize.origin + authorize.pathname, env.OAUTH_AUTHORIZE_URL)
  const state = authorize.searchParams.get('state')!
  t.match(state, /^[A-Za-z0-9_-]{16,}$/, 'a random state goes with the request')
  t.equal(authorize.searchParams.get('redirect_uri'), `${base}/signin/oauth/oauth/callback`)

  const back = await browser.get(authorize.href)
  const callback = new URL(back.headers.get('location')!)
  t.equal(callback.searchParams.get('state'), state, 'the provider hands the state back')
  const done = await browser.get(callback.href)
  t.equal(done.status, 200)
  const next = await done.text()
  t.match(next, /<meta http-equiv="refresh" content="0; url=\/longpolling\/room">/, 'on into the transport picked before leaving, from a page of ours')
  t.match(next, /<a href="\/longpolling\/room">Enter the room<\/a>/)
  t.ok(browser.has('chat_session'), 'signed in')

  const page = await browser.get(`${base}/longpolling/room`)
  t.match(await page.text(), /class="whoami"[^>]*>Jane &lt;Doe&gt;<\/span>/, 'the profile name, cleaned and escaped')
  const said = await browser.get(`${base}/longpolling/room/messages`)
  t.match(await said.json(), [{ type: 'join', user: 'Jane <Doe>', via: 'Mock' }], 'marked as signed in through the provider')
  const posted = await browser.post(`${base}/longpolling/room/messages`, { text: 'hello' })
  t.match(await posted.json(), { user: 'Jane <Doe>', via: 'Mock', text: 'hello' })
  const refresh = await browser.get(`${base}/refresh/room`)
  t.match(await refresh.text(), /<span class="via" title="Signed in with Mock">Mock<\/span>/, 'the mark shows on the page')
})

t.test('a forged or missing state is refused and nobody is signed in', async (t) => {
  const { env } = await mockProvider(t)
  const { app, base } = await serveAt(t, env)

  const browser = new Browser()
  const start = await browser.get(`${base}/signin/oauth/oauth?transport=websocket`)
  const back = await browser.get(start.headers.get('location')!)
  const callback = new URL(back.headers.get('location')!)
  callback.searchParams.set('state', 'forged-state-forged-state')
  const forged = await browser.get(callback.href)
  t.equal(forged.status, 303)
  t.equal(forged.headers.get('location'), '/?signin=failed')
  t.notOk(browser.has('chat_session'))

  // An attacker's link, in a browser that never started a sign-in.
  const victim = new Browser()
  const csrf = await victim.get(`${base}/signin/oauth/oauth/callback?code=abc&state=abc`)
  t.equal(csrf.headers.get('location'), '/?signin=failed')
  t.notOk(victim.has('chat_session'))

  const page = await app.inject({ method: 'GET', url: '/?signin=failed' })
  t.match(page.body, /class="flash error"[^>]*>Sign-in did not work out/)
})

t.test('a cancelled sign-in returns to the welcome page with a message', async (t) => {
  const { env } = await mockProvider(t)
  const app = await buildTestApp(t, { ...env, PUBLIC_URL: 'http://127.0.0.1:9' })
  const res = await app.inject({ method: 'GET', url: '/signin/oauth/oauth/callback?error=access_denied&state=x' })
  t.equal(res.statusCode, 303)
  t.equal(res.headers.location, '/?signin=cancelled')
  const page = await app.inject({ method: 'GET', url: res.headers.location })
  t.match(page.body, /Sign-in was cancelled/)
  const odd = await app.inject({ method: 'GET', url: '/?signin=<script>' })
  t.notMatch(odd.body, /flash error/, 'unknown codes show nothing, and nothing is echoed')
})

t.test('a profile without a usable name is refused', async (t) => {
  const { server, env } = await mockProvider(t)
  server.service.on('beforeUserinfo', (res) => {
    res.body = { sub: 'x', name: '\u0007\u200B' }
  })
  const { base } = await serveAt(t, env)
  const browser = new Browser()
  const start = await browser.get(`${base}/signin/oauth/oauth`)
  const back = await browser.get(start.headers.get('location')!)
  const done = await browser.get(back.headers.get('location')!)
  t.equal(done.headers.get('location'), '/?signin=noname')
  t.notOk(browser.has('chat_session'))
})

t.test('Facebook appears when FB_CLIENT_ID and FB_CLIENT_SECRET are set', async (t) => {
  const plain = await buildTestApp(t)
  t.notMatch((await plain.inject({ method: 'GET', url: '/' })).body, /Sign in with/)
  const app = await buildTestApp(t, { FB_CLIENT_ID: '123', FB_CLIENT_SECRET: 'fb-secret', PUBLIC_URL: 'https://chat.example' })
  t.match((await app.inject({ method: 'GET', url: '/' })).body, /Sign in with Facebook/)
  const start = await app.inject({ method: 'GET', url: '/signin/oauth/facebook?transport=refresh' })
  t.equal(start.statusCode, 302)
  const location = new URL(start.headers.location as string)
  t.equal(location.origin, 'https://facebook.com')
  t.equal(location.searchParams.get('client_id'), '123')
  t.ok(location.searchParams.get('state'))
  const unknown = await app.inject({ method: 'GET', url: '/signin/oauth/myspace' })
  t.equal(unknown.statusCode, 404)
})

t.test('OAuth settings are all or nothing', async (t) => {
  t.throws(() => loadConfig({ FB_CLIENT_ID: '1' }), /Invalid FB_CLIENT_SECRET/)
  t.throws(() => loadConfig({ OAUTH_CLIENT_ID: 'x', OAUTH_CLIENT_SECRET: 'y' }), /Invalid OAUTH_AUTHORIZE_URL: is needed with OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET/)
  t.throws(() => loadConfig({ OAUTH_AUTHORIZE_URL: 'ftp://x' }), /Invalid OAUTH_AUTHORIZE_URL="ftp:\/\/x": must be an http\(s\) URL/)
})

t.test('the OAuth callback comes from PUBLIC_URL, never from Host; without PUBLIC_URL OAuth is off, said at start', async (t) => {
  const { env } = await mockProvider(t)
  const app = await buildTestApp(t, { ...env, PUBLIC_URL: 'https://chat.example' })
  const start = await app.inject({ method: 'GET', url: '/signin/oauth/oauth?transport=refresh', headers: { host: 'evil.example' } })
  t.equal(start.statusCode, 302)
  const redirect = new URL(new URL(start.headers.location as string).searchParams.get('redirect_uri')!)
  t.equal(redirect.href, 'https://chat.example/signin/oauth/oauth/callback', 'the configured address, whatever Host says')

  const lines: string[] = []
  const off = await buildTestApp(t, env, { logger: { level: 'warn', stream: { write: (line: string) => void lines.push(line) } } })
  t.notMatch((await off.inject({ method: 'GET', url: '/' })).body, /Sign in with/, 'no OAuth button')
  t.equal((await off.inject({ method: 'GET', url: '/signin/oauth/oauth' })).statusCode, 404)
  t.match(lines.join(''), /OAuth sign-in is off: set PUBLIC_URL/, 'one line at start says why')
})
