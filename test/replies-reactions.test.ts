import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import type { Event, EventDraft } from '../app/chatroom/event.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { PostgresStore } from '../app/chatroom/store/postgres.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import { LOBBY, type Store } from '../app/chatroom/store/store.js'
import { buildTestApp, post, registerAccount, RoomsClient, served, signIn, signInAt, skipUnless, SocketClient, twoProcesses } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// Issue 32, replies and reactions: each is an event in the room's log (a reply a message with
// replyTo and thread; a reaction {type: "reaction", ref, emoji, user, action}), so it reaches every
// transport, every process and history, and what it changes (a thread's count, a message's
// reactions) is in the store: on memory, SQLite and PostgreSQL alike.

const noPostgres = skipUnless(await havePostgres(), 'PostgreSQL is not running')
const noCluster = skipUnless(haveRedis && (await havePostgres()), 'Redis and PostgreSQL are needed for two processes')

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-replies-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const stores: [string, (t: Test) => Promise<() => Store>, string | false][] = [
  ['memory', async () => { const store = new MemoryStore(); return () => store }, false],
  ['sqlite', async (t) => { const dir = tempDir(t); return () => new SqliteStore(dir) }, false],
  ['postgres', async (t) => { const url = await freshDatabase(t); return () => new PostgresStore({ url }) }, noPostgres],
]

const say = (sender: string, text: string, more: Partial<EventDraft> = {}): EventDraft => ({ type: 'message', user: sender, text, sender, ...more })
const react = (sender: string, ref: number, emoji: string, action: 'add' | 'remove' = 'add'): EventDraft => ({ type: 'reaction', user: sender, sender, ref, emoji, action })

for (const [kind, make, skip] of stores) {
  t.test(`${kind}: a reply counts in its thread, a reaction in its message, and both outlast a reopen`, { skip }, async (t) => {
    const open = await make(t)
    let store = open()
    await store.open()
    const log = await store.log(LOBBY)
    const [root] = await log.append([say('ann', 'where do we meet?')])
    const [r1, r2] = await log.append([say('bob', 'at noon', { replyTo: root!.event.id, thread: root!.event.id }), react('bob', root!.event.id, '👍')])
    t.match(r1!.event, { replyTo: 1, thread: 1 })
    t.match(r2!.event, { type: 'reaction', ref: 1, emoji: '👍', user: 'bob', action: 'add' })
    const [r3] = await log.append([say('cat', 'noon works', { replyTo: r1!.event.id, thread: root!.event.id, alsoToRoom: true })])
    const [again] = await log.append([react('bob', 1, '👍')])
    t.equal(again!.duplicate, true, 'adding the same reaction twice is one: nothing is written')
    await log.append([react('cat', 1, '👍'), react('cat', 1, '🎉'), react('cat', 1, '🎉', 'remove')])
    const [gone] = await log.append([react('dan', 1, '🎉', 'remove')])
    t.equal(gone!.duplicate, true, 'taking back a reaction one never made writes nothing')

    const check = async (s: Store, when: string) => {
      const l = await s.log(LOBBY)
      const message = (await l.message(1))!.stored.event
      t.equal(message.replies, 2, `${when}: two replies`)
      t.equal(message.lastReply, r3!.event.timestamp, `${when}: the last reply's time`)
      t.same(message.reactions, [{ emoji: '👍', users: ['bob', 'cat'] }], `${when}: the reactions as they stand`)
      const thread = await l.thread(1, 0, 10)
      t.same(thread.map((s) => s.event.id), [r1!.event.id, r3!.event.id], `${when}: the thread's replies, oldest first`)
      t.same((await l.thread(1, r1!.event.id, 10)).map((s) => s.event.id), [r3!.event.id], `${when}: after an id`)
      const history = await l.after(0, 50)
      t.same(history.find((s) => s.event.id === 1)!.event.reactions, message.reactions, `${when}: history reads the message as it stands`)
      t.equal(history.filter((s) => s.event.type === 'reaction').length, 4, `${when}: each reaction that changed something is an event`)
    }
    await check(store, 'now')
    if (kind !== 'memory') {
      await store.close()
      store = open()
      await store.open()
    }
    await check(store, 'reopened')

    // A reply deleted is one fewer; its thread's first message deleted keeps no reactions.
    const log2 = await store.log(LOBBY)
    const [deletion] = await log2.append([{ type: 'delete', user: 'bob', sender: 'bob', ref: r1!.event.id }])
    t.equal((await log2.message(1))!.stored.event.replies, 1, 'a deleted reply no longer counts')
    t.match(deletion!.event, { thread: 1, threadReplies: 1 }, "a reply's deletion says its thread and the count now (readers set it, never add to it)")
    await log2.append([{ type: 'delete', user: 'ann', sender: 'ann', ref: 1 }])
    const deleted = (await log2.message(1))!.stored.event
    t.equal(deleted.reactions, undefined, 'a deleted message keeps no reactions')
    t.equal(deleted.text, undefined)
    const [late] = await log2.append([react('bob', 1, '👍')])
    t.equal(late!.duplicate, true, 'a reaction to a deleted message is written nowhere')
    await store.close()
  })
}

