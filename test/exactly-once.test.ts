import { connect } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WebSocket } from 'ws'
import type { Event } from '../app/chatroom/event.js'
import { skipUnless, startServer, signInAt as signIn } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'

// A message acknowledged is never lost and never doubled, even when the acknowledgement is: the
// connection is cut after the server committed the message and before the client read the answer,
// and the client sends it again with the same clientId, over the same transport or another one
// (a fallback), on the same process or another one. Real server processes, real sockets.

async function history(base: string, cookie: string): Promise<Event[]> {
  const res = await fetch(`${base}/room/history?limit=200`, { headers: { cookie } })
  return ((await res.json()) as { events: Event[] }).events
}

/** How many messages with this text the log holds. */
const copies = async (base: string, cookie: string, text: string) => (await history(base, cookie)).filter((e) => e.type === 'message' && e.text === text).length

/** Waits until the log has the message (the commit happened), however long the server takes. */
async function committed(base: string, cookie: string, text: string): Promise<void> {
  const deadline = Date.now() + 10_000
  while ((await copies(base, cookie, text)) === 0) {
    if (Date.now() > deadline) throw new Error(`"${text}" was never committed`)
    await sleep(20)
  }
}

/**
 * An HTTP request over a raw TCP connection that is destroyed once the message is in the log,
 * without reading a byte of the answer: for the client, the acknowledgement was lost.
 */
async function postAndCut(base: string, cookie: string, path: string, body: string, type: string, text: string): Promise<void> {
  const { hostname, port } = new URL(base)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => {})
  socket.pause()
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nCookie: ${cookie}\r\nContent-Type: ${type}\r\nAccept: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  await committed(base, cookie, text)
  socket.destroy()
}

/** A WebSocket frame sent, and the socket cut once the message is in the log, before its ack is read. */
async function sayOnSocketAndCut(base: string, cookie: string, path: string, frame: object, text: string): Promise<void> {
  const ws = new WebSocket(base.replace('http', 'ws') + path, { headers: { cookie } })
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  ws.pause()
  ws.send(JSON.stringify(frame))
  await committed(base, cookie, text)
  ws.terminate()
}

/** A frame sent on a fresh socket and the frame that answers it (its ack or error, by `ref`). */
async function sayOnSocket(base: string, cookie: string, path: string, frame: Record<string, unknown>): Promise<Record<string, unknown>> {
  const ws = new WebSocket(base.replace('http', 'ws') + path, { headers: { cookie } })
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no answer to the frame')), 10_000)
      ws.on('message', (data) => {
        const value = JSON.parse(String(data)) as Record<string, unknown>
        if (!Array.isArray(value) && value.ref === frame.ref) {
          clearTimeout(timer)
          resolve(value)
        }
      })
      ws.once('open', () => ws.send(JSON.stringify(frame)))
      ws.once('error', reject)
    })
  } finally {
    ws.terminate()
  }
}

/** Resends over plain HTTP JSON: the status and the event answered. */
async function resendJson(base: string, cookie: string, path: string, text: string, clientId: string) {
  const res = await fetch(base + path, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ text, clientId }) })
  return { status: res.status, event: (await res.json()) as Event }
}

