import { createHash } from 'node:crypto'
import t from 'tap'
import { avatarUrl, identiconSvg } from '../app/avatars.js'
import { buildTestApp, enter, signIn, SocketClient } from './helpers.js'

const EMAIL = 'Gopher.Person@Example.org'
const md5 = createHash('md5').update(EMAIL.trim().toLowerCase()).digest('hex')

t.test('local avatars: deterministic identicons served by this server', async (t) => {
  const a = avatarUrl({ name: 'ann' }, 'local', 's'.repeat(32))
  t.match(a, /^\/avatars\/[0-9a-f]{20}\.svg$/)
  t.equal(avatarUrl({ name: 'ann' }, 'local', 's'.repeat(32)), a, 'same name, same avatar')
  t.not(avatarUrl({ name: 'bob' }, 'local', 's'.repeat(32)), a, 'another name, another avatar')
  t.equal(identiconSvg('abc'), identiconSvg('abc'))
  t.not(identiconSvg('abc'), identiconSvg('abd'))

  const app = await buildTestApp(t)
  const cookie = await signIn(app, EMAIL)
  await enter(app, cookie, 'refresh')
  const url = app.chatroom.roster().users[0]!.avatar!
  t.match(url, /^\/avatars\/[0-9a-f]{20}\.svg$/, 'an email sign-in gets a local identicon too')
  t.notMatch(url, md5, 'not even the hash of the email')
  const svg = await app.inject({ method: 'GET', url })
  t.equal(svg.statusCode, 200)
  t.match(svg.headers['content-type'], /^image\/svg\+xml/)
  t.match(svg.headers['cache-control'], /immutable/)
  t.match(svg.body, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  t.notMatch(svg.body, /<script|on\w+=/i)
  for (const bad of ['/avatars/zz.svg', '/avatars/..%2Fpackage.json', '/avatars/0123456789abcdef0123.png']) {
    t.equal((await app.inject({ method: 'GET', url: bad })).statusCode, 404, bad)
  }
})

t.test('gravatar mode: Gravatar by the MD5 of the trimmed, lower-cased email; a nick gets an identicon', async (t) => {
  const app = await buildTestApp(t, { AVATARS: 'gravatar' })
  const email = await signIn(app, `  ${EMAIL}  `)
  const nick = await signIn(app, 'plainnick')
  await enter(app, email, 'refresh')
  await enter(app, nick, 'refresh')
  const users = app.chatroom.roster().users
  t.same(users.find((u) => u.name === 'Gopher.Person')?.avatar, `https://www.gravatar.com/avatar/${md5}?s=80&d=identicon`)
  t.match(users.find((u) => u.name === 'plainnick')?.avatar, /^\/avatars\/[0-9a-f]{20}\.svg$/)
})

t.test('no response another user can read contains the email', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const gopher = await signIn(app, EMAIL, 'websocket')
  const other = await signIn(app, 'other')
  const socket = await SocketClient.open(base, gopher)
  socket.send({ text: 'hello, I signed in with my email' })
  socket.send({ typing: true })
  await enter(app, gopher, 'longpolling')
  await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: gopher }, payload: { message: 'and by form' } })
  const watcher = await SocketClient.open(base, other)
  await watcher.until(() => watcher.events.some((e) => e.text === 'and by form'), 'the messages')

  const seen: string[] = [JSON.stringify(watcher.events)]
  for (const url of ['/refresh/room', '/refresh/room/thread', '/longpolling/room', '/websocket/room', '/room/users', '/longpolling/room/messages', '/']) {
    seen.push((await app.inject({ method: 'GET', url, headers: { cookie: other } })).body)
  }
  const everything = seen.join('\n').toLowerCase()
  t.match(everything, /gopher\.person/, 'the name is there')
  t.notMatch(everything, /example\.org/, 'the address is not')
  t.notMatch(everything, md5, 'nor its hash (local avatars)')
  await socket.close()
  await watcher.close()
})
