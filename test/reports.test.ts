import t from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { registerAccount, RoomsClient, post, served, signInAt } from './helpers.js'

// Reports: anyone who may read a room reports a message to its moderators, with a reason; the
// moderators see the open reports of the room in one list (the message, its author, who reported
// it and why) and act from it (delete the message, or dismiss the reports); each reporter is told
// on their own stream when it is handled. Nobody else sees who reported what.

async function dev(t: Parameters<typeof served>[0]) {
  const { app, base } = await served(t, { RATE_LIMIT_MESSAGES: '1000', REPORTS_PER_HOUR: '5' })
  const [ann, bob, cat] = await Promise.all(['ann', 'bob', 'cat'].map((name) => registerAccount(app, name)))
  await post(base, ann!, '/rooms', { name: 'dev' })
  for (const cookie of [bob!, cat!]) await post(base, cookie, '/rooms/dev/join')
  const said = async (cookie: string, text: string) => ((await (await post(base, cookie, '/longpolling/rooms/dev/messages', { text })).json()) as Event).id
  return { app, base, ann: ann!, bob: bob!, cat: cat!, said }
}

const list = async (base: string, cookie: string, room = 'dev') => {
  const res = await fetch(`${base}${room === 'lobby' ? '/room' : `/rooms/${room}`}/reports`, { headers: { cookie } })
  return { status: res.status, body: (await res.json()) as { reports?: { id: number; user: string; text?: string; reports: { user: string; reason: string; at: number }[] }[]; message?: string } }
}

t.test('a member reports a message; the moderators see it with who and why; a delete handles it and the reporter is told on their stream', async (t) => {
  const { base, ann, bob, cat, said } = await dev(t)
  const spam = await said(cat, 'buy cheap watches')
  const bobs = await RoomsClient.open(base, bob, '?follow=me')
  t.teardown(() => bobs.close())
  await bobs.next((f) => f.type === 'subscribed' && f.room === 'dev', 'bob follows his rooms')
  const first = await post(base, bob, `/rooms/dev/messages/${spam}/report`, { reason: 'spam' })
  t.equal(first.status, 201, 'reported')
  t.same(await first.json(), { reported: true })
  t.equal((await post(base, bob, `/rooms/dev/messages/${spam}/report`, { reason: 'spam!' })).status, 200, 'twice: the same open report')
  t.equal((await list(base, bob)).status, 403, 'a member does not see the reports')
  t.equal((await list(base, cat)).status, 403, 'nor does the author')
  const seen = await list(base, ann)
  t.equal(seen.status, 200, "the room's owner does")
  t.same(seen.body.reports, [{ id: spam, user: 'cat', text: 'buy cheap watches', reports: [{ user: 'bob', reason: 'spam', at: seen.body.reports![0]!.reports[0]!.at }] }], 'the message, its author, who reported it and why')
  t.equal((await post(base, ann, '/rooms/dev/moderation', { action: 'delete', id: String(spam), reason: 'spam' })).status, 200, 'she deletes it from the list')
  t.same((await list(base, ann)).body.reports, [], 'no open report left')
  t.ok(
    await bobs.until(() => bobs.events('me').some((e) => e.type === 'person' && e.kind === 'handled' && e.room === 'dev' && e.at === spam && e.user === 'ann')),
    'bob is told on his stream that his report was handled, and by whom',
  )
  t.equal((await post(base, bob, `/rooms/dev/messages/${spam}/report`, { reason: 'x' })).status, 404, 'a deleted message cannot be reported')
})

t.test('dismissing: the reports are closed with nothing done, reporters told; only moderators may', async (t) => {
  const { base, ann, bob, cat, said } = await dev(t)
  const id = await said(cat, 'a strong opinion')
  await post(base, bob, `/rooms/dev/messages/${id}/report`, { reason: 'I disagree' })
  t.equal((await post(base, bob, `/rooms/dev/reports/${id}/dismiss`)).status, 403, 'a member cannot dismiss')
  const dismissed = await post(base, ann, `/rooms/dev/reports/${id}/dismiss`)
  t.equal(dismissed.status, 200)
  t.same(await dismissed.json(), { handled: 1 })
  t.same((await list(base, ann)).body.reports, [], 'closed')
  t.same(await (await post(base, ann, `/rooms/dev/reports/${id}/dismiss`)).json(), { handled: 0 }, 'twice: nothing more')
})