/** A message said over plain HTTP (JSON): its event. */
async function sayJson(app: FastifyInstance, cookie: string, url: string, body: Record<string, unknown>): Promise<{ status: number; event: Event }> {
  const res = await app.inject({ method: 'POST', url, headers: { cookie, accept: 'application/json' }, payload: body })
  return { status: res.statusCode, event: res.json() as Event }
}

t.test('a reply on every way in carries replyTo and thread; its thread counts it; history and the thread route show it', async (t) => {
  const { app, base } = await served(t)
  const ann = await signIn(app, 'ann')
  const bob = await signIn(app, 'bob')
  const root = (await sayJson(app, ann, '/longpolling/room/messages', { text: 'the plan?' })).event
  const watcher = await SocketClient.open(base, ann)
  await watcher.until(() => watcher.hello !== undefined)

  const replies: Event[] = []
  for (const way of ['longpolling', 'sse', 'websocket']) {
    const { status, event } = await sayJson(app, bob, `/${way}/room/messages`, { text: `by ${way}`, replyTo: root.id })
    t.equal(status, 201, `${way}: posted`)
    t.match(event, { replyTo: root.id, thread: root.id, text: `by ${way}` }, `${way}: a reply`)
    replies.push(event)
  }
  // The page without JavaScript posts a form; "also send to the room" is a checkbox.
  const form = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: bob, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ message: 'by form', replyTo: String(replies[0]!.id), alsoToRoom: 'on' }).toString() })
  t.equal(form.statusCode, 303)
  const socket = await SocketClient.open(base, bob)
  await socket.until(() => socket.hello !== undefined)
  socket.send({ text: 'by frame', replyTo: root.id, ref: 'f1' })
  await socket.until(() => socket.acks.some((a) => a.ref === 'f1'))
  const rooms = await RoomsClient.open(base, bob)
  rooms.send({ type: 'subscribe', room: 'lobby' })
  await rooms.next((f) => f.type === 'subscribed', 'subscribed')
  rooms.send({ type: 'say', room: 'lobby', text: 'by rooms frame', replyTo: root.id, ref: 'f2' })
  await rooms.next((f) => f.type === 'ack' && f.ref === 'f2', 'the ack')

  await watcher.until(() => watcher.events.some((e) => e.text === 'by rooms frame'))
  const live = watcher.events.filter((e) => e.type === 'message' && e.thread === root.id)
  t.equal(live.length, 6, 'every reply reached a live reader')
  t.match(live.find((e) => e.text === 'by form'), { replyTo: replies[0]!.id, thread: root.id, alsoToRoom: true }, "a reply to a reply hangs in the first message's thread")

  const thread = (await app.inject({ method: 'GET', url: `/room/messages/${replies[1]!.id}/thread`, headers: { cookie: ann } })).json() as { root: Event; replies: Event[]; more: boolean }
  t.equal(thread.root.id, root.id, "a reply's id names its thread")
  t.equal(thread.root.replies, 6)
  t.same(thread.replies.map((e) => e.text), ['by longpolling', 'by sse', 'by websocket', 'by form', 'by frame', 'by rooms frame'])
  t.equal(thread.more, false)
  const message = (await app.inject({ method: 'GET', url: `/room/messages/${root.id}`, headers: { cookie: ann } })).json() as Event
  t.match(message, { id: root.id, replies: 6, lastReply: thread.replies.at(-1)!.timestamp }, 'the message as it stands counts its replies (the window as the store)')
  const history = (await app.inject({ method: 'GET', url: '/room/history', headers: { cookie: ann } })).json() as { events: Event[] }
  t.equal(history.events.find((e) => e.id === root.id)?.replies, 6, 'history reads it so too')

  const search = (await app.inject({ method: 'GET', url: '/search?q=rooms%20frame', headers: { cookie: ann, accept: 'application/json' } })).json() as { results: { id: number }[] }
  t.ok(search.results.some((r) => r.id === live.find((e) => e.text === 'by rooms frame')!.id), 'search finds words in replies')

  // Refusals say why; nothing is written.
  t.equal((await sayJson(app, bob, '/longpolling/room/messages', { text: 'x', replyTo: 9999 })).status, 404, 'a reply to no message: 404')
  t.equal((await sayJson(app, bob, '/longpolling/room/messages', { text: 'x', replyTo: 'abc' })).status, 400, 'a bad id: 400')
  t.equal((await sayJson(app, bob, '/longpolling/room/messages', { text: 'x', replyTo: -1 })).status, 400)
  t.equal((await app.inject({ method: 'GET', url: '/room/messages/9999/thread', headers: { cookie: ann } })).statusCode, 404)
  const deleted = (await sayJson(app, ann, '/longpolling/room/messages', { text: 'soon gone' })).event
  await app.inject({ method: 'POST', url: `/room/messages/${deleted.id}/delete`, headers: { cookie: ann } })
  t.equal((await sayJson(app, bob, '/longpolling/room/messages', { text: 'x', replyTo: deleted.id })).status, 404, 'a reply to a deleted message: 404')
  watcher.close()
  socket.close()
  rooms.close()
})

