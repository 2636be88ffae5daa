import type { FastifyInstance } from 'fastify'
import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { threadRows } from '../app/transport/thread.js'
import { buildTestApp, signIn, registerAccount as account } from './helpers.js'

// Issue 24 on the pages the server draws: edited and deleted messages, folded join and leave
// lines, the forms that edit and delete one's own messages without JavaScript, a send posted
// once, and the search page.

const html = { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }

/** A form as a browser without JavaScript posts it. */
const submit = (app: FastifyInstance, cookie: string, url: string, fields: Record<string, string>) =>
  app.inject({ method: 'POST', url, headers: { cookie, ...html }, payload: new URLSearchParams(fields).toString() })

const page = (app: FastifyInstance, cookie: string, url: string) => app.inject({ method: 'GET', url, headers: { cookie, accept: 'text/html' } })

/** The row of message `id` on a page, from its opening tag to the next row. */
function rowOf(body: string, id: number): string {
  const start = body.indexOf(`id="m${id}"`)
  if (start < 0) return ''
  const from = body.lastIndexOf('<div class="message', start)
  const next = body.slice(start).search(/<div class="(message|notice)|<\/div>\s*<button type="button" class="new-pill"/)
  return body.slice(from, next < 0 ? undefined : start + next)
}

/** A form's action and fields as the page drew them (the first form whose action ends so). */
function formOf(row: string, ending: string): { action: string; fields: Record<string, string> } | undefined {
  const match = new RegExp(`<form method="post" action="([^"]*${ending})">([\\s\\S]*?)</form>`).exec(row)
  if (!match) return undefined
  const fields: Record<string, string> = {}
  for (const input of match[2]!.matchAll(/<input type="hidden" name="(\w+)" value="([^"]*)">/g)) fields[input[1]!] = input[2]!.replace(/&amp;/g, '&')
  const textarea = /<textarea name="(\w+)"[^>]*>([\s\S]*?)<\/textarea>/.exec(match[2]!)
  if (textarea) fields[textarea[1]!] = textarea[2]!
  return { action: match[1]!, fields }
}

/** Says a message as a program would (JSON back); returns its id. */
async function say(app: FastifyInstance, cookie: string, text: string, url = '/refresh/room'): Promise<number> {
  const res = await app.inject({ method: 'POST', url, headers: { cookie, accept: 'application/json' }, payload: { message: text } })
  if (res.statusCode !== 201) throw new Error(`say: ${res.statusCode} ${res.body}`)
  return (res.json() as Event).id
}

t.test('an edited message shows its new text marked "(edited)"; a deleted one "message deleted", its text nowhere', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const bob = await signIn(app, 'bob', 'refresh')
  await page(app, ann, '/refresh/room')
  const first = await say(app, ann, 'the frist draft')
  const secret = await say(app, ann, 'my password is hunter2')
  const kept = await say(app, bob, 'see https://example.com/notes')
  t.equal((await app.inject({ method: 'POST', url: `/room/messages/${first}/edit`, headers: { cookie: ann }, payload: { text: 'the first draft' } })).statusCode, 201)
  t.equal((await app.inject({ method: 'POST', url: `/room/messages/${secret}/delete`, headers: { cookie: ann } })).statusCode, 201)

  for (const [who, cookie] of [['ann', ann], ['bob', bob]] as const) {
    const room = await page(app, cookie, '/refresh/room')
    t.equal(room.statusCode, 200)
    const edited = rowOf(room.body, first)
    t.match(edited, /<div class="text">the first draft<\/div> <span class="edited" data-ts="\d+" title="Edited [^"]+ UTC">\(edited\)<\/span>/, `${who}: the new text, marked (edited) with when`)
    t.notMatch(room.body, /frist/, `${who}: the old text is gone`)
    t.match(rowOf(room.body, secret), /class="message[^"]* deleted"[\s\S]*<p class="gone">message deleted<\/p>/, `${who}: "message deleted" in its place`)
    t.notMatch(room.body, /hunter2/, `${who}: the deleted text is nowhere on the page`)
    t.notMatch(room.body, /class="change"|data-ref=/, `${who}: edits and deletions are no lines of their own`)
    for (const id of [first, secret, kept]) t.match(room.body, new RegExp(`<div class="message[^"]*" data-id="${id}" [^>]*id="m${id}">`), `${who}: message ${id} is anchored as #m${id}`)
    t.notMatch(rowOf(room.body, kept), /\(edited\)/, `${who}: an unchanged message is not marked`)
    // The thread is one Tab stop: its links are none.
    t.match(room.body, /<div class="thread" id="thread" role="log" aria-label="Messages" tabindex="0">/)
    t.match(rowOf(room.body, kept), /<a href="https:\/\/example.com\/notes" rel="noopener noreferrer nofollow" target="_blank" tabindex="-1">/)
  }

  // The page's script gets the edit and the deletion of messages it already shows, to apply them there.
  const last = await say(app, bob, 'one more')
  const edit = (await app.inject({ method: 'POST', url: `/room/messages/${last}/edit`, headers: { cookie: bob }, payload: { text: 'one more, <b>edited</b>' } })).json() as Event
  const removal = (await app.inject({ method: 'POST', url: `/room/messages/${kept}/delete`, headers: { cookie: bob } })).json() as Event
  const fragment = await page(app, ann, `/refresh/room/thread?lastReceived=${last}&epoch=${app.chatroom.epoch}`)
  t.match(fragment.body, `<div class="change" data-id="${edit.id}" data-ref="${last}" data-change="edit" hidden><div class="text">one more, &lt;b&gt;edited&lt;/b&gt;</div><span class="edited" data-ts="${edit.timestamp}"`)
  t.match(fragment.body, `<div class="change" data-id="${removal.id}" data-ref="${kept}" data-change="delete" hidden></div>`)
  t.match(fragment.body, `data-last-id="${removal.id}"`, 'the cursor moves past them')
  t.notMatch(fragment.body, /example\.com\/notes/, 'a deleted message\'s text never travels again')
})

