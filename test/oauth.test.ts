import { OAuth2Server } from 'oauth2-mock-server'
import t from 'tap'
import { freePort } from './redis.js'
import type { FastifyInstance } from 'fastify'
import { loadConfig } from '../conf/config.js'
import { skeleton } from '../app/identity.js'
import { buildTestApp, signIn } from './helpers.js'

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

/** What the mock provider answers for the next profile read: change it between sign-ins. */
type Profile = { sub: string; name: string }

/** A mock provider whose profile is whatever `profile.current` is when asked. */
async function profileProvider(t: Parameters<typeof buildTestApp>[0], first: Profile) {
  const { server, env } = await mockProvider(t)
  const profile = { current: first }
  server.service.on('beforeUserinfo', (res) => {
    res.body = { ...profile.current }
  })
  const { app, base } = await serveAt(t, env)
  return { app, base, profile, link: app.oauthProviders.get('oauth')!.linkKey }
}

/** The whole round trip through the provider in this browser; answers the callback's response. */
async function oauthSignIn(browser: Browser, base: string, transport = 'longpolling'): Promise<Response> {
  const start = await browser.get(`${base}/signin/oauth/oauth?transport=${transport}`)
  const back = await browser.get(start.headers.get('location')!)
  return browser.get(back.headers.get('location')!)
}

/** The name the room's page says this browser is signed in as. */
async function whoami(browser: Browser, base: string): Promise<string | undefined> {
  const page = await (await browser.get(`${base}/longpolling/room`)).text()
  return /class="whoami"[^>]*>([^<]*)<\/span>/.exec(page)?.[1]
}

