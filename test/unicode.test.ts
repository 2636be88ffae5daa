import t from 'tap'
import { skeleton } from '../app/identity.js'
import { buildTestApp, signIn, SocketClient } from './helpers.js'

// Issue 21, item 8: text the server stores is well-formed Unicode, and names that differ from a
// present one only by punctuation are the same name.

type App = Awaited<ReturnType<typeof buildTestApp>>

/** A lone surrogate: half of a character, as JSON can carry it ("\ud800") and UTF-8 cannot. */
const LONE = '{"text":"a\\ud800b","message":"a\\ud800b"}'

t.test('a lone surrogate in a message is refused on every way in, saying why; nothing is stored', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann')

  // The WebSocket frame: an error frame with the frame's ref; the socket stays open.
  const socket = await SocketClient.open(base, ann)
  await socket.until(() => socket.hello !== undefined, 'hello')
  socket.send('{"text":"a\\ud800b","ref":"r1"}')
  await socket.until(() => socket.errors.length > 0, 'an error frame')
  t.match(socket.errors[0], { error: 'Bad Request', message: /well-formed.*U\+D800/, ref: 'r1' }, 'WebSocket: an error frame saying why')
  socket.send({ text: 'a😀b', ref: 'r2' })
  await socket.until(() => socket.acks.some((a) => a.ref === 'r2'), 'the ack')
  t.equal(socket.closed, undefined, 'the socket stays open, and a whole emoji (a surrogate pair) is fine')

  // Every say over HTTP: long polling, the event stream's, the socket page's and the refresh page's.
  for (const url of ['/longpolling/room/messages', '/sse/room/messages', '/websocket/room/messages', '/refresh/room']) {
    const res = await app.inject({ method: 'POST', url, headers: { cookie: ann, 'content-type': 'application/json' }, payload: LONE })
    t.equal(res.statusCode, 400, `POST ${url}: 400`)
    t.match(res.json(), { error: 'Bad Request', message: /well-formed.*U\+D800/ }, `POST ${url}: says why`)
  }
  // The low half alone, and a pair in the wrong order, are lone too.
  for (const text of ['\udc00', 'x\udc00\ud800y']) {
    const res = await app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: ann }, payload: { text } })
    t.equal(res.statusCode, 400, `${JSON.stringify(text)}: 400`)
  }

  // The form path (no JavaScript): a form cannot carry half a character (browsers encode
  // text as UTF-8); the UTF-8 bytes of a surrogate are not decoded into one, so what is stored
  // is still whole text.
  const form = await app.inject({
    method: 'POST',
    url: '/websocket/room/messages',
    headers: { cookie: ann, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'message=a%ED%A0%80b',
  })
  t.not(form.statusCode, 500, `the form: ${form.statusCode}`)
  const texts = app.chatroom.archive().filter((s) => s.event.type === 'message').map((s) => s.event.text ?? '')
  t.notOk(texts.some((text) => /\p{Cs}/u.test(text)), 'no stored message holds a lone surrogate')
  t.ok(texts.includes('a😀b'), 'the whole emoji was stored')
  const lone = /\p{Cs}/u
  t.notOk(app.chatroom.archive().some((s) => lone.test(s.event.user) || lone.test(s.event.text ?? '')), 'nothing in the log holds one')
  await socket.close()
})

t.test('a name or email with a lone surrogate is refused at sign-in, saying why', async (t) => {
  const app = await buildTestApp(t)
  for (const user of ['al\ud800ice', 'alice\udfff', 'al\ud800ice@example.com']) {
    const res = await app.inject({ method: 'POST', url: '/signin', payload: { user, transport: 'websocket' } })
    t.equal(res.statusCode, 400, `${JSON.stringify(user)}: 400`)
    t.match(res.json(), { message: /well-formed/ }, `${JSON.stringify(user)}: says why`)
  }
  t.equal((await app.inject({ method: 'POST', url: '/signin', payload: { user: 'ali😀ce', transport: 'websocket' } })).statusCode, 303, 'a whole emoji is fine')
})

const signInAs = (app: App, user: string) => app.inject({ method: 'POST', url: '/signin', payload: { user, transport: 'websocket' } })

t.test('names that differ only by punctuation or spacing are the same name', async (t) => {
  const app = await buildTestApp(t)
  await signIn(app, 'alice')
  const alikes = ['alice.', '.alice', 'alice·', 'a.lice', 'a·lice', 'a-lice', 'a_lice', 'al ice', '«alice»', 'ALICE!', '-alice-', 'a\u2010lice', 'alice…', '(alice)', 'a\'lice', 'a^lice', 'a~lice', 'a.l.i.c.e']
  for (const name of alikes) {
    const res = await signInAs(app, name)
    t.equal(res.statusCode, 409, `${JSON.stringify(name)} while alice is here: taken`)
    t.equal(skeleton(name), skeleton('alice'), `${JSON.stringify(name)} looks like alice`)
  }
  // And the other way round: the dotted one first.
  await signIn(app, 'bob.')
  for (const name of ['bob', '.bob', 'b·o·b', 'b-o-b']) t.equal((await signInAs(app, name)).statusCode, 409, `${JSON.stringify(name)} while "bob." is here: taken`)
  // Letters of other scripts are names as before; their punctuation counts as little as ours.
  await signIn(app, '李小龍')
  t.equal((await signInAs(app, '李·小龍')).statusCode, 409, '李·小龍 while 李小龍 is here: taken')
  t.equal((await signInAs(app, '李・小龍')).statusCode, 409, 'the katakana middle dot too')
  for (const name of ['李小虎', 'Ωmega7', 'José', 'アリス', 'ann-marie', 'bob😀', 'Зоя']) t.equal((await signInAs(app, name)).statusCode, 303, `${name} signs in`)
  // Letters and digits still tell names apart, and emoji are not punctuation.
  t.not(skeleton('alice'), skeleton('alice2'))
  t.not(skeleton('bob'), skeleton('bob😀'))
  t.not(skeleton('李小龍'), skeleton('李小虎'))
  // A name of punctuation alone is refused; its skeleton is still its own.
  for (const name of ['...', '·', '-_-', '!!']) {
    const res = await signInAs(app, name)
    t.equal(res.statusCode, 400, `${JSON.stringify(name)}: refused`)
    t.match(res.json(), { message: /at least one letter or digit/ })
  }
  t.not(skeleton('...'), skeleton('---'), 'punctuation alone is not emptied into one skeleton')
  t.not(skeleton('...'), '')
})