t.test('consecutive joins and leaves are one line, in the page and in what the page script fetches', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  await page(app, ann, '/refresh/room')
  await say(app, ann, 'hello')
  for (const name of ['bob', 'cy', 'dan']) await app.chatroom.join(name)
  await app.chatroom.left('eve')
  await say(app, ann, 'welcome all')
  for (const name of ['f1', 'f2', 'f3', 'f4', 'f5']) await app.chatroom.join(name)
  const room = await page(app, ann, '/refresh/room')
  const notices = [...room.body.matchAll(/<div class="notice"[^>]*>([\s\S]*?)<\/div>/g)].map((m) => m[1]!.replace(/<time[^>]*>.*?<\/time>/, '').replace(/<[^>]+>/g, '').trim())
  t.same(notices, ['you joined', 'bob, cy and dan joined · eve left', 'f1, f2 and 3 others joined'], 'three lines for ten joins and leaves')
  t.match(room.body, /<div class="notice"[^>]*data-joined="\[&quot;f1&quot;,&quot;f2&quot;,&quot;f3&quot;,&quot;f4&quot;,&quot;f5&quot;\]" data-left="\[\]" title="Joined: f1, f2, f3, f4, f5.">/, 'everyone named in its title')
  t.match(room.body, /<span class="user">bob<\/span>, <span class="user">cy<\/span> and <span class="user">dan<\/span> joined · <span class="user">eve<\/span> left/)

  // The fetch after a cursor: its joins and leaves folded too (the script folds them onto the line before).
  const cursor = app.chatroom.lastId
  await app.chatroom.left('bob')
  await app.chatroom.left('cy')
  const fragment = await page(app, ann, `/refresh/room/thread?lastReceived=${cursor}&epoch=${app.chatroom.epoch}`)
  t.equal([...fragment.body.matchAll(/<div class="notice"/g)].length, 1)
  t.match(fragment.body, /<span class="user">bob<\/span> and <span class="user">cy<\/span> left/)
  t.match(fragment.body, `data-id="${cursor + 2}"`, 'the line\'s id is its last event\'s (the script\'s cursor)')

  // The rule itself: a new day or a message ends a line; one person is named once.
  const day = Date.UTC(2026, 10, 27, 23, 59)
  let id = 0
  const ev = (type: Event['type'], user: string, at: number): Event => ({ id: ++id, type, user, timestamp: at, ...(type === 'message' && { text: 'x' }) })
  const rows = threadRows([ev('join', 'a', day), ev('leave', 'a', day), ev('join', 'a', day), ev('join', 'b', day + 120_000), ev('message', 'b', day + 121_000), ev('leave', 'me', day + 122_000)], 'me')
  t.same(rows.map((r) => [r.kind, r.words.map((w) => w.text).join('')]), [
    ['notice', 'a joined · a left'],
    ['notice', 'b joined the room'],
    ['message', ''],
    ['notice', 'you left'],
  ])
  t.same(rows.map((r) => r.event.id), [3, 4, 5, 6])
})

