import t from 'tap'
import { buildTestApp, enter, eventually, signIn, SocketClient } from './helpers.js'

t.test('typing is shown to others, never to the typist, never archived, and throttled', async (t) => {
  const app = await buildTestApp(t)
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await SocketClient.open(base, await signIn(app, 'ann'))
  const bob = await SocketClient.open(base, await signIn(app, 'bob'))
  const bobTyping: unknown[] = []
  bob.ws.on('message', (data) => {
    const items = JSON.parse(data.toString()) as { type: string; user: string }[]
    if (Array.isArray(items)) bobTyping.push(...items.filter((i) => i.type === 'typing'))
  })
  await ann.untilId(2)

  // A long poller who asked for signals, waiting.
  const cat = await signIn(app, 'cat')
  await enter(app, cat, 'longpolling')
  const catLast = app.chatroom.lastId
  await ann.untilId(catLast)
  const readers = app.chatroom.subscriberCount
  const poll = fetch(`${base}/longpolling/room/messages?lastReceived=${catLast}&typing=1`, { headers: { cookie: cat } })
  await eventually(() => app.chatroom.subscriberCount === readers + 1, 'the poll to wait')

  ann.send({ typing: true })
  ann.send({ typing: true })
  ann.send({ typing: true })
  t.same(await (await poll).json(), [{ type: 'typing', user: 'ann' }], 'the long poller hears it, with no id')
  t.equal(app.chatroom.lastId, catLast, 'no id consumed')
  t.notOk(app.chatroom.archive().some((s) => (s.event.type as string) === 'typing'), 'not archived')
  // A message after the signals: once bob has it, every signal sent before it has reached him.
  ann.send({ text: 'marker' })
  await bob.untilId(catLast + 1)
  t.same(bobTyping, [{ type: 'typing', user: 'ann' }], 'bob hears it once: throttled per user')
  t.notOk(
    ann.signals.some((e) => e.type === 'typing'),
    'ann is never told about her own typing',
  )

  // Over long polling too, and curl-style polls without ?typing=1 never see it.
  const plain = fetch(`${base}/longpolling/room/messages?lastReceived=${catLast + 1}`, { headers: { cookie: cat } })
  await eventually(() => app.chatroom.subscriberCount === readers + 1, 'the plain poll to wait')
  const typed = await app.inject({ method: 'POST', url: '/longpolling/room/typing', headers: { cookie: cat } })
  t.equal(typed.statusCode, 204)
  await ann.until(
    () => ann.signals.some((e) => e.type === 'typing' && e.user === 'cat'),
    'ann to hear that cat is typing',
  )
  ann.send({ text: 'done typing' })
  const plainAnswer = (await (await plain).json()) as { type: string }[]
  t.same(plainAnswer.map((e) => e.type), ['message'], 'without typing=1 only events come')
  await ann.close()
  await bob.close()
})

t.test('a bad typing flag is a 400', async (t) => {
  const app = await buildTestApp(t)
  const res = await app.inject({ method: 'GET', url: '/longpolling/room/messages?typing=maybe', headers: { cookie: await signIn(app, 'x') } })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { message: /typing must be 1 or 0/ })
})