t.test('a reaction on every way in: one per person per emoji, taken back, the totals in history; bad ones refused', async (t) => {
  const { app, base } = await served(t)
  const ann = await signIn(app, 'ann')
  const bob = await signIn(app, 'bob')
  const root = (await sayJson(app, ann, '/longpolling/room/messages', { text: 'ship it?' })).event
  const watcher = await SocketClient.open(base, ann)
  await watcher.until(() => watcher.hello !== undefined)

  const added = await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: bob }, payload: { emoji: '👍' } })
  t.equal(added.statusCode, 201)
  t.match(added.json(), { type: 'reaction', ref: root.id, emoji: '👍', user: 'bob', action: 'add' })
  const twice = await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: bob }, payload: { emoji: '👍', action: 'add' } })
  t.equal(twice.statusCode, 200, 'adding twice is one: 200, nothing new')
  t.match(twice.json(), { id: root.id, reactions: [{ emoji: '👍', users: ['bob'] }] }, 'answered with the message as it stands')

  const socket = await SocketClient.open(base, ann)
  await socket.until(() => socket.hello !== undefined)
  socket.send({ type: 'react', id: root.id, emoji: '👍', ref: 'r1' })
  await socket.until(() => socket.acks.some((a) => a.ref === 'r1'))
  const rooms = await RoomsClient.open(base, bob)
  rooms.send({ type: 'subscribe', room: 'lobby' })
  await rooms.next((f) => f.type === 'subscribed', 'subscribed')
  rooms.send({ type: 'react', room: 'lobby', id: root.id, emoji: '🎉', ref: 'r2' })
  await rooms.next((f) => f.type === 'ack' && f.ref === 'r2', 'the ack')
  const form = await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: bob, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, payload: 'emoji=%F0%9F%8E%89&action=remove' })
  t.equal(form.statusCode, 303, 'a form takes it back and goes back to the page')

  await watcher.until(() => watcher.events.filter((e) => e.type === 'reaction').length === 4)
  t.same(watcher.events.filter((e) => e.type === 'reaction').map((e) => [e.user, e.emoji, e.action]), [['bob', '👍', 'add'], ['ann', '👍', 'add'], ['bob', '🎉', 'add'], ['bob', '🎉', 'remove']], 'each change reached a live reader once')
  const history = (await app.inject({ method: 'GET', url: '/room/history', headers: { cookie: bob } })).json() as { events: Event[] }
  t.same(history.events.find((e) => e.id === root.id)?.reactions, [{ emoji: '👍', users: ['bob', 'ann'] }], 'history shows the totals as they stand')

  for (const [payload, status, why] of [
    [{ emoji: 'thumbsup' }, 400, 'a word is no emoji'],
    [{ emoji: '👍👍' }, 400, 'two emoji are not one'],
    [{ emoji: '<script>' }, 400, 'markup is no emoji'],
    [{ emoji: '👍', action: 'toggle' }, 400, 'an unknown action'],
    [{}, 400, 'no emoji'],
  ] as const) {
    const res = await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: bob }, payload })
    t.equal(res.statusCode, status, why)
    t.match(res.json(), { error: 'Bad Request', message: /emoji|action/ })
  }
  t.equal((await app.inject({ method: 'POST', url: '/room/messages/9999/reactions', headers: { cookie: bob }, payload: { emoji: '👍' } })).statusCode, 404)
  socket.send({ type: 'react', id: root.id, emoji: 'nope', ref: 'r3' })
  await socket.until(() => socket.errors.some((e) => e.ref === 'r3'))
  t.match(socket.errors.find((e) => e.ref === 'r3'), { error: 'Bad Request' }, 'a bad reaction frame is refused with why; the socket stays open')
  t.equal(socket.closed, undefined)
  t.ok(['👨‍👩‍👧', '🇫🇷', '👍🏽'].every((emoji) => /./u.test(emoji)))
  for (const emoji of ['👨‍👩‍👧', '🇫🇷', '👍🏽']) t.equal((await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: bob }, payload: { emoji } })).statusCode, 201, `${emoji}: a sequence Unicode draws as one is one emoji`)
  watcher.close()
  socket.close()
  rooms.close()
})