t.test('one\'s own message is edited and deleted by plain forms; another\'s has none, and a forged post is refused', async (t) => {
  const app = await buildTestApp(t, { MAX_MESSAGE_LENGTH: '50' })
  const ann = await signIn(app, 'ann', 'refresh')
  const bob = await signIn(app, 'bob', 'refresh')
  await page(app, ann, '/refresh/room')
  const mine = await say(app, ann, 'teh typo')
  const doomed = await say(app, ann, 'sent to the wrong room')
  const theirs = await say(app, bob, 'bob\'s own words')

  const room = await page(app, ann, '/refresh/room')
  const edit = formOf(rowOf(room.body, mine), '/edit')
  const remove = formOf(rowOf(room.body, doomed), '/delete')
  t.same(edit, { action: `/room/messages/${mine}/edit`, fields: { back: '/refresh/room', text: 'teh typo' } }, 'Edit: the text to change, and the way back')
  t.same(remove, { action: `/room/messages/${doomed}/delete`, fields: { back: '/refresh/room' } })
  t.match(rowOf(room.body, mine), /<details class="edit"><summary>[\s\S]*<textarea name="text" rows="2" required aria-label/)
  t.notMatch(rowOf(room.body, mine), /maxlength/, 'no maxlength: a long paste is refused by the server with the reason, never cut')
  // Everyone's message has React and Reply (issue 32); only one's own has Edit and Delete.
  t.notMatch(rowOf(room.body, theirs), /own-forms|\/edit"|\/delete"/, 'someone else\'s message has no Edit or Delete')
  t.notMatch(rowOf((await page(app, bob, '/refresh/room')).body, mine), /own-forms|\/edit"|\/delete"/, 'nor has ann\'s, for bob')
  t.match(rowOf(room.body, theirs), /<details class="reply">/, 'but a Reply form, as every message')

  const saved = await submit(app, ann, edit!.action, { ...edit!.fields, text: 'the typo, fixed' })
  t.equal(saved.statusCode, 303)
  t.equal(saved.headers.location, '/refresh/room')
  const deleted = await submit(app, ann, remove!.action, remove!.fields)
  t.equal(deleted.statusCode, 303)
  const after = await page(app, ann, saved.headers.location as string)
  t.match(rowOf(after.body, mine), /<div class="text">the typo, fixed<\/div> <span class="edited"/)
  t.match(rowOf(after.body, doomed), /message deleted/)
  t.notMatch(rowOf(after.body, doomed), /<form/, 'a deleted message has nothing left to edit')
  t.notMatch(after.body, /wrong room|teh typo/)

  // bob's message, with ann's forms forged: 403; no such message: 404; bob's text stands.
  const forged = await submit(app, ann, `/room/messages/${theirs}/edit`, { text: 'bob never said this', back: '/refresh/room' })
  t.equal(forged.statusCode, 403)
  t.match(forged.body, /<!doctype html>/i, 'an error page')
  t.equal((await submit(app, ann, `/room/messages/${theirs}/delete`, { back: '/refresh/room' })).statusCode, 403)
  t.equal((await submit(app, ann, '/room/messages/9999/delete', { back: '/refresh/room' })).statusCode, 404)
  t.match((await page(app, bob, '/refresh/room')).body, /bob&#39;s own words|bob's own words/)

  // In another room, the forms go to that room's routes.
  await app.inject({ method: 'POST', url: '/rooms', headers: { cookie: ann }, payload: { name: 'dev' } })
  await page(app, ann, '/refresh/rooms/dev')
  const devMessage = await say(app, ann, 'in dev', '/refresh/rooms/dev')
  const dev = await page(app, ann, '/refresh/rooms/dev')
  t.same(formOf(rowOf(dev.body, devMessage), '/delete'), { action: `/rooms/dev/messages/${devMessage}/delete`, fields: { back: '/refresh/rooms/dev' } })
  t.match(dev.body, /data-base="\/refresh\/rooms\/dev" data-room="dev"/, 'the page script knows its room')
  const gone = await submit(app, ann, `/rooms/dev/messages/${devMessage}/delete`, { back: '/refresh/rooms/dev' })
  t.equal(gone.headers.location, '/refresh/rooms/dev')
  t.match(rowOf((await page(app, ann, '/refresh/rooms/dev')).body, devMessage), /message deleted/)
})

t.test('a page of history: the forms come back to that page, at the message', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  await page(app, ann, '/refresh/room')
  const old = await say(app, ann, 'an old message')
  for (let i = 0; i < 5; i++) await say(app, ann, `later ${i}`)
  const url = `/refresh/room?before=${old + 3}&epoch=${app.chatroom.epoch}`
  const history = await page(app, ann, url)
  t.equal(history.statusCode, 200)
  const form = formOf(rowOf(history.body, old), '/edit')
  t.equal(form?.fields.back, `${url}#m${old}`)
  const saved = await submit(app, ann, form!.action, { ...form!.fields, text: 'an old message, edited' })
  t.equal(saved.headers.location, `${url}#m${old}`)
  t.match(rowOf((await page(app, ann, url)).body, old), /an old message, edited/)
})

