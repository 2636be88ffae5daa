import t from 'tap'
import { routes } from '../conf/routes.js'
import { buildTestApp, signIn, SocketClient } from './helpers.js'

// Issue 21, item 3: a page of another site must not put anyone in the room. Every room page
// and every request that enters the room (page load, socket, stream, poll, the refresh page's
// thread, a say or typing signal), from each kind of sender a browser can be: ours, typed,
// a program, a sibling site, another site.
const senders: [string, Record<string, string>, boolean][] = [
  ['same-origin', { 'sec-fetch-site': 'same-origin' }, true],
  ['typed (none)', { 'sec-fetch-site': 'none' }, true],
  ['no headers', {}, true],
  ['same-site', { 'sec-fetch-site': 'same-site' }, false],
  ['cross-site', { 'sec-fetch-site': 'cross-site' }, false],
  ['foreign Origin', { origin: 'https://evil.example' }, false],
]

/** Read-only, for the signed-in user's own scripts: they put nobody in the room (and CORP keeps other sites from reading them). */
const readOnly = new Set([
  'GET /room/users', 'GET /room/history', 'GET /account', 'GET /account/sessions', 'GET /rooms', 'GET /rooms/:room/users', 'GET /rooms/:room/history', 'GET /search',
  // A room's moderators' reading: its reports and its moderation page.
  'GET /reports', 'GET /rooms/:room/reports', 'GET /room/reports', 'GET /rooms/:room/moderate', 'GET /room/moderate',
  // A message as it stands and its thread (issue 32).
  'GET /room/messages/:id', 'GET /rooms/:room/messages/:id', 'GET /room/messages/:id/thread', 'GET /rooms/:room/messages/:id/thread',
  'GET /refresh/room/threads/:id', 'GET /refresh/rooms/:room/threads/:id',
  'GET /room/files/:id', 'GET /rooms/:room/files/:id', 'GET /room/files/:id/thumbnail', 'GET /rooms/:room/files/:id/thumbnail',
])
/** Requests that must enter the room when allowed: the room pages, the socket, the stream, the polls (not /refresh, a redirect to its page). */
const entering = (method: string, url: string) => method === 'GET' && url !== '/refresh' && !url.startsWith('/account') && url !== '/websocket/socket'

/** The request of a route as the test makes it: its room is the lobby, a connection of several rooms carries the lobby. */
const asCalled = (url: string) => (url === '/longpolling/messages' || url === '/sse/events' ? `${url}?cursor=lobby::` : url.replace(':room', 'lobby'))