t.test("a private room's message, thread and reactions do not exist for a non-member: 404 on every route", async (t) => {
  const app = await buildTestApp(t)
  const ann = await registerAccount(app, 'ann')
  const eve = await signIn(app, 'eve')
  t.equal((await app.inject({ method: 'POST', url: '/rooms', headers: { cookie: ann }, payload: { name: 'secret', visibility: 'private' } })).statusCode, 201)
  const root = (await sayJson(app, ann, '/longpolling/rooms/secret/messages', { text: 'between us' })).event
  t.equal((await sayJson(app, ann, '/longpolling/rooms/secret/messages', { text: 'a reply', replyTo: root.id })).status, 201)
  for (const [method, url, payload] of [
    ['GET', `/rooms/secret/messages/${root.id}`, undefined],
    ['GET', `/rooms/secret/messages/${root.id}/thread`, undefined],
    ['POST', `/rooms/secret/messages/${root.id}/reactions`, { emoji: '👍' }],
    ['POST', '/longpolling/rooms/secret/messages', { text: 'sneaky', replyTo: root.id }],
  ] as const) {
    const res = await app.inject({ method, url, headers: { cookie: eve }, ...(payload && { payload }) })
    t.equal(res.statusCode, 404, `${method} ${url}: 404`)
    t.notMatch(res.body, 'between us')
  }
  const message = (await app.inject({ method: 'GET', url: `/rooms/secret/messages/${root.id}`, headers: { cookie: ann } })).json() as Event
  t.match(message, { replies: 1 }, 'the member reads it')
  t.equal(message.reactions, undefined, "eve's reaction was never written")
})

t.test('a reply and a reaction sent again after a lost answer land once', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann')
  const root = (await sayJson(app, ann, '/longpolling/room/messages', { text: 'root' })).event
  const body = { text: 'once only', replyTo: root.id, clientId: 'reply-once-1' }
  const first = await sayJson(app, ann, '/longpolling/room/messages', body)
  const again = await sayJson(app, ann, '/sse/room/messages', body)
  t.equal(first.status, 201)
  t.equal(again.status, 200, 'the resend answers the first event')
  t.equal(again.event.id, first.event.id)
  for (let i = 0; i < 3; i++) await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: ann }, payload: { emoji: '🚀' } })
  const history = (await app.inject({ method: 'GET', url: '/room/history', headers: { cookie: ann } })).json() as { events: Event[] }
  t.equal(history.events.filter((e) => e.text === 'once only').length, 1, 'the reply is in the log once')
  t.equal(history.events.filter((e) => e.type === 'reaction').length, 1, 'the reaction once')
  t.match(history.events.find((e) => e.id === root.id), { replies: 1, reactions: [{ emoji: '🚀', users: ['ann'] }] })
})

