import t from 'tap'
import { buildTestApp, signIn, SocketClient } from './helpers.js'

// Every state change and every upgrade must come from this exact origin (scheme, host and
// port) or the allow-list. Browsers send Origin or Sec-Fetch-Site on both; curl sends neither.
t.test('the origin matrix: POSTs and upgrades from anywhere but here are refused', async (t) => {
  const app = await buildTestApp(t, { ALLOWED_ORIGINS: 'https://friend.example' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  const { host, port } = new URL(base)
  const ann = await signIn(app, 'ann')
  const refused: [string, Record<string, string>][] = [
    ['same-site, not same-origin', { 'sec-fetch-site': 'same-site' }],
    ['cross-site', { 'sec-fetch-site': 'cross-site' }],
    ['a look-alike host', { origin: `http://127.0.0.1.evil.example:${port}` }],
    ['a host with ours as a prefix', { origin: `http://${host}.evil.example` }],
    ['another host name for this machine', { origin: `http://localhost:${port}` }],
    ['another port', { origin: `http://127.0.0.1:${Number(port) + 1}` }],
    ['another scheme', { origin: `https://${host}` }],
    ['an opaque origin', { origin: 'null' }],
    ['an opaque origin claiming same-site', { origin: 'null', 'sec-fetch-site': 'same-site' }],
    ['an allowed origin on another scheme', { origin: 'http://friend.example' }],
  ]
  const allowed: [string, Record<string, string>][] = [
    ['our own origin', { origin: base }],
    ['same-origin', { 'sec-fetch-site': 'same-origin' }],
    ['a typed address (none)', { 'sec-fetch-site': 'none' }],
    ['the allow-list', { origin: 'https://friend.example' }],
    ['no header at all (curl)', {}],
  ]
  const post = (headers: Record<string, string>, text: string) =>
    fetch(`${base}/longpolling/room/messages`, {
      method: 'POST',
      headers: { cookie: ann, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ text }),
    })
  for (const [what, headers] of refused) {
    const res = await post(headers, `forged: ${what}`)
    t.equal(res.status, 403, `POST, ${what}: 403`)
    t.match(await res.json(), { error: 'Forbidden', message: /Cross-origin/ })
    await t.rejects(SocketClient.open(base, ann, '', headers), /refused: 403/, `upgrade, ${what}: refused`)
  }
  for (const [what, headers] of allowed) {
    t.equal((await post(headers, `fine: ${what}`)).status, 201, `POST, ${what}: allowed`)
    const socket = await SocketClient.open(base, ann, '', headers)
    await socket.untilId(1)
    t.equal(socket.closed, undefined, `upgrade, ${what}: open`)
    await socket.close()
  }
  const said = app.chatroom.archive().filter((s) => s.event.type === 'message').map((s) => s.event.text ?? '')
  t.same(said.filter((text) => text.startsWith('forged')), [], 'nothing forged was said')
  t.equal(said.length, allowed.length)
})