t.test('the send form carries a message id made for it: submitted twice, posted once', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const room = await page(app, ann, '/refresh/room')
  const clientId = /<input type="hidden" name="clientId" value="([\w-]{8,64})" form="say">/.exec(room.body)?.[1]
  t.ok(clientId, 'the form has a clientId')
  t.match(room.body, /<form class="say" id="say"/, 'the form the field belongs to')
  const before = app.chatroom.lastId
  const first = await submit(app, ann, '/refresh/room', { message: 'only once, please', clientId: clientId! })
  const again = await submit(app, ann, '/refresh/room', { message: 'only once, please', clientId: clientId! })
  t.equal(first.statusCode, 303)
  t.equal(again.statusCode, 303, 'the second submit comes back to the page too')
  t.equal(app.chatroom.lastId, before + 1, 'one message')
  const next = await page(app, ann, '/refresh/room')
  t.equal([...next.body.matchAll(/<div class="text">only once, please<\/div>/g)].length, 1)
  const nextId = /name="clientId" value="([\w-]+)"/.exec(next.body)?.[1]
  t.ok(nextId && nextId !== clientId, 'the next page\'s form has a new one')
  await submit(app, ann, '/refresh/room', { message: 'a second message', clientId: nextId! })
  t.equal(app.chatroom.lastId, before + 2)
  // A refused message comes back with the draft and a new id (a fixed draft is a new message).
  const refused = await submit(app, ann, '/refresh/room', { message: '   ', clientId: 'refused-id-1' })
  t.equal(refused.statusCode, 400)
  t.notMatch(refused.body, /value="refused-id-1"/)
})