t.test('bad reports: a message that is not there, a room one cannot read, a long reason, too many; guests report in the lobby', async (t) => {
  const { base, ann, bob, cat, said } = await dev(t)
  const id = await said(cat, 'hello')
  t.equal((await post(base, bob, '/rooms/dev/messages/9999/report', { reason: 'x' })).status, 404, 'no such message')
  t.equal((await post(base, bob, '/rooms/dev/messages/abc/report', { reason: 'x' })).status, 404, 'not an id')
  t.equal((await post(base, bob, `/rooms/dev/messages/${id}/report`, { reason: 'x'.repeat(201) })).status, 400, 'a reason past 200 characters')
  await post(base, ann, '/rooms', { name: 'secret', visibility: 'private' })
  const hidden = ((await (await post(base, ann, '/longpolling/rooms/secret/messages', { text: 'private' })).json()) as Event).id
  t.equal((await post(base, bob, `/rooms/secret/messages/${hidden}/report`, { reason: 'x' })).status, 404, "a private room he is not in: no such room")
  const join = ((await (await post(base, ann, '/longpolling/rooms/dev/messages', { text: 'more' })).json()) as Event).id
  let status = 0
  for (let i = 0; i < 6; i++) status = (await post(base, bob, `/rooms/dev/messages/${i % 2 === 0 ? id : join}/report`, { reason: `r${i}` })).status
  t.equal(status, 429, 'past REPORTS_PER_HOUR: 429')
  const gus = await signInAt(base, 'gus', 'longpolling')
  const lobbyLine = ((await (await post(base, ann, '/longpolling/room/messages', { text: 'in the lobby' })).json()) as Event).id
  t.equal((await post(base, gus, `/room/messages/${lobbyLine}/report`, { reason: 'off topic' })).status, 201, 'a guest reports in the lobby')
  t.equal((await list(base, ann, 'lobby')).status, 403, "a room's owner has no say over the lobby's reports")
  const mine = (await (await fetch(`${base}/reports`, { headers: { cookie: ann } })).json()) as { rooms: { room: string; reports: { id: number }[] }[] }
  t.same(mine.rooms.map((r) => [r.room, r.reports.map((x) => x.id).sort()]), [['dev', [id, join].sort()]], "her rooms' open reports in one list (not the lobby's, not a room she does not moderate)")
  t.same(((await (await fetch(`${base}/reports`, { headers: { cookie: bob } })).json()) as { rooms: unknown[] }).rooms, [], 'a member moderates nothing: an empty list')
})

t.test('the moderation page needs no JavaScript: reports with their forms, a person and the rules acted on by form, the log; 403 for a member', async (t) => {
  const { base, ann, bob, cat, said } = await dev(t)
  const id = await said(cat, 'spam <b>spam</b>')
  await post(base, bob, `/rooms/dev/messages/${id}/report`, { reason: 'ads & links' })
  const page = async (cookie: string) => {
    const res = await fetch(`${base}/rooms/dev/moderate`, { headers: { cookie, accept: 'text/html' } })
    return { status: res.status, html: await res.text() }
  }
  t.equal((await page(bob)).status, 403, 'a member: 403')
  const before = await page(ann)
  t.equal(before.status, 200, 'the owner sees it')
  t.match(before.html, /Open reports \(1\)/)
  t.match(before.html, /<q>spam &lt;b&gt;spam&lt;\/b&gt;<\/q>/, "the message, escaped")
  t.match(before.html, /<span class="user">bob<\/span>: ads &amp; links/, 'who reported it and why, escaped')
  const form = (payload: Record<string, string>, url = '/rooms/dev/moderation') =>
    fetch(`${base}${url}`, { method: 'POST', headers: { cookie: ann, accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', origin: base }, body: new URLSearchParams({ ...payload, back: 'moderate' }), redirect: 'manual' })
  const deleted = await form({ action: 'delete', id: String(id), reason: 'reported' })
  t.equal(deleted.status, 303, 'the delete form')
  t.equal(deleted.headers.get('location'), '/rooms/dev/moderate?done=1', 'comes back to the moderation page')
  t.equal((await form({ action: 'mute', user: 'cat', minutes: '60', reason: 'spam' })).status, 303, 'a person acted on by form')
  t.equal((await form({ action: 'slow', seconds: '20' })).status, 303, 'slow mode by form')
  const after = await page(ann)
  t.match(after.html, /Open reports \(0\)/, 'the report is handled')
  t.match(after.html, /ann set slow mode: one message every 20 seconds per person/, 'the log, newest first')
  t.match(after.html, /ann muted cat for 60 minutes: spam/)
  t.match(after.html, /ann deleted a message by cat: reported/)
  t.match(after.html, /name="seconds" min="0" max="3600" value="20"/, 'the rules as they stand')
  const roomPage = await (await fetch(`${base}/websocket/rooms/dev`, { headers: { cookie: ann } })).text()
  t.match(roomPage, /href="\/rooms\/dev\/moderate">Moderation/, "the room's page links a moderator to it")
  t.match(roomPage, /data-moderator="1"/)
  t.match(roomPage, /data-slow="20"/, 'and says the slow mode')
  t.notMatch(await (await fetch(`${base}/websocket/rooms/dev`, { headers: { cookie: bob } })).text(), /Moderation: reports/, "a member's does not")
})