t.test('a message whose acknowledgement was lost, sent again with its clientId, is in the log once: every transport, and across a fallback', async (t) => {
  const { base } = await startServer(t)
  const cookie = await signIn(base, 'ann')
  // The first send (cut before its answer), then the resend, each over a transport.
  const cases: { first: string; resend: string }[] = [
    { first: 'longpolling', resend: 'longpolling' },
    { first: 'sse', resend: 'sse' },
    { first: 'refresh', resend: 'refresh' },
    { first: 'websocket', resend: 'websocket' },
    // The Automatic page falls back: the socket's message sent again by long polling, and the other way.
    { first: 'websocket', resend: 'longpolling' },
    { first: 'longpolling', resend: 'websocket' },
    { first: 'sse', resend: 'socket of several rooms' },
  ]
  for (const [i, { first, resend }] of cases.entries()) {
    const text = `message ${i} (${first} then ${resend})`
    const clientId = `cut-${i}-${Date.now().toString(36)}`
    if (first === 'refresh') {
      await postAndCut(base, cookie, '/refresh/room', new URLSearchParams({ message: text, clientId }).toString(), 'application/x-www-form-urlencoded', text)
    } else if (first === 'websocket') {
      await sayOnSocketAndCut(base, cookie, '/websocket/room/socket', { text, clientId, ref: 'r1' }, text)
    } else {
      await postAndCut(base, cookie, `/${first}/room/messages`, JSON.stringify({ text, clientId }), 'application/json', text)
    }
    const id = (await history(base, cookie)).find((e) => e.text === text)!.id

    if (resend === 'websocket') {
      const ack = await sayOnSocket(base, cookie, '/websocket/room/socket', { text, clientId, ref: 'again' })
      t.match(ack, { type: 'ack', id, duplicate: true }, `${first} then ${resend}: the resend is acknowledged with the first id`)
    } else if (resend === 'socket of several rooms') {
      const ws = new WebSocket(base.replace('http', 'ws') + '/websocket/socket', { headers: { cookie } })
      const frames: Record<string, unknown>[] = []
      ws.on('message', (data) => frames.push(JSON.parse(String(data)) as Record<string, unknown>))
      await new Promise((resolve) => ws.once('open', resolve))
      ws.send(JSON.stringify({ type: 'subscribe', room: 'lobby' }))
      const deadline = Date.now() + 10_000
      while (!frames.some((f) => f.type === 'subscribed') && Date.now() < deadline) await sleep(10)
      ws.send(JSON.stringify({ type: 'say', room: 'lobby', text, clientId, ref: 'again' }))
      while (!frames.some((f) => f.ref === 'again') && Date.now() < deadline) await sleep(10)
      ws.terminate()
      t.match(frames.find((f) => f.ref === 'again'), { type: 'ack', room: 'lobby', id, duplicate: true }, `${first} then ${resend}: acknowledged with the first id`)
    } else if (resend === 'refresh') {
      const res = await fetch(`${base}/refresh/room`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' }, body: new URLSearchParams({ message: text, clientId }) })
      t.equal(res.status, 200, `${first} then ${resend}: 200, not 201`)
      t.equal(((await res.json()) as Event).id, id, 'with the first event')
    } else {
      const again = await resendJson(base, cookie, `/${resend}/room/messages`, text, clientId)
      t.equal(again.status, 200, `${first} then ${resend}: 200, not 201`)
      t.equal(again.event.id, id, 'with the first event')
    }
    t.equal(await copies(base, cookie, text), 1, `${first} then ${resend}: in the log once`)
  }

  // The socket of several rooms: its first send cut before the ack, then sent again on it.
  const text = 'on the socket of several rooms'
  const clientId = `multi-${Date.now().toString(36)}`
  const ws = new WebSocket(base.replace('http', 'ws') + '/websocket/socket', { headers: { cookie } })
  const subscribed: Record<string, unknown>[] = []
  ws.on('message', (data) => subscribed.push(JSON.parse(String(data)) as Record<string, unknown>))
  await new Promise((resolve) => ws.once('open', resolve))
  ws.send(JSON.stringify({ type: 'subscribe', room: 'lobby' }))
  while (!subscribed.some((f) => f.type === 'subscribed')) await sleep(10)
  ws.pause()
  ws.send(JSON.stringify({ type: 'say', room: 'lobby', text, clientId, ref: 'first' }))
  await committed(base, cookie, text)
  ws.terminate()
  const id = (await history(base, cookie)).find((e) => e.text === text)!.id
  const again = await resendJson(base, cookie, '/websocket/room/messages', text, clientId)
  t.same([again.status, again.event.id], [200, id], 'sent again over HTTP: 200 with the first id')
  t.equal(await copies(base, cookie, text), 1, 'in the log once')

  // What a resend must not do: a new clientId is a new message, and a bad one is refused.
  t.equal((await resendJson(base, cookie, '/longpolling/room/messages', text, `other-${clientId}`)).status, 201, 'another clientId is another message')
  const bad = await fetch(`${base}/longpolling/room/messages`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'x', clientId: 'short' }) })
  t.equal(bad.status, 400, 'a clientId of fewer than 8 characters is refused')
  t.match(await bad.json(), { message: /clientId/ })
  const history2 = await history(base, cookie)
  t.equal(new Set(history2.map((e) => e.id)).size, history2.length, 'no id twice in the log')
})

