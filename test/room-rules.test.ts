import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildTestApp, registerAccount, RoomsClient, post, served, skipUnless, twoProcesses } from './helpers.js'
import { havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// A moderator's rules for a whole room: slow mode (one message per N seconds per person, the
// moderators excepted), closing it to new members and opening it again, and its topic and title.
// Each is kept in the store (a restart keeps it) and is an event of the room's log.

const moderate = (base: string, cookie: string, room: string, form: Record<string, string>) => post(base, cookie, room === 'lobby' ? '/room/moderation' : `/rooms/${room}/moderation`, form)
const say = (base: string, cookie: string, room: string, text: string) => post(base, cookie, `/longpolling/rooms/${room}/messages`, { text })
const history = async (base: string, cookie: string, room: string) =>
  ((await (await fetch(`${base}/rooms/${room}/history?limit=100`, { headers: { cookie } })).json()) as { events: Event[] }).events

async function dev(t: Parameters<typeof served>[0]) {
  const { app, base } = await served(t, { RATE_LIMIT_MESSAGES: '1000' })
  const [ann, bob, cat, dan] = await Promise.all(['ann', 'bob', 'cat', 'dan'].map((name) => registerAccount(app, name)))
  await post(base, ann!, '/rooms', { name: 'dev' })
  for (const cookie of [bob!, cat!]) await post(base, cookie, '/rooms/dev/join')
  return { app, base, ann: ann!, bob: bob!, cat: cat!, dan: dan! }
}

t.test('slow mode: one message per N seconds per person on every route, said with the wait (429, Retry-After); moderators are not slowed; off again', async (t) => {
  const { base, ann, bob, cat } = await dev(t)
  t.equal((await moderate(base, bob, 'dev', { action: 'slow', seconds: '30' })).status, 403, 'a member cannot set it')
  const set = await moderate(base, ann, 'dev', { action: 'slow', seconds: '30', reason: 'calm down' })
  t.equal(set.status, 200, 'the owner sets slow mode: 30 s')
  t.match(await set.json(), { type: 'moderation', action: 'slow', seconds: 30, reason: 'calm down' })
  t.equal((await say(base, bob, 'dev', 'first')).status, 201, 'his first message goes through')
  const second = await say(base, bob, 'dev', 'second')
  t.equal(second.status, 429, 'his second within 30 s: 429')
  t.ok(Number(second.headers.get('retry-after')) >= 29, `with Retry-After (${second.headers.get('retry-after')} s)`)
  t.match(await second.json(), { message: /^Slow mode: one message every 30 s here\. Try again in \d+ s\.$/ })
  const bobs = await RoomsClient.open(base, bob)
  t.teardown(() => bobs.close())
  bobs.send({ type: 'subscribe', room: 'dev' })
  await bobs.next((f) => f.type === 'subscribed' && f.room === 'dev', 'he reads dev')
  bobs.send({ type: 'say', room: 'dev', text: 'by socket', ref: 's1' })
  t.ok(await bobs.until(() => bobs.frames.some((f) => f.ref === 's1' && /Slow mode/.test(String(f.message)))), 'his socket frame: refused, saying why')
  t.equal((await say(base, cat, 'dev', 'mine')).status, 201, 'each person has their own turn')
  t.equal((await say(base, ann, 'dev', 'one')).status, 201)
  t.equal((await say(base, ann, 'dev', 'two')).status, 201, 'the owner is not slowed')
  t.equal((await moderate(base, ann, 'dev', { action: 'slow', seconds: '0' })).status, 200, 'off')
  t.equal((await say(base, bob, 'dev', 'free again')).status, 201, 'he writes at once')
  t.equal((await moderate(base, ann, 'dev', { action: 'slow', seconds: '-1' })).status, 400, 'seconds below 0: 400')
  t.equal((await moderate(base, ann, 'dev', { action: 'slow', seconds: '3601' })).status, 400, 'past an hour: 400')
  const texts = (await history(base, ann, 'dev')).filter((e) => e.type === 'message').map((e) => e.text)
  t.same(texts, ['first', 'mine', 'one', 'two', 'free again'], 'nothing refused was stored')
})

t.test('closing a room to new members: joins refused with why, members stay and write, moderators still let people in; opened again', async (t) => {
  const { base, ann, bob, dan } = await dev(t)
  t.equal((await moderate(base, bob, 'dev', { action: 'close' })).status, 403, 'a member cannot close it')
  t.equal((await moderate(base, ann, 'dev', { action: 'close', reason: 'raid' })).status, 200, 'the owner closes it')
  const join = await post(base, dan, '/rooms/dev/join')
  t.equal(join.status, 403, 'a newcomer cannot join')
  t.match(await join.json(), { message: 'This room is closed to new members.' })
  t.equal((await say(base, bob, 'dev', 'still here')).status, 201, 'members write on')
  t.equal((await moderate(base, ann, 'dev', { action: 'open' })).status, 200, 'opened again')
  t.equal((await post(base, dan, '/rooms/dev/join')).status, 200, 'he joins')
  const lines = (await history(base, ann, 'dev')).filter((e) => e.type === 'moderation').map((e) => `${e.user} ${e.action}${e.reason ? `: ${e.reason}` : ''}`)
  t.same(lines, ['ann close: raid', 'ann open'], 'each is a line of the log')
})

t.test('the topic and title as a moderator action: stored, a line of the log, and on the page', async (t) => {
  const { base, ann, bob, cat } = await dev(t)
  await moderate(base, ann, 'dev', { action: 'promote', user: 'bob' })
  t.equal((await moderate(base, cat, 'dev', { action: 'topic', topic: 'mine now' })).status, 403, 'a member cannot')
  const set = await moderate(base, bob, 'dev', { action: 'topic', topic: 'Release week: <b>no</b> deploys', title: 'Dev room' })
  t.equal(set.status, 200, 'a moderator sets them')
  t.match(await set.json(), { action: 'topic', topic: 'Release week: <b>no</b> deploys', title: 'Dev room' })
  const rooms = (await (await fetch(`${base}/rooms`, { headers: { cookie: cat } })).json()) as { rooms: { name: string; title: string; topic: string }[] }
  t.match(rooms.rooms.find((r) => r.name === 'dev'), { title: 'Dev room', topic: 'Release week: <b>no</b> deploys' }, 'the room list has them')
  const page = await (await fetch(`${base}/refresh/rooms/dev`, { headers: { cookie: cat } })).text()
  t.match(page, /set the topic: Release week: &lt;b&gt;no&lt;\/b&gt; deploys/, 'the page says it as a line, escaped')
  t.equal((await moderate(base, ann, 'dev', { action: 'topic', topic: 'x'.repeat(301) })).status, 400, 'a topic past 300 characters: 400')
})

t.test('the rules outlive a restart: the server started again on the same SQLite file has them from the store', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'rules-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const first = await buildTestApp(t, { STORE: 'sqlite', DATA_DIR: dir, RATE_LIMIT_MESSAGES: '1000' })
  const ann = await registerAccount(first, 'ann')
  const bob = await registerAccount(first, 'bob')
  const inject = (app: typeof first, cookie: string, url: string, payload: Record<string, string>) => app.inject({ method: 'POST', url, headers: { cookie }, payload })
  await inject(first, ann, '/rooms', { name: 'dev' })
  await inject(first, bob, '/rooms/dev/join', {})
  t.equal((await inject(first, ann, '/rooms/dev/moderation', { action: 'slow', seconds: '60' })).statusCode, 200)
  t.equal((await inject(first, ann, '/rooms/dev/moderation', { action: 'close' })).statusCode, 200)
  await first.close()
  const again = await buildTestApp(t, { STORE: 'sqlite', DATA_DIR: dir, RATE_LIMIT_MESSAGES: '1000' })
  const room = await again.chatroom.room('dev')
  t.equal(room.slow, 60, 'slow mode kept')
  t.equal(room.closedToNew, true, 'closed kept')
  t.equal((await inject(again, bob, '/longpolling/rooms/dev/messages', { text: 'a' })).statusCode, 201)
  t.equal((await inject(again, bob, '/longpolling/rooms/dev/messages', { text: 'b' })).statusCode, 429, 'and enforced')
})

const shared = skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing')

t.test('two processes on PostgreSQL + Redis: slow mode set on A holds on B, and one person sending on both is slowed across them', { skip: shared }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const ann = await registerAccount(a.app, 'ann')
  const bob = await registerAccount(a.app, 'bob')
  await post(a.base, ann, '/rooms', { name: 'dev' })
  await post(a.base, bob, '/rooms/dev/join')
  t.equal((await say(b.base, bob, 'dev', 'loads it on B')).status, 201)
  t.equal((await moderate(a.base, ann, 'dev', { action: 'slow', seconds: '30' })).status, 200, 'set on A')
  let status = 0
  for (let i = 0; i < 20 && status !== 201; i++) {
    status = (await say(a.base, bob, 'dev', `on A ${i}`)).status
    if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 201, 'his message on A')
  for (let i = 0; i < 20 && status !== 429; i++) {
    status = (await say(b.base, bob, 'dev', `on B ${i}`)).status
    if (status !== 429) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 429, 'his next on B within 30 s: slowed')
})