t.test('cross-site matrix: no room page or entering request from another site puts anyone in the room', async (t) => {
  const app = await buildTestApp(t, { LONGPOLL_TIMEOUT: '1' })
  const base = await app.listen({ host: '127.0.0.1', port: 0 })
  // Every route a signed-in person calls, from the route table itself, so a new one is checked too.
  const endpoints = routes.filter((r) => r.auth && !readOnly.has(`${r.method} ${r.url}`))
  t.ok(endpoints.length >= 20, `${endpoints.length} endpoints`)

  /** One request as a browser (or curl) would make it; its status (101 for an opened socket). */
  /** Cells refused for coming from another site (an account route may refuse a guest with 403 for another reason). */
  const crossSiteRefusals = new Set<string>()
  async function call(method: string, url: string, cookie: string, headers: Record<string, string>): Promise<number> {
    if (url.endsWith('/socket')) {
      try {
        const socket = await SocketClient.open(base, cookie, '', headers, url)
        await socket.until(() => socket.hello !== undefined, 'hello')
        await socket.close()
        return 101
      } catch (error) {
        const status = /refused: (\d+)/.exec(String(error))?.[1]
        if (!status) throw error
        // An upgrade's refusal has no body to read: a 403 here is the origin check's.
        if (status === '403') crossSiteRefusals.add(cookie)
        return Number(status)
      }
    }
    const page = method === 'GET' && !url.includes('/room/')
    const controller = new AbortController()
    const res = await fetch(base + url, {
      method,
      redirect: 'manual',
      signal: controller.signal,
      headers: {
        cookie,
        accept: page ? 'text/html' : url.includes('/events') ? 'text/event-stream' : 'application/json',
        ...(method === 'POST' && { 'content-type': 'application/json' }),
        ...headers,
      },
      // `message`: the field every say takes (the refresh page's too).
      ...(method === 'POST' && { body: JSON.stringify({ message: 'hello from a page' }) }),
    })
    if (res.status === 403) {
      // A browser gets a page that says why; a program, JSON.
      const type = res.headers.get('content-type') ?? ''
      const body = await res.text()
      t.match(type, page ? /text\/html/ : /application\/json/, `${method} ${url}: the refusal is ${page ? 'a page' : 'JSON'}`)
      if (/another site|Cross-origin/.test(body)) crossSiteRefusals.add(cookie)
      // An account route, a room's title and topic (its owner's only), or its reports' handling (its moderators').
      else t.match(url, /^\/account|^\/rooms\/[^/]+\/describe$|\/reports\/:id\/dismiss$/, `${method} ${url}: only an account route or an owner's or moderator's action refuses a guest for another reason`)
    } else if (url.includes('/events')) {
      controller.abort()
    } else {
      await res.arrayBuffer()
    }
    return res.status
  }

  const matrix: { endpoint: string; cells: string[] }[] = []
  const cellsOf: { user: string; endpoint: string; sender: string; allowed: boolean; status: number; enters: boolean; crossSite: boolean }[] = []
  let n = 0
  for (const route of endpoints) {
    const endpoint = `${route.method} ${route.url}`
    const cells: string[] = []
    for (const [sender, headers, allowed] of senders) {
      // A new person per cell: whether a join was stored says whether this request let them in.
      const user = `person${++n}`
      const cookie = await signIn(app, user)
      // A room's routes, in the lobby (the room every signed-in person may read).
      const status = await call(route.method, asCalled(route.url), cookie, headers)
      cellsOf.push({ user, endpoint, sender, allowed, status, enters: entering(route.method, route.url), crossSite: crossSiteRefusals.has(cookie) })
      cells.push(String(status))
    }
    matrix.push({ endpoint, cells })
  }
  // Typing and page leases renew presence without waiting: let those joins land.
  await new Promise((resolve) => setTimeout(resolve, 300))
  // The whole log (more joins than the replay window holds).
  const log = (await app.chatroom.history(app.chatroom.lastId + 1, 100_000)).map((s) => s.event)
  const joined = new Set(log.filter((e) => e.type === 'join').map((e) => e.user))
  const said = new Set(log.filter((e) => e.type === 'message').map((e) => e.user))
  for (const cell of cellsOf) {
    const what = `${cell.endpoint}, ${cell.sender}`
    const row = matrix.find((r) => r.endpoint === cell.endpoint)!
    const column = senders.findIndex(([s]) => s === cell.sender)
    row.cells[column] += joined.has(cell.user) ? ' join' : ''
    if (cell.allowed) {
      t.notOk(cell.crossSite, `${what}: allowed (${cell.status})`)
      if (cell.enters) t.ok(joined.has(cell.user), `${what}: entered the room`)
    } else {
      t.ok(cell.status === 403 && cell.crossSite, `${what}: refused as cross-site`)
      t.notOk(joined.has(cell.user), `${what}: no join stored`)
      t.notOk(said.has(cell.user), `${what}: nothing said`)
    }
  }

  const width = Math.max(...matrix.map((r) => r.endpoint.length))
  const columns = senders.map(([s]) => s.padEnd(14)).join(' | ')
  const lines = [`${'endpoint'.padEnd(width)} | ${columns}`, ...matrix.map((r) => `${r.endpoint.padEnd(width)} | ${r.cells.map((c) => c.padEnd(14)).join(' | ')}`)]
  t.comment(`cross-site matrix (status, and "join" when a join event was stored):\n${lines.join('\n')}`)
})