t.test('a resend after the server restarted, and on another process sharing PostgreSQL, answers the first event', { skip: skipUnless(await havePostgres(), 'PostgreSQL is not running') }, async (t) => {
  const url = await freshDatabase(t)
  const env = { STORE: 'postgres', DATABASE_URL: url }
  const a = await startServer(t, env)
  const b = await startServer(t, env)
  const cookie = await signIn(a.base, 'ann')
  const text = 'said on A, cut, sent again on B'
  const clientId = `two-processes-${Date.now().toString(36)}`
  await postAndCut(a.base, cookie, '/longpolling/room/messages', JSON.stringify({ text, clientId }), 'application/json', text)
  const id = (await history(a.base, cookie)).find((e) => e.text === text)!.id
  // A dies (SIGKILL); the page falls over to B, its session in the shared store.
  a.child.kill('SIGKILL')
  const again = await resendJson(b.base, cookie, '/sse/room/messages', text, clientId)
  t.same([again.status, again.event.id], [200, id], 'B answers the first event, 200')
  const ack = await sayOnSocket(b.base, cookie, '/websocket/room/socket', { text, clientId, ref: 'b' })
  t.match(ack, { type: 'ack', id, duplicate: true }, "and so does B's socket")
  t.equal(await copies(b.base, cookie, text), 1, 'in the log once')
})

t.test('a reply and a reaction whose acknowledgements were lost, sent again, land once (issue 32)', async (t) => {
  const { base } = await startServer(t)
  const cookie = await signIn(base, 'ann')
  const rootRes = await fetch(`${base}/longpolling/room/messages`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body: JSON.stringify({ text: 'the root' }) })
  const root = (await rootRes.json()) as Event
  // The reply: cut after the commit, then sent again with its clientId over the socket.
  const text = 'a reply sent twice'
  const clientId = `reply-${Date.now().toString(36)}`
  await postAndCut(base, cookie, '/longpolling/room/messages', JSON.stringify({ text, clientId, replyTo: root.id }), 'application/json', text)
  const ack = await sayOnSocket(base, cookie, '/websocket/room/socket', { text, clientId, replyTo: root.id, ref: 'again' })
  const id = (await history(base, cookie)).find((e) => e.text === text)!.id
  t.match(ack, { type: 'ack', id, duplicate: true }, 'the resend is acknowledged with the first id')
  t.equal(await copies(base, cookie, text), 1, 'the reply is in the log once')

  // The reaction: a raw request cut once the reaction is in the log, then sent again.
  const { hostname, port } = new URL(base)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => {})
  socket.pause()
  const body = JSON.stringify({ emoji: '👍' })
  socket.write(`POST /room/messages/${root.id}/reactions HTTP/1.1\r\nHost: ${hostname}:${port}\r\nCookie: ${cookie}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`)
  const deadline = Date.now() + 10_000
  while (!(await history(base, cookie)).some((e) => e.type === 'reaction')) {
    if (Date.now() > deadline) throw new Error('the reaction was never committed')
    await sleep(20)
  }
  socket.destroy()
  const again = await fetch(`${base}/room/messages/${root.id}/reactions`, { method: 'POST', headers: { cookie, 'content-type': 'application/json' }, body })
  t.equal(again.status, 200, 'the resend changes nothing: 200 with the message as it stands')
  const events = await history(base, cookie)
  t.equal(events.filter((e) => e.type === 'reaction').length, 1, 'one reaction event')
  t.match(events.find((e) => e.id === root.id), { replies: 1, reactions: [{ emoji: '👍', users: ['ann'] }] }, 'the totals count each once')
})
