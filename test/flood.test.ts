import t from 'tap'
import { MemoryFloodGuard } from '../app/chatroom/flood.js'
import { buildTestApp, floodSlides, signIn } from './helpers.js'

t.test('the flood window slides: a message is allowed again once the oldest leaves the window', async (t) => {
  const guard = new MemoryFloodGuard(3, 1000)
  t.same([await guard.take('ann', 0), await guard.take('ann', 100), await guard.take('ann', 200)], [0, 0, 0], 'three within the limit')
  t.equal(await guard.take('ann', 300), 700, 'the fourth waits until the first is 1 s old')
  t.equal(await guard.take('ann', 999), 1, 'still one ms to go')
  t.equal(await guard.take('ann', 1000), 0, 'the first left the window: allowed')
  t.equal(await guard.take('ann', 1050), 50, 'the window is full again (100, 200, 1000)')
  t.equal(await guard.take('ann', 1100), 0, 'the second left: allowed')
  t.equal(await guard.take('bob', 1100), 0, 'another user has a budget of his own')
  // Long after, a full budget again, however much was refused before.
  t.same([await guard.take('ann', 9000), await guard.take('ann', 9000), await guard.take('ann', 9000)], [0, 0, 0])
})

t.test('in the app: a flooded user can speak again once the oldest message left the window', async (t) => {
  const app = await buildTestApp(t, { RATE_LIMIT_MESSAGES: '2', RATE_LIMIT_WINDOW: '1' })
  const ann = await signIn(app, 'ann')
  await floodSlides(t, (text) => app.inject({ method: 'POST', url: '/longpolling/room/messages', headers: { cookie: ann }, payload: { text } }))
})