t.test('the search page: the words marked, every text escaped, each result a link to the message in its room', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const bob = await signIn(app, 'bob', 'refresh')
  await page(app, ann, '/refresh/room')
  const hostile = await say(app, bob, '<img src=x onerror=alert(1)> alerts & <b>bold</b>')
  const plain = await say(app, ann, 'Deploy the release on Friday')
  await say(app, ann, 'nothing to see')
  const edited = await say(app, ann, 'the release notes are drafted')
  await app.inject({ method: 'POST', url: `/room/messages/${edited}/edit`, headers: { cookie: ann }, payload: { text: 'the release notes are ready' } })

  const found = await page(app, ann, '/search?q=release')
  t.equal(found.statusCode, 200)
  t.match(found.body, /<title>Search: release · Chat<\/title>/)
  t.match(found.body, /<input id="search-q" name="q" type="search" maxlength="200" value="release"/, 'the words stay in the box')
  t.match(found.body, /2 messages, newest first\./)
  t.match(found.body, /Deploy the <mark>release<\/mark> on Friday/)
  t.match(found.body, /the <mark>release<\/mark> notes are ready<\/p>/)
  t.match(found.body, /<span class="edited" title="Edited [^"]+">\(edited\)<\/span>/)
  t.match(found.body, new RegExp(`<a class="result-link" href="/refresh/room\\?before=${plain + 10}&amp;epoch=${app.chatroom.epoch}#m${plain}" data-live="/auto/room#m${plain}"><span class="result-room">Lobby</span> <span class="result-user">ann</span> <time datetime="`))
  t.notMatch(found.body, /nothing to see/)

  // The last word is a beginning; the others whole words; case aside.
  t.match((await page(app, ann, '/search?q=DEPLOY+rel')).body, /<mark>Deploy<\/mark> the <mark>release<\/mark> on Friday/)

  const escaped = await page(app, ann, '/search?q=alert')
  t.match(escaped.body, '&lt;img src=x onerror=<mark>alert</mark>(1)&gt; <mark>alerts</mark> &amp; &lt;b&gt;bold&lt;/b&gt;', 'escaped, with the marks around the words only')
  t.notMatch(escaped.body, /<img src=x|<b>bold/, 'never the message\'s markup')
  t.notMatch((await page(app, ann, '/search?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E')).body, /<script>alert/, 'nor the words\' markup')

  // The link shows the message, anchored, on its page of the room.
  const link = /<a class="result-link" href="([^"]+)"/.exec(escaped.body)![1]!.replace(/&amp;/g, '&')
  const context = await page(app, ann, link.split('#')[0]!)
  t.equal(context.statusCode, 200)
  t.match(context.body, new RegExp(`id="m${hostile}"`))

  const none = await page(app, ann, '/search?q=zebra')
  t.match(none.body, /<p class="search-summary none" role="status">No messages found\.<\/p>/)
  t.notMatch(none.body, /<ol class="search-results">/)
  const empty = await page(app, ann, '/search')
  t.match(empty.body, /Type a few words/)
  t.match(empty.body, /<input id="search-q" name="q" type="search" maxlength="200" value="" placeholder="What was said" autofocus>/)

  // Filters: a person, and dates (type=date inputs: since is `after`, before is `before`).
  t.match((await page(app, ann, '/search?q=release&user=bob')).body, /No messages found/)
  const day = new Date().toISOString().slice(0, 10)
  const filtered = await page(app, ann, `/search?q=release&user=ann&after=2020-01-01&before=2999-01-01`)
  t.match(filtered.body, /2 messages/)
  t.match(filtered.body, /<input id="search-user" name="user" maxlength="64" value="ann"/)
  t.match(filtered.body, /<input id="search-after" name="after" type="date" value="2020-01-01">/)
  t.match(filtered.body, /<input id="search-before" name="before" type="date" value="2999-01-01">/)
  t.match((await page(app, ann, `/search?q=release&before=${day}T00:00:00Z&after=2020-01-01`)).body, /No messages found/, 'before today: none')
})

t.test('the search form as a browser sends it, its empty fields too', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  await say(app, ann, 'a release today')
  const res = await page(app, ann, '/search?q=release&user=&after=&before=')
  t.equal(res.statusCode, 200)
  t.match(res.body, /1 message, newest first/)
})