t.test('SQLite: replies and reactions outlast a restart of the server', async (t) => {
  const dir = tempDir(t)
  const first = await buildTestApp(t, { STORE: 'sqlite', DATA_DIR: dir })
  const ann = await signIn(first, 'ann')
  const root = (await sayJson(first, ann, '/longpolling/room/messages', { text: 'kept' })).event
  await sayJson(first, ann, '/longpolling/room/messages', { text: 'kept reply', replyTo: root.id })
  await first.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: ann }, payload: { emoji: '✅' } })
  await first.close()
  const second = await buildTestApp(t, { STORE: 'sqlite', DATA_DIR: dir })
  const again = await signIn(second, 'ann')
  const message = (await second.inject({ method: 'GET', url: `/room/messages/${root.id}`, headers: { cookie: again } })).json() as Event
  t.match(message, { replies: 1, reactions: [{ emoji: '✅', users: ['ann'] }] })
  const thread = (await second.inject({ method: 'GET', url: `/room/messages/${root.id}/thread`, headers: { cookie: again } })).json() as { replies: Event[] }
  t.same(thread.replies.map((e) => e.text), ['kept reply'])
})

t.test('two processes: a reply and a reaction made on A reach a reader on B live, and B reads them as they stand', { skip: noCluster }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const ann = await signInAt(a.base, 'ann')
  const bob = await signInAt(b.base, 'bob')
  const root = (await (await post(a.base, ann, '/longpolling/room/messages', { text: 'cross' })).json()) as Event
  const reader = await SocketClient.open(b.base, bob)
  await reader.until(() => reader.hello !== undefined)
  await post(a.base, ann, '/longpolling/room/messages', { text: 'from A', replyTo: String(root.id) })
  await post(a.base, ann, `/room/messages/${root.id}/reactions`, { emoji: '👀' })
  await reader.until(() => reader.events.some((e) => e.type === 'reaction'))
  t.match(reader.events.find((e) => e.text === 'from A'), { replyTo: root.id, thread: root.id })
  const seen = (await (await fetch(`${b.base}/room/messages/${root.id}`, { headers: { cookie: bob } })).json()) as Event
  t.match(seen, { replies: 1, reactions: [{ emoji: '👀', users: ['ann'] }] }, "B's window and store agree with A's")
  reader.close()
})

t.test('a message takes at most 20 kinds of reaction, and 10 of one person: past that, 400 saying why', async (t) => {
  const app = await buildTestApp(t, { RATE_LIMIT_MESSAGES: '1000' })
  const ann = await signIn(app, 'ann')
  const root = (await sayJson(app, ann, '/longpolling/room/messages', { text: 'react away' })).event
  const emoji = ['😀', '😃', '😄', '😁', '😆', '😅', '😂', '🙂', '🙃', '😉', '😊', '😇', '🥰', '😍', '🤩', '😘', '😗', '😚', '😙', '😋', '😛']
  const react = (cookie: string, e: string) => app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie }, payload: { emoji: e } })
  for (const e of emoji.slice(0, 10)) t.equal((await react(ann, e)).statusCode, 201)
  const eleventh = await react(ann, emoji[10]!)
  t.equal(eleventh.statusCode, 400, 'an eleventh of hers: refused')
  t.match(eleventh.json(), { message: /At most 10 reactions of yours/ })
  const others = await Promise.all(['bob', 'cat'].map((n) => signIn(app, n)))
  for (const e of emoji.slice(10, 20)) t.equal((await react(others[0]!, e)).statusCode, 201)
  const kinds = await react(others[1]!, emoji[20]!)
  t.equal(kinds.statusCode, 400, 'a 21st kind: refused')
  t.match(kinds.json(), { message: /at most 20 different reactions/ })
  t.equal((await react(others[1]!, emoji[0]!)).statusCode, 201, 'one of those already on it is fine')
})

