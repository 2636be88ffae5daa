import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { WebSocket } from 'ws'
import type { Event } from '../app/chatroom/event.js'
import { startServer, signInAt as signIn } from './helpers.js'

// A restart, a crash and a reload make no join and leave lines: the people the log lists when the
// server comes back stay listed a while (PRESENCE_RESTART_GRACE), and whoever reconnects just
// goes on. Someone who does not come back leaves once, after that grace. Real server processes.

async function log(base: string, cookie: string): Promise<Event[]> {
  return ((await (await fetch(`${base}/room/history?limit=200`, { headers: { cookie } })).json()) as { events: Event[] }).events
}

const lines = (events: Event[]) => events.filter((e) => e.type === 'join' || e.type === 'leave').map((e) => `${e.user} ${e.type}`)

/** A socket held open (a page), resolved once its hello arrived. */
async function socket(base: string, cookie: string): Promise<WebSocket> {
  const ws = new WebSocket(`${base.replace('http', 'ws')}/websocket/room/socket`, { headers: { cookie } })
  ws.on('error', () => {})
  await new Promise((resolve, reject) => {
    ws.once('message', resolve)
    ws.once('close', reject)
  })
  return ws
}

async function online(base: string, cookie: string): Promise<string[]> {
  return ((await (await fetch(`${base}/room/users`, { headers: { cookie } })).json()) as { users: { name: string }[] }).users.map((u) => u.name).sort()
}

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  t.test(`a ${signal === 'SIGTERM' ? 'restart' : 'crash'} (${signal}) makes no leave or join line for those who come back; the others leave once, after the grace`, async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'chat-quiet-'))
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
    const env = { DATA_DIR: dataDir, PRESENCE_RESTART_GRACE: '3', PRESENCE_GRACE: '1' }
    const first = await startServer(t, env)
    const ann = await signIn(first.base, 'ann')
    const bob = await signIn(first.base, 'bob')
    const sockets = [await socket(first.base, ann), await socket(first.base, bob)]
    await sleep(200)
    t.same(lines(await log(first.base, ann)), ['ann join', 'bob join'], 'two joins before')
    const exited = new Promise((resolve) => first.child.once('exit', resolve))
    first.child.kill(signal)
    await exited
    for (const ws of sockets) ws.terminate()

    const second = await startServer(t, { ...env, PORT: new URL(first.base).port })
    // ann's page reconnects at once (the same session, the store kept it); bob's does not.
    const back = await socket(second.base, ann)
    t.teardown(() => back.terminate())
    t.same(await online(second.base, ann), ['ann', 'bob'], 'both still listed while bob may come back')
    t.same(lines(await log(second.base, ann)), ['ann join', 'bob join'], 'no line for the restart, none for ann coming back')
    await sleep(4500)
    t.same(lines(await log(second.base, ann)), ['ann join', 'bob join', 'bob leave'], 'bob, who did not come back, left once after the grace')
    t.same(await online(second.base, ann), ['ann'])
    // A reload: the socket closes and a new one opens within PRESENCE_GRACE.
    back.terminate()
    const reloaded = await socket(second.base, ann)
    t.teardown(() => reloaded.terminate())
    await sleep(1500)
    t.same(lines(await log(second.base, ann)), ['ann join', 'bob join', 'bob leave'], 'a reload makes no line either')
  })
}