t.test('the search never shows a private room to someone not in it', async (t) => {
  const app = await buildTestApp(t)
  const alice = await account(app, 'alice')
  const mallory = await account(app, 'mallory')
  const guest = await signIn(app, 'gus', 'refresh')
  t.equal((await app.inject({ method: 'POST', url: '/rooms', headers: { cookie: alice }, payload: { name: 'secret', visibility: 'private' } })).statusCode, 201)
  await say(app, alice, 'launch codes are 0000', '/refresh/rooms/secret')
  await say(app, alice, 'launch party in the lobby')

  const own = await page(app, alice, '/search?q=launch')
  t.match(own.body, /2 messages/)
  t.match(own.body, /<span class="result-room">#secret<\/span>/, 'a member finds it')
  for (const [who, cookie] of [['mallory', mallory], ['a guest', guest]] as const) {
    const res = await page(app, cookie, '/search?q=launch')
    t.match(res.body, /1 message, newest first/, `${who}: the lobby's only`)
    t.notMatch(res.body, /codes|#secret/, `${who}: nothing of the private room`)
    t.equal((await page(app, cookie, '/search?q=launch&room=secret')).statusCode, 404, `${who}: the room does not exist for them`)
  }
})

t.test('the top bar has Search for people signed in, not for strangers', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const link = /<a class="search-link" href="\/search" title="Search messages"( aria-current="page")?>/
  t.match((await page(app, ann, '/refresh/room')).body, link)
  t.notMatch((await page(app, ann, '/refresh/room')).body, /class="search-link"[^>]*aria-current/)
  t.match((await page(app, ann, '/search')).body, /<a class="search-link" href="\/search" title="Search messages" aria-current="page">/)
  const stranger = await app.inject({ method: 'GET', url: '/' })
  t.notMatch(stranger.body, /search-link/)
  t.match(stranger.body, /<link rel="stylesheet" href="\/public\/css\/chat.css">\s*<link rel="stylesheet" href="\/public\/css\/pages.css">/)
  const css = await app.inject({ method: 'GET', url: '/public/css/pages.css' })
  t.equal(css.statusCode, 200)
  t.match(css.body, /:target/)
  t.equal((await app.inject({ method: 'GET', url: '/search', headers: { accept: 'text/html' } })).statusCode, 303, 'a stranger is sent to sign in')
})

t.test('the search and account pages lead back to the room page one came from', async (t) => {
  const app = await buildTestApp(t)
  const cookie = await account(app, 'ann')
  const get = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers: { cookie, accept: 'text/html', host: 'chat.test', ...headers } })
  const fromDev = { referer: 'http://chat.test/websocket/rooms/dev' }
  t.match((await get('/search', fromDev)).body, /<a href="\/websocket\/rooms\/dev">← Back to #dev<\/a>/, 'search: back to #dev (its Referer)')
  t.match((await get('/search', fromDev)).body, /<input type="hidden" name="from" value="\/websocket\/rooms\/dev">/, 'and a search from there keeps the way back')
  t.match((await get('/search?q=x&from=%2Fauto%2Froom')).body, /<a href="\/auto\/room">← Back to the lobby<\/a>/, 'a search keeps it (from=)')
  t.match((await get('/account', { referer: 'http://chat.test/sse/rooms/dm-0123456789abcdef' })).body, /<a href="\/sse\/rooms\/dm-0123456789abcdef">← Back to the conversation<\/a>/, 'account: back to the DM')
  for (const [what, headers] of [
    ['another site', { referer: 'https://evil.example/websocket/rooms/dev' }],
    ['a page that is not a room', { referer: 'http://chat.test/account' }],
    ['nothing', {}],
  ] as const) t.notMatch((await get('/search', headers)).body, /← Back to/, `${what}: no way back offered`)
  t.notMatch((await get('/search?from=https%3A%2F%2Fevil.example%2F')).body, /← Back to/, 'a from= that is not a room page of this site: none')

  // The account page's forms keep the way back: their answers (a notice, an error) lead back too.
  const accountPage = (await get('/account', fromDev)).body
  t.match(accountPage, /<form method="post" action="\/account\/password\?from=%2Fwebsocket%2Frooms%2Fdev"/, "the password form says where the page came from")
  const post = (url: string, payload: Record<string, string>) =>
    app.inject({ method: 'POST', url, payload, headers: { cookie, accept: 'text/html', host: 'chat.test', origin: 'http://chat.test', referer: 'http://chat.test/account' } })
  const wrong = await post('/account/password?from=%2Fwebsocket%2Frooms%2Fdev', { current: 'not the password', password: 'a new long enough password' })
  t.match(wrong.body, /role="alert"/, 'a wrong current password: said on the page')
  t.match(wrong.body, /<a href="\/websocket\/rooms\/dev">← Back to #dev<\/a>/, 'which still leads back to #dev')
  const changed = await post('/account/password?from=%2Fwebsocket%2Frooms%2Fdev', { current: 'a long enough password', password: 'a new long enough password' })
  t.equal(changed.statusCode, 303)
  t.equal(changed.headers.location, '/account?done=password&from=%2Fwebsocket%2Frooms%2Fdev', 'changed: back to the account page, the way back kept')
  const after = (await get(String(changed.headers.location))).body
  t.match(after, /Your password is changed/)
  t.match(after, /<a href="\/websocket\/rooms\/dev">← Back to #dev<\/a>/, 'and the page it lands on leads back to #dev')
  const noWay = await post('/account/sessions/end', { all: 'others' })
  t.equal(noWay.headers.location, '/account?done=others', 'a form of a page with no way back: none made up')
})
