import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { skeleton } from '../app/identity.js'
import { buildTestApp, eventually, signIn as guestSignIn, SocketClient } from './helpers.js'

// Accounts through the HTTP interface: a name that stays yours, on every device at once, the
// sessions you can see and end, and what an attacker gets from the sign-in form.

const cookieOf = (res: { cookies: { name: string; value: string }[] }) => {
  const c = res.cookies.find((c) => c.name === 'chat_session')
  return c && `chat_session=${c.value}`
}
const deviceOf = (res: { cookies: { name: string; value: string }[] }) => {
  const c = res.cookies.find((c) => c.name === 'chat_device')
  return c && `chat_device=${c.value}`
}

async function register(app: FastifyInstance, name: string, password: string, extra: Record<string, string> = {}, cookie?: string) {
  return app.inject({ method: 'POST', url: '/accounts', payload: { name, password, ...extra }, headers: cookie ? { cookie } : {} })
}

async function passwordSignIn(app: FastifyInstance, user: string, password: string, headers: Record<string, string> = {}) {
  return app.inject({ method: 'POST', url: '/signin', payload: { user, password, transport: 'websocket' }, headers: { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0', ...headers } })
}

t.test('an account is created, signed in, and its name is refused to others and to look-alikes', async (t) => {
  const app = await buildTestApp(t)
  const made = await register(app, 'alice', 'correct horse battery')
  t.equal(made.statusCode, 201, 'a program gets 201')
  t.match(made.json(), { id: String, name: 'alice' })
  t.ok(cookieOf(made), 'and is signed in')
  t.ok(deviceOf(made), 'this device is remembered for the account')

  for (const name of ['alice', 'ALICE', 'alice.', 'a·lice', 'аlice']) {
    const again = await register(app, name, 'another password')
    t.equal(again.statusCode, 409, `"${name}": 409`)
    t.match(again.json().message, /registered already/, 'the reason is "name taken", nothing more')
  }
  const guest = await app.inject({ method: 'POST', url: '/signin', payload: { user: 'Alice.', transport: 'websocket' } })
  t.equal(guest.statusCode, 409, 'a guest cannot take a registered name or a look-alike')
  t.match(guest.json().message, /registered name.*sign in with its password/)
  const page = await app.inject({ method: 'POST', url: '/signin', payload: { user: 'alice', transport: 'websocket' }, headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 303, 'a browser goes back to the welcome page')
  const welcome = await app.inject({ url: '/', headers: { cookie: page.cookies.map((c) => `${c.name}=${c.value}`).join('; ') } })
  t.match(welcome.body, /is a registered name/, 'which says so')
  t.match(welcome.body, /id="password"/, 'beside a password field to sign in with')

  t.equal((await register(app, 'bob', 'short')).statusCode, 400, 'a password under 8 characters: 400')
  t.match((await register(app, 'bob', 'short')).json().message, /at least 8/)
  t.equal((await register(app, 'b\u200bob', 'long enough pw')).statusCode, 400, 'a name with invisible characters: 400')
})

t.test('one account on two devices is one person: one entry online, the name taken over from a device that still holds it', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const first = cookieOf(await register(app, 'alice', 'correct horse battery'))!
  const phone = await SocketClient.open(base, first)
  await phone.until(() => phone.hello !== undefined, 'hello')
  // The phone's socket stays open (a crashed tab, another device): the laptop signs in as alice.
  const laptopIn = await passwordSignIn(app, 'alice', 'correct horse battery')
  t.equal(laptopIn.statusCode, 303, 'signed in at once: no "someone goes by alice" for alice herself')
  const laptop = cookieOf(laptopIn)!
  const socket = await SocketClient.open(base, laptop)
  await socket.until(() => socket.hello !== undefined, 'hello')
  const users = (await app.inject({ url: '/room/users', headers: { cookie: laptop } })).json() as { users: { name: string }[] }
  t.same(users.users.map((u) => u.name), ['alice'], 'one entry in the online list for two devices')
  socket.send({ text: 'from the laptop', ref: 'a' })
  await phone.until(() => phone.events.some((e) => e.text === 'from the laptop'), 'the phone to see it')
  const joins = phone.events.filter((e: Event) => e.type === 'join' && e.user === 'alice')
  t.equal(joins.length, 1, 'one join line, the first device\'s: the second made none')
  await Promise.all([phone.close(), socket.close()])
})

t.test('sessions: listed with this one marked, one ended (its socket closes at once), every other ended, and a new password ends the rest', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const one = cookieOf(await register(app, 'alice', 'correct horse battery'))!
  const two = cookieOf(await passwordSignIn(app, 'alice', 'correct horse battery'))!
  const three = cookieOf(await passwordSignIn(app, 'alice', 'correct horse battery', { 'user-agent': 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) Safari/604.1' }))!
  const list = (await app.inject({ url: '/account/sessions', headers: { cookie: two } })).json() as { sessions: { id: string; current: boolean; createdAt: number; lastSeenAt: number; userAgent: string }[] }
  t.equal(list.sessions.length, 3, 'three sessions')
  t.equal(list.sessions.filter((s) => s.current).length, 1, 'one marked as this one')
  t.match(list.sessions.find((s) => s.current), { createdAt: Number, lastSeenAt: Number, userAgent: /Firefox/ })
  t.ok(list.sessions.some((s) => /iPhone/.test(s.userAgent)), 'the phone is told apart by its browser')
  const page = await app.inject({ url: '/account', headers: { cookie: two } })
  t.match(page.body, /Firefox on Linux/)
  t.match(page.body, /Safari on iOS/)
  t.match(page.body, /this one/)

  const socket = await SocketClient.open(base, one)
  await socket.until(() => socket.hello !== undefined, 'hello')
  const oneId = list.sessions.find((s) => !s.current && !/iPhone/.test(s.userAgent))!.id
  const ended = await app.inject({ method: 'POST', url: '/account/sessions/end', payload: { id: oneId }, headers: { cookie: two } })
  t.same(ended.json(), { ended: 1 })
  t.match(await socket.untilClosed(), { code: 4401 }, 'the ended session\'s socket closes at once')
  t.equal((await app.inject({ url: '/account/sessions', headers: { cookie: one } })).statusCode, 401, 'its cookie is signed out')

  const guest = await guestSignIn(app, 'mallory')
  const notMine = await app.inject({ method: 'POST', url: '/account/sessions/end', payload: { id: list.sessions[0]!.id }, headers: { cookie: guest } })
  t.equal(notMine.statusCode, 403, 'a guest has no sessions to end')
  const otherAccount = cookieOf(await register(app, 'eve', 'another long password'))!
  const foreign = await app.inject({ method: 'POST', url: '/account/sessions/end', payload: { id: list.sessions.find((s) => s.current)!.id }, headers: { cookie: otherAccount } })
  t.equal(foreign.statusCode, 404, 'nobody ends another account\'s session')

  const others = await app.inject({ method: 'POST', url: '/account/sessions/end', payload: { all: 'others' }, headers: { cookie: two } })
  t.same(others.json(), { ended: 1 }, 'every other session (the phone) ended')
  t.equal((await app.inject({ url: '/account/sessions', headers: { cookie: three } })).statusCode, 401)
  t.equal((await app.inject({ url: '/account/sessions', headers: { cookie: two } })).json().sessions.length, 1, 'this one stays')

  const four = cookieOf(await passwordSignIn(app, 'alice', 'correct horse battery'))!
  const wrong = await app.inject({ method: 'POST', url: '/account/password', payload: { current: 'not it at all', password: 'a new long password' }, headers: { cookie: two } })
  t.equal(wrong.statusCode, 401, 'the current password is checked')
  const changed = await app.inject({ method: 'POST', url: '/account/password', payload: { current: 'correct horse battery', password: 'a new long password' }, headers: { cookie: two } })
  t.match(changed.json(), { ok: true, ended: 1 })
  t.equal((await app.inject({ url: '/account/sessions', headers: { cookie: four } })).statusCode, 401, 'a new password ends every other session')
  t.equal((await passwordSignIn(app, 'alice', 'correct horse battery')).statusCode, 401, 'the old password no longer works')
  t.equal((await passwordSignIn(app, 'alice', 'a new long password')).statusCode, 303, 'the new one does')
})

t.test('a guest keeps the name they hold by creating an account with it, without leaving', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const guest = await guestSignIn(app, 'carol')
  const watcher = await SocketClient.open(base, await guestSignIn(app, 'dave'))
  const socket = await SocketClient.open(base, guest)
  await watcher.until(() => watcher.events.some((e) => e.type === 'join' && e.user === 'carol'), 'carol to join')
  const stranger = await register(app, 'carol', 'a long password here')
  t.equal(stranger.statusCode, 409, 'nobody else can register the name a guest holds')
  t.match(stranger.json().message, /goes by "carol"/)
  const kept = await register(app, 'carol', 'a long password here', {}, guest)
  t.equal(kept.statusCode, 201, 'the guest holding it can')
  const account = cookieOf(kept)!
  const users = (await app.inject({ url: '/room/users', headers: { cookie: account } })).json() as { users: { name: string }[] }
  t.ok(users.users.some((u) => u.name === 'carol'), 'still in the room')
  t.notOk(watcher.events.some((e) => e.type === 'leave' && e.user === 'carol'), 'no leave line for carol')
  t.equal((await app.inject({ method: 'POST', url: '/signin', payload: { user: 'carol', transport: 'websocket' } })).statusCode, 409, 'and now no guest can take it')
  await Promise.all([watcher.close(), socket.close()])
})

t.test('brute force: the same answer for no account and a wrong password; past a few failures each try waits longer, but not on the owner\'s own device', async (t) => {
  const app = await buildTestApp(t)
  const device = deviceOf(await register(app, 'alice', 'correct horse battery'))!
  const noAccount = await passwordSignIn(app, 'nobody', 'whatever it is')
  const wrong = await passwordSignIn(app, 'alice', 'not the password')
  t.equal(noAccount.statusCode, 401)
  t.equal(wrong.statusCode, 401)
  t.same(noAccount.json(), wrong.json(), 'one answer for both: nothing to tell which names exist')

  // Both kinds of failure do the same work (argon2id against a decoy when there is no account).
  // Interleaved, and the fastest of five each: other work on the machine slows a try, never speeds it up.
  const timings: Record<string, number[]> = { 'nobody-here': [], alice: [] }
  for (let i = 0; i < 5; i++) {
    for (const user of ['nobody-here', 'alice']) {
      // Every try a plain failure, never one the throttle answers before checking the password.
      app.accounts.perName.succeed(skeleton(user))
      const began = process.hrtime.bigint()
      const outcome = await app.accounts.signIn(user, `guess ${i}`, `10.0.${i}.${user.length}`)
      timings[user]!.push(Number(process.hrtime.bigint() - began) / 1e6)
      if (i === 0) t.match(outcome, { ok: false }, `${user}: refused`)
    }
  }
  const [missing, present] = [Math.min(...timings['nobody-here']!), Math.min(...timings.alice!)]
  t.ok(missing > present / 3 && present > missing / 3, `fastest ${missing.toFixed(1)} ms for no account, ${present.toFixed(1)} ms for a wrong password: the same work`)
  app.accounts.perName.succeed(skeleton('alice'))

  let status = 0
  let tries = 0
  for (; tries < 10 && status !== 429; tries++) status = (await passwordSignIn(app, 'alice', `guess ${tries}`, { 'x-forwarded-for': '10.9.9.9' })).statusCode
  t.equal(status, 429, `the attacker is slowed after ${tries - 1} wrong passwords`)
  const slowed = await passwordSignIn(app, 'alice', 'correct horse battery')
  t.equal(slowed.statusCode, 429, 'even the right password waits its turn from a new device (nothing is revealed by the answer)')
  t.match(slowed.headers['retry-after'], /^\d+$/, 'with Retry-After')
  const owner = await passwordSignIn(app, 'alice', 'correct horse battery', { cookie: device })
  t.equal(owner.statusCode, 303, 'the owner, on a device that signed in before, is never locked out')
  await eventually(() => app.accounts.perName.wait(skeleton('alice')) === 0, 'the success to clear the slow-down', 1000)
})

t.test('a session ended from another device: its event stream ends saying so and its waiting long poll answers 401, at once', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '30' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const one = cookieOf(await register(app, 'alice', 'correct horse battery'))!
  const two = cookieOf(await passwordSignIn(app, 'alice', 'correct horse battery'))!
  const stream = await fetch(`${base}/sse/room/events`, { headers: { cookie: one } })
  const reading = stream.text()
  const first = await fetch(`${base}/longpolling/room/messages`, { headers: { cookie: one } })
  const lastId = ((await first.json()) as Event[]).at(-1)?.id ?? 0
  const began = Date.now()
  const waiting = fetch(`${base}/longpolling/room/messages?lastReceived=${lastId}&epoch=${app.chatroom.epoch}`, { headers: { cookie: one } })
  await eventually(() => app.chatroom.waitingCount >= 1, 'the long poll to wait')
  const list = (await app.inject({ url: '/account/sessions', headers: { cookie: two } })).json() as { sessions: { id: string; current: boolean }[] }
  const end = await app.inject({ method: 'POST', url: '/account/sessions/end', payload: { id: list.sessions.find((s) => !s.current)!.id }, headers: { cookie: two } })
  t.same(end.json(), { ended: 1 })
  const answered = await waiting
  t.equal(answered.status, 401, 'the waiting poll: 401')
  t.ok(Date.now() - began < 10_000, `answered in ${Date.now() - began} ms, not after its 30 s wait`)
  t.match(await reading, /event: signedout\n/, 'the stream ended with event: signedout')
})

t.test('accounts and their sessions survive a restart (SQLite)', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const dir = mkdtempSync(join(tmpdir(), 'chat-accounts-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { STORE: 'sqlite', DATA_DIR: dir }
  const first = await buildTestApp(t, env)
  const cookie = cookieOf(await register(first, 'alice', 'correct horse battery'))!
  await first.close()
  const again = await buildTestApp(t, env)
  t.equal((await again.inject({ url: '/account/sessions', headers: { cookie } })).statusCode, 200, 'still signed in after the restart')
  t.equal((await passwordSignIn(again, 'alice', 'correct horse battery')).statusCode, 303, 'the password still works')
  t.equal((await register(again, 'alice', 'someone else entirely')).statusCode, 409, 'and the name is still hers')
})