/** The account that holds this name or a look-alike of it. */
async function accountNamed(app: FastifyInstance, name: string) {
  return app.chatroom.accounts.bySkeleton(skeleton(name))
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
  // (The passkey sign-in's status line is an empty flash until it has something to say.)
  t.notMatch(odd.body, /class="flash error"[^>]*>[^<]/, 'unknown codes show nothing, and nothing is echoed')
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
  t.notMatch((await plain.inject({ method: 'GET', url: '/' })).body, /formaction="\/signin\/oauth\//, 'no provider button')
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
  t.notMatch((await off.inject({ method: 'GET', url: '/' })).body, /formaction="\/signin\/oauth\//, 'no OAuth button')
  t.equal((await off.inject({ method: 'GET', url: '/signin/oauth/oauth' })).statusCode, 404)
  t.match(lines.join(''), /OAuth sign-in is off: set PUBLIC_URL/, 'one line at start says why')
})

t.test('the first OAuth sign-in makes an account (no password) and links it; later ones land in it, whatever the profile is called now', async (t) => {
  const { app, base, profile, link } = await profileProvider(t, { sub: 'jane-1', name: 'Jane' })
  const laptop = new Browser()
  t.equal((await oauthSignIn(laptop, base)).status, 200)
  t.ok(laptop.has('chat_device'), 'the device is remembered for the account')
  const jane = await accountNamed(app, 'Jane')
  t.ok(jane, 'an account holds the name')
  t.equal(jane!.name, 'Jane')
  t.equal(jane!.passwordHash, null, 'with no password: it signs in through the provider')
  t.equal(await app.chatroom.accounts.linked(link, 'jane-1'), jane!.id, 'linked to the provider user')
  t.equal(await whoami(laptop, base), 'Jane')
  t.match(await (await laptop.get(`${base}/longpolling/room/messages`)).json(), [{ type: 'join', user: 'Jane', via: 'Mock' }], 'still marked as through the provider')

  // Another device, while the laptop is in the room, after a rename at the provider.
  profile.current = { sub: 'jane-1', name: 'Janet Q.' }
  const phone = new Browser()
  t.equal((await oauthSignIn(phone, base)).status, 200, 'the account holding its own name on another device is no obstacle')
  t.equal(await whoami(phone, base), 'Jane', "the account's name, not the profile's")
  t.equal(await accountNamed(app, 'Janet Q.'), undefined, 'no second account')
  t.equal((await app.chatroom.sessions.list(jane!.id)).length, 2, 'both devices are sessions of the one account')
  const posted = await phone.post(`${base}/longpolling/room/messages`, { text: 'from the phone' })
  t.match(await posted.json(), { user: 'Jane', via: 'Mock', text: 'from the phone' })
})

t.test('a profile named like a registered account gets a free variant, never that account', async (t) => {
  const { app, base, profile } = await profileProvider(t, { sub: 'mallory-1', name: 'alice' })
  const registered = await app.inject({ method: 'POST', url: '/accounts', payload: { name: 'alice', password: 'correct horse battery' } })
  t.equal(registered.statusCode, 201)
  const alice = registered.json<{ id: string }>()

  const mallory = new Browser()
  t.equal((await oauthSignIn(mallory, base)).status, 200)
  t.equal(await whoami(mallory, base), 'alice2', 'a numbered variant')
  const variant = await accountNamed(app, 'alice2')
  t.not(variant!.id, alice.id, 'its own account')
  t.equal((await app.chatroom.sessions.list(alice.id)).length, 1, "alice's sessions are only her own")
  t.equal((await app.chatroom.accounts.byId(alice.id))!.name, 'alice', "alice's account is untouched")

  // A look-alike, while alice2 is not in the room: the accounts store says it is taken too.
  profile.current = { sub: 'mallory-2', name: 'ALICE' }
  const again = new Browser()
  await oauthSignIn(again, base)
  t.equal(await whoami(again, base), 'ALICE3', 'past every registered look-alike')

  // Someone present (a guest) holds a name: the new account does not get it either.
  await signIn(app, 'bob')
  profile.current = { sub: 'bob-1', name: 'Bob' }
  const other = new Browser()
  await oauthSignIn(other, base)
  t.equal(await whoami(other, base), 'Bob2', 'a name someone in the room goes by is left to them')
  t.equal(await accountNamed(app, 'bob'), undefined)

  // Unless it is the guest who holds it: as with a password registration, they keep it.
  const kim = new Browser()
  t.equal((await kim.post(`${base}/signin`, { user: 'Kim', transport: 'longpolling' })).status, 303)
  t.equal(await whoami(kim, base), 'Kim')
  profile.current = { sub: 'kim-1', name: 'Kim' }
  await oauthSignIn(kim, base)
  t.equal(await whoami(kim, base), 'Kim', 'the guest who holds the name keeps it')
  t.equal((await accountNamed(app, 'Kim'))?.passwordHash, null, 'as an account now')
})

t.test('a signed-in password account that goes through OAuth is linked, and the provider then signs in to it', async (t) => {
  const { app, base, link } = await profileProvider(t, { sub: 'carol-gh', name: 'Caroline' })
  const desktop = new Browser()
  const made = await desktop.post(`${base}/accounts`, { name: 'carol', password: 'a long password here' })
  t.equal(made.status, 201)
  const carol = (await made.json()) as { id: string }
  t.equal((await oauthSignIn(desktop, base)).status, 200)
  t.equal(await app.chatroom.accounts.linked(link, 'carol-gh'), carol.id, 'the provider user is linked to the account signed in')
  t.equal(await whoami(desktop, base), 'carol', 'still carol')
  t.equal(await accountNamed(app, 'Caroline'), undefined, 'no account made from the profile')
  t.equal((await app.chatroom.accounts.byId(carol.id))!.passwordHash?.startsWith('$'), true, 'the password stays')

  const laptop = new Browser()
  await oauthSignIn(laptop, base)
  t.equal(await whoami(laptop, base), 'carol', 'a new device signs in to carol through the provider')
  t.equal((await app.chatroom.sessions.list(carol.id)).length, 2)
  const posted = await laptop.post(`${base}/longpolling/room/messages`, { text: 'linked' })
  t.match(await posted.json(), { user: 'carol', via: 'Mock' })

  // Another account signed in cannot take the link over: the provider user stays carol's.
  const dave = new Browser()
  t.equal((await dave.post(`${base}/accounts`, { name: 'dave', password: 'another long password' })).status, 201)
  await oauthSignIn(dave, base)
  t.equal(await app.chatroom.accounts.linked(link, 'carol-gh'), carol.id, 'still linked to carol')
  t.equal(await whoami(dave, base), 'carol', 'the provider user signs in to their own account')

  const password = await app.inject({ method: 'POST', url: '/signin', payload: { user: 'carol', password: 'a long password here', transport: 'auto' } })
  t.equal(password.statusCode, 303, 'and the password signs in as before')
})

t.test("guests cannot take an OAuth account's name, even when its owner is away", async (t) => {
  const { app, base } = await profileProvider(t, { sub: 'zoe-1', name: 'Zoë' })
  const browser = new Browser()
  await oauthSignIn(browser, base)
  t.equal((await browser.post(`${base}/signout`, {})).status, 303, 'the owner signs out')
  for (const name of ['Zoë', 'zoe', 'ZOE']) {
    const guest = await app.inject({ method: 'POST', url: '/signin', payload: { user: name, transport: 'auto' } })
    t.equal(guest.statusCode, 409, `"${name}" is refused to a guest`)
    t.match(guest.json().message, /registered name/)
  }
  const back = new Browser()
  await oauthSignIn(back, base)
  t.equal(await whoami(back, base), 'Zoë', 'the owner comes back to it through the provider')
})
