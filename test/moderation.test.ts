import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { registerAccount, RoomsClient, post, served, signInAt, skipUnless, twoProcesses } from './helpers.js'
import { havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// Roles and moderation: the server's operators (OPERATORS), a room's owner, the moderators the
// owner appoints. A moderator deletes anyone's message and mutes a person (they read, they do not
// write) for a time or for good; each action is decided in the store and is an event of the
// room's log (who, whom, why) that every process applies; rights are checked on every route.

const moderate = (base: string, cookie: string, room: string, form: Record<string, string>) => post(base, cookie, room === 'lobby' ? '/room/moderation' : `/rooms/${room}/moderation`, form)
const say = (base: string, cookie: string, room: string, text: string) => post(base, cookie, room === 'lobby' ? '/longpolling/room/messages' : `/longpolling/rooms/${room}/messages`, { text })
const history = async (base: string, cookie: string, room: string) =>
  ((await (await fetch(`${base}${room === 'lobby' ? '/room' : `/rooms/${room}`}/history?limit=100`, { headers: { cookie } })).json()) as { events: Event[] }).events

async function dev(t: Parameters<typeof served>[0], env: Record<string, string> = {}) {
  const { app, base } = await served(t, { RATE_LIMIT_MESSAGES: '1000', ...env })
  const [ann, bob, cat, dan] = await Promise.all(['ann', 'bob', 'cat', 'dan'].map((name) => registerAccount(app, name)))
  await post(base, ann!, '/rooms', { name: 'dev' })
  for (const cookie of [bob!, cat!, dan!]) await post(base, cookie, '/rooms/dev/join')
  return { app, base, ann: ann!, bob: bob!, cat: cat!, dan: dan! }
}

t.test('the owner appoints a moderator; a moderator mutes a member, who then reads but cannot write on any route, until unmuted; each step is a line of the log', async (t) => {
  const { base, ann, bob, cat } = await dev(t)
  const refused = await moderate(base, bob, 'dev', { action: 'mute', user: 'cat' })
  t.equal(refused.status, 403, 'a member cannot mute')
  t.match(await refused.json(), { message: "Only the room's moderators can do that." })
  t.equal((await moderate(base, bob, 'dev', { action: 'promote', user: 'bob' })).status, 403, 'nor appoint themselves')
  const promoted = await moderate(base, ann, 'dev', { action: 'promote', user: 'bob', reason: 'helps out' })
  t.equal(promoted.status, 200, 'the owner appoints bob')
  t.match(await promoted.json(), { type: 'moderation', action: 'promote', user: 'ann', target: 'bob', reason: 'helps out' })

  const cats = await RoomsClient.open(base, cat)
  t.teardown(() => cats.close())
  cats.send({ type: 'subscribe', room: 'dev' })
  await cats.next((f) => f.type === 'subscribed' && f.room === 'dev', 'cat reads dev')
  const muted = await moderate(base, bob, 'dev', { action: 'mute', user: 'cat', minutes: '10', reason: 'spam' })
  t.equal(muted.status, 200, 'the moderator mutes cat for ten minutes')
  const event = (await muted.json()) as Event
  t.match(event, { action: 'mute', user: 'bob', target: 'cat', reason: 'spam' })
  t.ok(event.until! - event.timestamp >= 599_000 && event.until! - event.timestamp <= 600_000, 'until: ten minutes on')

  const http = await say(base, cat, 'dev', 'can I?')
  t.equal(http.status, 403, 'her HTTP send: 403')
  t.match(await http.json(), { message: /^You are muted in this room until .*: spam\. You can still read it\.$/ })
  cats.send({ type: 'say', room: 'dev', text: 'by socket', ref: 'r1' })
  t.ok(await cats.until(() => cats.frames.some((f) => f.ref === 'r1' && /muted/.test(String(f.message)))), 'her socket frame: refused, saying why')
  t.equal((await post(base, cat, '/refresh/rooms/dev', { text: 'by form' })).status, 403, 'her form post: refused')
  await say(base, ann, 'dev', 'still reading?')
  t.ok(await cats.until(() => cats.events('dev').some((e) => e.text === 'still reading?')), 'she still reads the room')
  t.equal((await moderate(base, bob, 'dev', { action: 'mute', user: 'ann' })).status, 403, 'a moderator cannot mute the owner')
  t.equal((await moderate(base, bob, 'dev', { action: 'demote', user: 'bob' })).status, 403, 'nor demote anyone')

  t.equal((await moderate(base, ann, 'dev', { action: 'unmute', user: 'cat' })).status, 200, 'unmuted')
  t.equal((await say(base, cat, 'dev', 'back')).status, 201, 'she writes again')
  t.equal((await moderate(base, ann, 'dev', { action: 'demote', user: 'bob' })).status, 200, 'the owner demotes bob')
  t.equal((await moderate(base, bob, 'dev', { action: 'mute', user: 'cat' })).status, 403, 'a moderator no more')

  const lines = (await history(base, cat, 'dev')).filter((e) => e.type === 'moderation').map((e) => `${e.user} ${e.action} ${e.target}${e.reason ? `: ${e.reason}` : ''}`)
  t.same(lines, ['ann promote bob: helps out', 'bob mute cat: spam', 'ann unmute cat', 'ann demote bob'], 'the log says each, in order, with who and why')
  const page = await (await fetch(`${base}/refresh/rooms/dev`, { headers: { cookie: cat } })).text()
  t.match(page, /<span class="user">bob<\/span> muted <span class="user">you<\/span> for 10 minutes: spam/, 'the page without JavaScript says it as a line')
})

t.test("a moderator deletes anyone's message: gone for everyone, with a line saying who and why; a member cannot", async (t) => {
  const { base, ann, bob, cat, dan } = await dev(t)
  await moderate(base, ann, 'dev', { action: 'promote', user: 'bob' })
  const said = (await (await say(base, cat, 'dev', 'buy cheap pills')).json()) as Event
  t.equal((await moderate(base, dan, 'dev', { action: 'delete', id: String(said.id) })).status, 403, 'a member cannot delete it')
  const deleted = await moderate(base, bob, 'dev', { action: 'delete', id: String(said.id), reason: 'spam' })
  t.equal(deleted.status, 200)
  t.match(await deleted.json(), { type: 'moderation', action: 'delete', ref: said.id, target: 'cat', user: 'bob', reason: 'spam' })
  const log = await history(base, dan, 'dev')
  t.match(
    log.find((e) => e.id === said.id),
    { type: 'message', user: 'cat', deleted: true },
    'the message reads as deleted',
  )
  t.notOk(JSON.stringify(log).includes('cheap pills'), 'its text is gone from every event')
  t.equal((await moderate(base, bob, 'dev', { action: 'delete', id: String(said.id) })).status, 404, 'twice: no such message any more')
  t.equal((await moderate(base, bob, 'dev', { action: 'delete', id: '99999' })).status, 404, 'no such message')
})

t.test('the same as a frame of the socket of several rooms: acknowledged with the event id, or refused with its status and why', async (t) => {
  const { base, ann, bob, cat } = await dev(t)
  const anns = await RoomsClient.open(base, ann)
  t.teardown(() => anns.close())
  anns.send({ type: 'moderation', room: 'dev', action: 'promote', user: 'bob', ref: 'p1' })
  t.ok(await anns.until(() => anns.frames.some((f) => f.type === 'ack' && f.ref === 'p1' && f.room === 'dev')), 'the owner promotes bob by frame: acknowledged')
  const cats = await RoomsClient.open(base, cat)
  t.teardown(() => cats.close())
  cats.send({ type: 'moderation', room: 'dev', action: 'mute', user: 'bob', ref: 'm1' })
  t.ok(await cats.until(() => cats.frames.some((f) => f.ref === 'm1')), 'a member is answered')
  t.match(cats.find((f) => f.ref === 'm1'), { room: 'dev', error: 'Forbidden', status: 403, message: "Only the room's moderators can do that." }, 'refused, saying why')
  const bobs = await RoomsClient.open(base, bob)
  t.teardown(() => bobs.close())
  bobs.send({ type: 'moderation', room: 'dev', action: 'mute', user: 'cat', minutes: 1, ref: 'm2' })
  t.ok(await bobs.until(() => bobs.frames.some((f) => f.type === 'ack' && f.ref === 'm2')), 'the moderator mutes cat by frame')
  t.equal((await say(base, cat, 'dev', 'hello?')).status, 403, 'she is muted')
})

t.test('bad requests: a clear 400 or 404 each, and nothing written', async (t) => {
  const { base, ann } = await dev(t)
  const before = (await history(base, ann, 'dev')).length
  for (const [form, status, message] of [
    [{ action: 'explode', user: 'cat' }, 400, /^action is one of promote, demote, delete, mute, unmute, kick, ban, unban, slow, close, open, topic, suspend, unsuspend\.$/],
    [{ action: 'mute', user: 'nobody-here' }, 404, /No one by that name/],
    [{ action: 'mute', user: 'cat', minutes: '0' }, 400, /minutes is a whole number/],
    [{ action: 'mute', user: 'cat', minutes: '1.5' }, 400, /minutes is a whole number/],
    [{ action: 'mute', user: 'cat', reason: 'x'.repeat(201) }, 400, /at most 200/],
    [{ action: 'mute', user: 'ann' }, 403, /as much say here as you/],
  ] as const) {
    const res = await moderate(base, ann, 'dev', form as Record<string, string>)
    t.equal(res.status, status, JSON.stringify(form).slice(0, 60))
    t.match(((await res.json()) as { message: string }).message, message)
  }
  t.equal((await moderate(base, ann, 'nowhere', { action: 'mute', user: 'cat' })).status, 404, 'a room that does not exist')
  t.equal((await history(base, ann, 'dev')).length, before, 'nothing written')
})

t.test('operators (OPERATORS) moderate every room and the lobby; nobody else moderates the lobby; a guest reading the lobby can be muted too', async (t) => {
  const { app, base, ann, cat } = await dev(t, { OPERATORS: 'root' })
  const root = await registerAccount(app, 'root')
  t.equal((await moderate(base, ann, 'lobby', { action: 'mute', user: 'cat' })).status, 403, "a room's owner has no say in the lobby")
  t.equal((await moderate(base, root, 'dev', { action: 'promote', user: 'cat' })).status, 200, "an operator appoints a moderator in anyone's room")
  t.equal((await moderate(base, cat, 'dev', { action: 'mute', user: 'root' })).status, 403, 'a moderator cannot mute an operator')
  const gus = await signInAt(base, 'gus', 'longpolling')
  const gusReads = await RoomsClient.open(base, gus)
  t.teardown(() => gusReads.close())
  gusReads.send({ type: 'subscribe', room: 'lobby' })
  await gusReads.next((f) => f.type === 'subscribed' && f.room === 'lobby', 'gus reads the lobby')
  t.equal((await say(base, gus, 'lobby', 'hello all')).status, 201)
  const muted = await moderate(base, root, 'lobby', { action: 'mute', user: 'gus', reason: 'flooding' })
  t.equal(muted.status, 200, 'an operator mutes a guest in the lobby, for good')
  t.match(await muted.json(), { action: 'mute', target: 'gus', reason: 'flooding' })
  t.equal((await moderate(base, root, 'lobby', { action: 'mute', user: 'nobody' })).status, 404, 'a guest not reading the room: no one by that name')
  const refused = await say(base, gus, 'lobby', 'again')
  t.equal(refused.status, 403)
  t.match(await refused.json(), { message: 'You are muted in this room: flooding. You can still read it.' })
  t.equal((await say(base, ann, 'lobby', 'others go on')).status, 201, 'others write on')
})

const shared = skipUnless(haveRedis && (await havePostgres()), 'redis-server or PostgreSQL is missing')

t.test('two processes on PostgreSQL + Redis: a mute decided on A refuses her sends on B at once, and an unmute on A lets them through', { skip: shared }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const ann = await registerAccount(a.app, 'ann')
  const cat = await registerAccount(a.app, 'cat')
  await post(a.base, ann, '/rooms', { name: 'dev' })
  await post(a.base, cat, '/rooms/dev/join')
  t.equal((await say(b.base, cat, 'dev', 'on B')).status, 201, 'she writes on B (B has the room loaded)')
  t.equal((await moderate(a.base, ann, 'dev', { action: 'mute', user: 'cat', minutes: '5' })).status, 200, 'muted on A')
  let status = 0
  // B may take a try or two before the mute reaches it by the bus (counted below); none after.
  const taken: string[] = []
  for (let i = 0; i < 20 && status !== 403; i++) {
    status = (await say(b.base, cat, 'dev', `try ${i}`)).status
    if (status === 201) taken.push(`try ${i}`)
    if (status !== 403) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 403, 'her send on B is refused')
  t.comment(`tries B took before it had the mute: ${taken.length}`)
  t.equal((await moderate(a.base, ann, 'dev', { action: 'unmute', user: 'cat' })).status, 200, 'unmuted on A')
  for (let i = 0; i < 20 && status !== 201; i++) {
    status = (await say(b.base, cat, 'dev', `again ${i}`)).status
    if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.equal(status, 201, 'and goes through on B again')
  const stored = (await history(a.base, ann, 'dev')).filter((e) => e.type === 'message').map((e) => e.text)
  t.same(stored.filter((text) => text?.startsWith('try ')), taken, 'nothing refused was stored (only what B took before it knew)')
})

t.test('an operator appoints another operator in the lobby and takes it back; those named in OPERATORS stay; nobody else appoints', async (t) => {
  const { app, base, ann, cat } = await dev(t, { OPERATORS: 'root' })
  const root = await registerAccount(app, 'root')
  t.equal((await moderate(base, ann, 'lobby', { action: 'promote', user: 'bob' })).status, 403, "a room's owner cannot appoint operators")
  t.equal((await moderate(base, cat, 'dev', { action: 'mute', user: 'bob' })).status, 403, 'cat has no say in dev yet')
  const promoted = await moderate(base, root, 'lobby', { action: 'promote', user: 'cat', reason: 'night shift' })
  t.equal(promoted.status, 200, 'root makes cat an operator')
  t.match(await promoted.json(), { action: 'promote', target: 'cat', user: 'root' })
  t.equal((await moderate(base, cat, 'dev', { action: 'mute', user: 'bob', minutes: '5' })).status, 200, "cat now moderates ann's room")
  t.equal((await moderate(base, cat, 'lobby', { action: 'slow', seconds: '5' })).status, 200, 'and the lobby')
  t.equal((await moderate(base, cat, 'lobby', { action: 'demote', user: 'root' })).status, 403, 'nobody takes it from an operator of the configuration')
  t.equal((await moderate(base, root, 'lobby', { action: 'demote', user: 'cat' })).status, 200, 'root takes it back')
  t.equal((await moderate(base, cat, 'dev', { action: 'unmute', user: 'bob' })).status, 403, 'cat has no say in dev again')
})
