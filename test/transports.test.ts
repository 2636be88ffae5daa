import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, enter, range, signIn, SocketClient } from './helpers.js'

t.test('refresh, long-poll and WebSocket users share one room: same events, same order, consecutive ids', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '2' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const ann = await signIn(app, 'ann', 'refresh')
  const bob = await signIn(app, 'bob', 'longpolling')
  const cat = await signIn(app, 'cat', 'websocket')

  await fetch(`${base}/refresh`, { headers: { cookie: ann }, redirect: 'manual' })
  await fetch(`${base}/longpolling/room`, { headers: { cookie: bob } })
  const socket = await SocketClient.open(base, cat)

  // bob long-polls from his cursor, as his page does, until he has seen `until`.
  let bobCursor = 0
  const bobSeen: Event[] = []
  const bobPoll = async (until: number) => {
    for (let i = 0; i < 50 && bobCursor < until; i++) {
      const res = await fetch(`${base}/longpolling/room/messages?lastReceived=${bobCursor}`, { headers: { cookie: bob } })
      for (const e of (await res.json()) as Event[]) {
        bobSeen.push(e)
        bobCursor = e.id
      }
    }
  }

  const say = {
    ann: (text: string) => fetch(`${base}/refresh/room`, { method: 'POST', headers: { cookie: ann }, body: new URLSearchParams({ message: text }), redirect: 'manual' }),
    bob: (text: string) => fetch(`${base}/longpolling/room/messages`, { method: 'POST', headers: { cookie: bob, 'content-type': 'application/json' }, body: JSON.stringify({ text }) }),
    cat: (text: string) => socket.send({ text }),
  }
  for (let round = 0; round < 5; round++) {
    await say.ann(`ann ${round}`)
    await say.bob(`bob ${round}`)
    say.cat(`cat ${round}`)
    await socket.until(() => socket.events.some((e) => e.text === `cat ${round}`), `cat ${round}`)
  }
  const last = app.chatroom.lastId
  t.equal(last, 3 + 15, 'three joins and fifteen messages')
  await bobPoll(last)
  await socket.untilId(last)

  const thread = await fetch(`${base}/refresh/room/thread`, { headers: { cookie: ann } })
  const annIds = [...(await thread.text()).matchAll(/data-id="(\d+)"/g)].map((m) => Number(m[1]))

  const expected = range(1, last)
  // A run of joins and leaves is one line there, carrying the run's last id.
  const presence = (id: number) => ['join', 'leave'].includes(bobSeen[id - 1]?.type ?? '')
  t.same(annIds, expected.filter((id) => !(presence(id) && presence(id + 1))), 'the refresh page shows every id in order (a run of joins as one line)')
  t.same(bobSeen.map((e) => e.id), expected, 'the long poller got every id in order')
  t.same(socket.ids(), expected.filter((id) => id >= socket.events[0]!.id), 'the socket got every id from its join on, in order')
  t.same(socket.events, bobSeen.slice(socket.events[0]!.id - 1), 'identical events on both live transports')
  t.same(
    bobSeen.filter((e) => e.type === 'message').map((e) => `${e.user}:${e.text}`).slice(0, 3),
    ['ann:ann 0', 'bob:bob 0', 'cat:cat 0'],
  )
  await socket.close()
})

t.test('a long poller that drops away resumes with its cursor and gets exactly what it missed', async (t) => {
  const app = await buildTestApp(t)
  const bob = await signIn(app, 'bob', 'longpolling')
  await enter(app, bob, 'longpolling')
  const get = (cursor: number) =>
    app.inject({ method: 'GET', url: `/longpolling/room/messages?lastReceived=${cursor}`, headers: { cookie: bob } })
  await app.chatroom.post('ann', 'seen')
  const first = (await get(0)).json() as Event[]
  t.same(first.map((e) => [e.id, e.type]), [[1, 'join'], [2, 'message']])
  // bob is gone (his lease keeps him listed); others talk.
  for (let i = 0; i < 7; i++) await app.chatroom.post('ann', `missed ${i}`)
  const resumed = (await get(2)).json() as Event[]
  t.same(resumed.map((e) => e.id), range(3, 9))
  t.same(resumed.map((e) => e.text), range(0, 6).map((i) => `missed ${i}`))
})

t.test('a cursor older than the replay window is served from the log, exactly once, then live', async (t) => {
  const app = await buildTestApp(t, { ARCHIVE_SIZE: '5', SUBSCRIBER_QUEUE: '5' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const cat = await signIn(app, 'cat')
  for (let i = 0; i < 20; i++) await app.chatroom.post('ann', `n${i}`)
  t.same(app.chatroom.archive().map((s) => s.event.id), range(16, 20), 'only 16..20 are in memory')
  const socket = await SocketClient.open(base, cat, `?lastReceived=3&epoch=${app.chatroom.epoch}`)
  await socket.untilId(21)
  t.same(socket.ids(), range(4, 21), '4..15 from the log, 16..20 from the window, then the join: no gap')
  const poll = await app.inject({ method: 'GET', url: `/longpolling/room/messages?lastReceived=3&epoch=${app.chatroom.epoch}`, headers: { cookie: cat } })
  t.same((poll.json() as Event[]).map((e) => e.id), range(4, 21), 'long polling too')
  await socket.close()
})

t.test('a cursor further behind than RESUME_MAX_EVENTS is told to start over', async (t) => {
  const app = await buildTestApp(t, { ARCHIVE_SIZE: '5', RESUME_MAX_EVENTS: '10' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const cat = await signIn(app, 'cat')
  for (let i = 0; i < 20; i++) await app.chatroom.post('ann', `n${i}`)
  const socket = await SocketClient.open(base, cat, '?lastReceived=3')
  t.match(await socket.untilClosed(), { code: 4409, reason: /too far behind: start over/ })
  const poll = await app.inject({ method: 'GET', url: '/longpolling/room/messages?lastReceived=3', headers: { cookie: cat } })
  t.equal(poll.statusCode, 409)
  t.match(poll.json(), { reason: 'behind', epoch: app.chatroom.epoch, lastId: 20, message: /too far behind/ })
  const near = await app.inject({ method: 'GET', url: '/longpolling/room/messages?lastReceived=12', headers: { cookie: cat } })
  t.same((near.json() as Event[]).map((e) => e.id).slice(0, 8), range(13, 20), 'ten back is still served')
})