t.test('the page without JavaScript: quotes, a thread kept out of the room, its own page with a reply form, reactions as buttons, a file drawn at its size', async (t) => {
  const { app, base } = await served(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const bob = await signIn(app, 'bob', 'refresh')
  const page = async (cookie: string, url: string) => (await app.inject({ method: 'GET', url, headers: { cookie, accept: 'text/html' } })).body
  const root = (await sayJson(app, ann, '/longpolling/room/messages', { text: 'lunch **today**?' })).event
  await sayJson(app, bob, '/longpolling/room/messages', { text: 'only in the thread', replyTo: root.id })
  const shown = (await sayJson(app, bob, '/longpolling/room/messages', { text: 'noon, in the room', replyTo: root.id, alsoToRoom: true })).event
  await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: bob }, payload: { emoji: '🍕' } })
  const form = new FormData()
  form.set('file', new Blob([new Uint8Array(await (await import('sharp')).default({ create: { width: 720, height: 480, channels: 3, background: '#123456' } }).png().toBuffer())]), 'menu.png')
  const file = (await (await fetch(`${base}/room/files`, { method: 'POST', headers: { cookie: ann, origin: base }, body: form })).json()) as Event
  await sayJson(app, bob, '/longpolling/room/messages', { text: 'looks good', replyTo: file.id, alsoToRoom: true })

  const room = await page(ann, '/refresh/room')
  t.notMatch(room, 'only in the thread', 'a reply kept in its thread is no line of the room')
  t.match(room, `<a class="replies" href="/refresh/room/threads/${root.id}"`, "the thread's first message links its page")
  t.match(room, /2 replies/)
  t.match(room, /<a class="quote" href="#m\d+"[^>]*><span class="visually-hidden">In reply to <\/span><span class="user">you<\/span> <span class="line">lunch today\?<\/span>/, 'a reply quotes the first line, without its marks')
  t.match(room, /<span class="user">you<\/span> <span class="line">📎 menu.png<\/span>/, "a reply to a file quotes the file's name")
  t.match(room, /<button type="submit" class="reaction" aria-pressed="false" title="bob reacted with 🍕"/, 'a reaction is a button that adds one\'s own')
  t.match(room, new RegExp(`<img src="/room/files/${file.file!.id}/thumbnail" width="360" height="240" alt="menu.png"`), 'the picture at its thumbnail size, known before it loads')
  t.match(await page(bob, '/refresh/room'), /class="reaction mine" aria-pressed="true"/, "bob's own reaction is pressed, to take it back")

  const thread = await page(ann, `/refresh/room/threads/${shown.id}`)
  t.match(thread, 'only in the thread', "the thread's page shows every reply, a reply's id names its thread")
  t.match(thread, 'noon, in the room')
  t.match(thread, `<input type="hidden" name="replyTo" value="${root.id}">`)
  t.match(thread, /<input type="checkbox" name="alsoToRoom" value="on"> Also send to the room/)
  t.equal((await app.inject({ method: 'GET', url: '/refresh/room/threads/9999', headers: { cookie: ann, accept: 'text/html' } })).statusCode, 404)
  const sent = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie: ann, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }, payload: new URLSearchParams({ message: 'see you there', replyTo: String(root.id), back: `/refresh/room/threads/${root.id}` }).toString() })
  t.equal(sent.statusCode, 303)
  t.equal(sent.headers.location, `/refresh/room/threads/${root.id}`, 'a reply from the thread page goes back to it')
  t.match(await page(ann, `/refresh/room/threads/${root.id}`), 'see you there')

  // The page's script: a reaction is the message as it stands, to put in place.
  const epoch = /data-epoch="([^"]+)"/.exec(room)![1]!
  const lastId = Number(/data-last-id="(\d+)"/.exec(room)![1])
  await app.inject({ method: 'POST', url: `/room/messages/${root.id}/reactions`, headers: { cookie: ann }, payload: { emoji: '🍕' } })
  const fragment = await page(ann, `/refresh/room/thread?lastReceived=${lastId}&epoch=${epoch}`)
  t.match(fragment, new RegExp(`<div class="change" data-id="\\d+" data-ref="${root.id}" data-change="message" hidden>`), 'a change row carries the message')
  t.match(fragment, /title="bob and you reacted with 🍕"/, 'as it stands now')
})
