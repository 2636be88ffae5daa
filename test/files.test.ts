import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import sharp from 'sharp'
import t, { type Test } from 'tap'
import type { Event } from '../app/chatroom/event.js'
import { MemoryStore } from '../app/chatroom/store/memory.js'
import { PostgresStore } from '../app/chatroom/store/postgres.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'
import { LOBBY, type Store } from '../app/chatroom/store/store.js'
import { sniff } from '../app/files.js'
import { post, registerAccount, served, signIn, signInAt, skipUnless, SocketClient, startServer, twoProcesses } from './helpers.js'
import { freshDatabase, havePostgres } from './pg.js'
import { haveRedis } from './redis.js'

// Issue 32, files and images: kept in the store so every process serves them, to the room's
// readers only; an image re-encoded without its metadata and with a thumbnail; anything that is
// not a safe image served as an attachment that can run nothing; size and quota refused plainly;
// deleting the message deletes the file.

const noPostgres = skipUnless(await havePostgres(), 'PostgreSQL is not running')
const noCluster = skipUnless(haveRedis && (await havePostgres()), 'Redis and PostgreSQL are needed for two processes')

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-files-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A JPEG with EXIF that says where it was taken (GPS) and who owns the camera. */
async function photo(width = 1200, height = 800): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: '#2a6f97' } })
    .jpeg()
    .withExif({ IFD0: { Copyright: 'Ann Example', Model: 'SecretCam 3000' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '2/1 21/1 8/1' } })
    .toBuffer()
}

/** Sends a file as curl -F does; the status and the JSON answered. */
async function upload(base: string, cookie: string, bytes: Buffer | string, name: string, fields: Record<string, string> = {}, url = '/room/files') {
  const form = new FormData()
  form.set('file', new Blob([typeof bytes === 'string' ? bytes : new Uint8Array(bytes)]), name)
  for (const [k, v] of Object.entries(fields)) form.set(k, v)
  const res = await fetch(base + url, { method: 'POST', headers: { cookie, origin: base }, body: form })
  return { status: res.status, headers: res.headers, body: (await res.json()) as Event & { message?: string } }
}

/**
 * A multipart upload of `size` bytes written by hand, with its Content-Length declared or chunked;
 * writing stops once the server answers. The answer and how much was written by then.
 */
function rawUpload(base: string, cookie: string, size: number, declared: boolean, path = '/room/files'): Promise<{ status: number; body: string; sent: number }> {
  const { hostname, port } = new URL(base)
  const boundary = 'x-boundary'
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\n\r\n`
  const tail = `\r\n--${boundary}--\r\n`
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { cookie, 'content-type': `multipart/form-data; boundary=${boundary}`, accept: 'application/json' }
    if (declared) headers['content-length'] = head.length + size + tail.length
    const req = request({ host: hostname, port, method: 'POST', path, headers })
    let sent = 0
    let answered = false
    req.on('response', (res) => {
      answered = true
      let body = ''
      res.on('data', (d) => (body += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, sent }))
    })
    // The server closing the connection under the rest of the body is what it should do, once it has answered.
    req.on('error', (error) => (answered ? undefined : reject(new Error(`no answer, ${Math.round(sent / 1048576)} MB written: ${error.message}`))))
    req.setTimeout(30_000, () => req.destroy(new Error('no answer in 30 s')))
    const chunk = Buffer.alloc(256 * 1024, 97)
    req.write(head)
    const pump = () => {
      while (!answered && sent < size && !req.destroyed) {
        sent += chunk.length
        if (!req.write(chunk)) return void req.once('drain', pump)
      }
      if (!answered && !req.destroyed) req.end(tail)
    }
    pump()
  })
}

const get = (base: string, cookie: string, url: string) => fetch(base + url, { headers: { cookie } })

const stores: [string, (t: Test) => Promise<() => Store>, string | false][] = [
  ['memory', async () => { const store = new MemoryStore(); return () => store }, false],
  ['sqlite', async (t) => { const dir = tempDir(t); return () => new SqliteStore(dir) }, false],
  ['postgres', async (t) => { const url = await freshDatabase(t); return () => new PostgresStore({ url }) }, noPostgres],
]

for (const [kind, make, skip] of stores) {
  t.test(`${kind}: a file's bytes and thumbnail are kept, attached, counted against their owner, deleted, pruned; its name is searched`, { skip }, async (t) => {
    const open = await make(t)
    let store = open()
    await store.open()
    const bytes = Buffer.from('hello, file')
    const thumb = Buffer.from('tiny')
    const now = Date.now()
    await store.files.put({ room: LOBBY, id: 'a'.repeat(32), owner: 'p1', name: 'notes.txt', size: bytes.length, type: 'text/plain', at: now }, bytes)
    await store.files.put({ room: LOBBY, id: 'b'.repeat(32), owner: 'p1', name: 'pic.png', size: 1000, type: 'image/png', width: 10, height: 20, at: now }, Buffer.alloc(1000, 1), thumb)
    await store.files.put({ room: LOBBY, id: 'c'.repeat(32), owner: 'p2', name: 'old.bin', size: 5, type: 'application/octet-stream', at: now - 3 * 86_400_000 }, Buffer.alloc(5))
    const [message] = await store.append([{ type: 'message', user: 'ann', sender: 'p1', file: { id: 'b'.repeat(32), name: 'quarterly_report pic.png', size: 1000, type: 'image/png', width: 10, height: 20 } }])
    await store.files.attach(LOBBY, 'b'.repeat(32), message!.event.id)
    t.equal(await store.files.usedSince('p1', now - 1000), 1000 + bytes.length, "the owner's bytes of the day")
    t.equal(await store.files.usedSince('p2', now - 1000), 0, 'older ones do not count')
    t.same(await store.files.bytes(LOBBY, 'a'.repeat(32), 'file'), bytes)
    t.equal(await store.files.bytes(LOBBY, 'a'.repeat(32), 'thumbnail'), undefined, 'no thumbnail for a file that is no image')
    t.same(await store.files.bytes(LOBBY, 'b'.repeat(32), 'thumbnail'), thumb)
    t.match(await store.files.get(LOBBY, 'b'.repeat(32)), { name: 'pic.png', width: 10, height: 20, message: message!.event.id })
    t.equal(await store.files.get('elsewhere', 'b'.repeat(32)), undefined, "a room's file is not another's")
    const found = await store.search({ rooms: [LOBBY], words: 'quarterly', limit: 10 })
    t.same(found.map((h) => h.stored.event.id), [message!.event.id], "search finds a file's name")
    if (kind !== 'memory') {
      await store.close()
      store = open()
      await store.open()
    }
    t.same(await store.files.bytes(LOBBY, 'b'.repeat(32), 'file'), Buffer.alloc(1000, 1), 'after a reopen, the same bytes')
    t.equal(await store.files.prune(LOBBY, 0, now - 86_400_000), 1, 'a file never attached, a day old, goes')
    t.equal(await store.files.get(LOBBY, 'c'.repeat(32)), undefined)
    t.equal(await store.files.prune(LOBBY, message!.event.id, 0), 1, "a pruned message's file goes")
    t.equal(await store.files.bytes(LOBBY, 'b'.repeat(32), 'file'), undefined)
    t.equal(await store.files.remove(LOBBY, 'a'.repeat(32)), true)
    t.equal(await store.files.remove(LOBBY, 'a'.repeat(32)), false, 'removed once')
    t.equal(await store.files.bytes(LOBBY, 'a'.repeat(32), 'file'), undefined)
    await store.close()
  })
}

t.test('SQLite: a deleted file is overwritten with zeros before it is unlinked (its bytes stay in no free block)', async (t) => {
  const dir = tempDir(t)
  const store = new SqliteStore(dir)
  await store.open()
  const id = 'd'.repeat(32)
  await store.files.put({ room: LOBBY, id, owner: 'p1', name: 'secret.txt', size: 14, type: 'text/plain', at: Date.now() }, Buffer.from('the secret key'))
  // A second name for the same bytes on disk: what the unlinked file's blocks held.
  linkSync(join(dir, 'files', id), join(dir, 'witness'))
  await store.files.remove(LOBBY, id)
  t.notOk(existsSync(join(dir, 'files', id)), 'unlinked')
  t.same(readFileSync(join(dir, 'witness')), Buffer.alloc(14), 'its bytes were zeros by then')
  await store.close()
})

t.test('sniffing goes by the bytes, never the name', async (t) => {
  t.equal(sniff(await photo(10, 10)), 'image/jpeg')
  t.equal(sniff(Buffer.from('<!DOCTYPE html><p>hi')), 'text/html')
  t.equal(sniff(Buffer.from('  <svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>')), 'image/svg+xml')
  t.equal(sniff(Buffer.from('<?xml version="1.0"?><svg/>')), 'image/svg+xml')
  t.equal(sniff(Buffer.from('just words')), 'text/plain')
  t.equal(sniff(Buffer.from([0, 1, 2, 3])), 'application/octet-stream')
  t.equal(sniff(Buffer.from('%PDF-1.7')), 'application/pdf')
})

t.test('an image: re-encoded without its EXIF (no GPS), upright, its size known, a thumbnail; served inline to the room, live to its readers', async (t) => {
  const { app, base } = await served(t)
  const ann = await signIn(app, 'ann')
  const reader = await SocketClient.open(base, ann)
  await reader.until(() => reader.hello !== undefined)
  const original = await photo()
  t.ok((await sharp(original).metadata()).exif, 'the photo sent has EXIF')
  const sent = await upload(base, ann, original, '../../etc/holiday.jpg', { text: 'the **view**', clientId: 'photo-0001' })
  t.equal(sent.status, 201)
  t.match(sent.body, { type: 'message', text: 'the **view**', file: { name: 'holiday.jpg', type: 'image/jpeg', width: 1200, height: 800 } }, 'a message with its file; the name has no path')
  await reader.until(() => reader.events.some((e) => e.file !== undefined))
  t.same(reader.events.find((e) => e.file)?.file, sent.body.file, 'a reader of the room gets the message live')
  const id = sent.body.file!.id
  const served_ = await get(base, ann, `/room/files/${id}`)
  t.equal(served_.status, 200)
  t.equal(served_.headers.get('content-type'), 'image/jpeg')
  t.equal(served_.headers.get('x-content-type-options'), 'nosniff')
  t.match(served_.headers.get('content-disposition'), /^inline; filename="holiday.jpg"/)
  t.match(served_.headers.get('content-security-policy'), /sandbox/)
  const kept = Buffer.from(await served_.arrayBuffer())
  const meta = await sharp(kept).metadata()
  t.equal(meta.exif, undefined, 'no EXIF is kept: no position, no camera')
  t.notOk(kept.includes('SecretCam'), 'not a byte of it')
  t.equal(sent.body.file!.size, kept.length, 'the size said is the size served')
  const thumb = await get(base, ann, `/room/files/${id}/thumbnail`)
  t.equal(thumb.headers.get('content-type'), 'image/webp')
  const thumbMeta = await sharp(Buffer.from(await thumb.arrayBuffer())).metadata()
  t.same([thumbMeta.width, thumbMeta.height], [360, 240], 'a thumbnail at most 360 pixels a side, its shape kept')
  const search = (await (await get(base, ann, '/search?q=holiday')).json()) as { results: { id: number }[] }
  t.same(search.results.map((r) => r.id), [sent.body.id], "search finds the file's name")
  // A resend (the answer was lost) is the first message; its file stands, no second one is kept.
  const again = await upload(base, ann, original, 'holiday.jpg', { clientId: 'photo-0001' })
  t.equal(again.status, 200)
  t.equal(again.body.id, sent.body.id)
  t.equal(again.body.file?.id, id, 'the first file')
  const owner = (await app.chatroom.files.get('lobby', id))!.owner
  t.equal(await app.chatroom.files.usedSince(owner, 0), kept.length, 'the copy sent again was not kept')
  reader.close()
})

t.test('HTML, SVG and anything else: a download that can run nothing, whatever its name says; never a page of the site', async (t) => {
  const { app, base } = await served(t)
  const ann = await signIn(app, 'ann')
  for (const [name, body, type] of [
    ['page.html', '<!doctype html><script>document.cookie</script>', 'text/html'],
    ['cat.png', '<html><body onload="alert(1)">', 'text/html'],
    ['logo.svg', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', 'image/svg+xml'],
    ['notes.txt', 'plain words', 'text/plain'],
    ['data.bin', Buffer.from([0, 159, 146, 150]), 'application/octet-stream'],
  ] as const) {
    const sent = await upload(base, ann, body, name)
    t.equal(sent.status, 201, name)
    t.equal(sent.body.file?.type, type, `${name}: sniffed as ${type}`)
    t.equal(sent.body.file?.width, undefined, `${name}: no image`)
    const res = await get(base, ann, `/room/files/${sent.body.file!.id}`)
    t.match(res.headers.get('content-disposition'), /^attachment; filename=/, `${name}: an attachment`)
    t.equal(res.headers.get('x-content-type-options'), 'nosniff')
    t.match(res.headers.get('content-security-policy'), /default-src 'none'.*sandbox/, `${name}: sandboxed, no scripts`)
    t.equal((await get(base, ann, `/room/files/${sent.body.file!.id}/thumbnail`)).status, 404, `${name}: no thumbnail`)
  }
  t.equal((await upload(base, ann, '', 'empty.txt')).status, 201, 'an empty file is a file')
})

t.test("a private room's files do not exist for anyone else: 404 for the file, its thumbnail and an upload", async (t) => {
  const { app, base } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const eve = await signIn(app, 'eve')
  await post(base, ann, '/rooms', { name: 'secret', visibility: 'private' })
  const sent = await upload(base, ann, await photo(50, 50), 'plan.jpg', {}, '/rooms/secret/files')
  t.equal(sent.status, 201)
  const id = sent.body.file!.id
  for (const url of [`/rooms/secret/files/${id}`, `/rooms/secret/files/${id}/thumbnail`, `/room/files/${id}`]) t.equal((await get(base, eve, url)).status, 404, `${url}: 404`)
  t.equal((await upload(base, eve, 'x', 'x.txt', {}, '/rooms/secret/files')).status, 404, 'an upload to it: 404')
  t.equal((await get(base, ann, `/rooms/secret/files/${id}`)).status, 200, 'its member reads it')
  t.equal((await get(base, ann, `/rooms/secret/files/${'0'.repeat(32)}`)).status, 404, 'no such file: 404')
  t.equal((await get(base, ann, '/rooms/secret/files/..%2F..%2Fchat.sqlite')).status, 404, 'a path is no id')
})

t.test('deleting the message deletes its file and thumbnail, by its author or a moderator', async (t) => {
  const { app, base } = await served(t)
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'dev' })
  await post(base, bob, '/rooms/dev/join')
  const mine = await upload(base, bob, await photo(40, 40), 'mine.jpg', {}, '/rooms/dev/files')
  t.equal((await post(base, bob, `/rooms/dev/messages/${mine.body.id}/delete`)).status, 201)
  const spam = await upload(base, bob, await photo(40, 40), 'spam.jpg', {}, '/rooms/dev/files')
  t.equal((await post(base, ann, '/rooms/dev/moderation', { action: 'delete', id: String(spam.body.id), reason: 'spam' })).status, 200)
  for (const sent of [mine, spam]) {
    const id = sent.body.file!.id
    // The file goes after the deletion is committed.
    for (let i = 0; i < 50 && (await app.chatroom.files.get('dev', id)); i++) await sleep(20)
    t.equal((await get(base, ann, `/rooms/dev/files/${id}`)).status, 404, `${sent.body.file!.name}: gone`)
    t.equal((await get(base, ann, `/rooms/dev/files/${id}/thumbnail`)).status, 404)
    const message = (await (await get(base, ann, `/rooms/dev/messages/${sent.body.id}`)).json()) as Event
    t.equal(message.file, undefined, 'the message says no more of it')
  }
})

t.test('too big: 413 before the file is read (the RSS of the server stays put); over the quota: 429 with Retry-After', async (t) => {
  const { child, base } = await startServer(t, { UPLOAD_MAX_BYTES: String(10 * 1024 * 1024), UPLOAD_QUOTA_BYTES: String(64 * 1024), STORE: 'memory' })
  const cookie = await signInAt(base, 'ann')
  const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024
  // 20 MB declared: the answer comes before the body is sent, and the connection closes.
  const before = rss()
  const answer = await rawUpload(base, cookie, 20 * 1024 * 1024, true)
  t.equal(answer.status, 413, '413')
  t.match(JSON.parse(answer.body), { error: 'Payload Too Large', message: /at most 10 MB/ })
  const grew = rss() - before
  t.comment(`RSS of the server: ${Math.round(before / 1048576)} MB before, grew ${Math.round(grew / 1048576)} MB; ${Math.round(answer.sent / 1048576)} MB of 20 were written before the answer`)
  t.ok(grew < 8 * 1024 * 1024, `the server did not take the 20 MB in (grew ${Math.round(grew / 1024)} KB)`)
  // Sent without a length (chunked): read up to the limit only, then 413 and the connection closes.
  // A server of its own with a 2 MB limit, so what it holds (the limit) is far from the 20 MB sent.
  const small = await startServer(t, { UPLOAD_MAX_BYTES: String(2 * 1024 * 1024), STORE: 'memory' })
  const smallRss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${small.child.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024
  const smallCookie = await signInAt(small.base, 'ann')
  // A first file, and a first refusal, so what a first upload loads and compiles is not counted.
  await upload(small.base, smallCookie, 'warm', 'warm.txt')
  await rawUpload(small.base, smallCookie, 3 * 1024 * 1024, false)
  const beforeChunked = smallRss()
  const chunked = await rawUpload(small.base, smallCookie, 20 * 1024 * 1024, false)
  const grewChunked = smallRss() - beforeChunked
  t.comment(`chunked, 2 MB limit: RSS grew ${Math.round(grewChunked / 1048576)} MB for 20 MB sent (${Math.round(chunked.sent / 1048576)} MB written before the answer)`)
  t.equal(chunked.status, 413, 'past the limit as it is read: 413')
  t.ok(grewChunked < 10 * 1024 * 1024, `the server held about the limit, not the 20 MB (grew ${Math.round(grewChunked / 1024)} KB)`)
  // The quota: 64 KB a day here.
  const first = await upload(base, cookie, Buffer.alloc(60 * 1024, 1), 'a.bin')
  t.equal(first.status, 201)
  const over = await upload(base, cookie, Buffer.alloc(10 * 1024, 1), 'b.bin')
  t.equal(over.status, 429, 'past the day\'s quota: 429')
  t.equal(over.headers.get('retry-after'), '3600')
  t.match(over.body.message, /as much as one may/)
})

t.test('bad uploads say why: no file, not multipart, a caption too long', async (t) => {
  const { app, base } = await served(t, { MAX_MESSAGE_LENGTH: '20' })
  const ann = await signIn(app, 'ann')
  const noFile = new FormData()
  noFile.set('text', 'hello')
  const res = await fetch(`${base}/room/files`, { method: 'POST', headers: { cookie: ann, origin: base }, body: noFile })
  t.equal(res.status, 400)
  t.match(await res.json(), { message: /field "file"/ })
  const json = await fetch(`${base}/room/files`, { method: 'POST', headers: { cookie: ann, origin: base, 'content-type': 'application/json' }, body: '{"file":"x"}' })
  t.equal(json.status, 415)
  const long = await upload(base, ann, 'x', 'x.txt', { text: 'a'.repeat(50) })
  t.equal(long.status, 400, 'a caption past MAX_MESSAGE_LENGTH')
  const history = (await (await get(base, ann, '/room/history')).json()) as { events: Event[] }
  t.equal(history.events.filter((e) => e.file).length, 0, 'nothing was posted')
})

t.test('refused before the file is read: a muted person, one past the flood limit; a form that cannot be read is 400', async (t) => {
  const { app, base } = await served(t, { RATE_LIMIT_MESSAGES: '4', RATE_LIMIT_WINDOW: '60' })
  const ann = await registerAccount(app, 'ann')
  const bob = await registerAccount(app, 'bob')
  await post(base, ann, '/rooms', { name: 'dev' })
  await post(base, bob, '/rooms/dev/join')
  await post(base, ann, '/rooms/dev/moderation', { action: 'mute', user: 'bob', minutes: '10', reason: 'cool down' })
  const muted = await rawUpload(base, bob, 8 * 1024 * 1024, true, '/rooms/dev/files')
  t.equal(muted.status, 403, 'muted: 403')
  t.match(JSON.parse(muted.body), { message: /muted/ })
  t.ok(muted.sent < 8 * 1024 * 1024, `answered before the file was sent whole (${Math.round(muted.sent / 1048576)} MB of 8 written)`)
  // Each file takes a flood token before its bytes are read (and its message another).
  const statuses: number[] = []
  for (let i = 0; i < 3; i++) statuses.push((await upload(base, ann, `file ${i}`, `f${i}.txt`, {}, '/rooms/dev/files')).status)
  t.same(statuses, [201, 201, 429], 'the third file is past 4 tokens a minute: 429')
  const cat = await signInAt(base, 'cat')
  const noBoundary = await fetch(`${base}/room/files`, { method: 'POST', headers: { cookie: cat, origin: base, 'content-type': 'multipart/form-data' }, body: 'x' })
  t.equal(noBoundary.status, 400, 'multipart without a boundary: 400, not 500')
  const form = new FormData()
  form.set('file', new Blob(['x']), 'x.txt')
  form.set('back', '/\t/evil.example')
  const page = await fetch(`${base}/room/files`, { method: 'POST', headers: { cookie: cat, origin: base, accept: 'text/html' }, body: form, redirect: 'manual' })
  t.equal(page.status, 303)
  t.equal(page.headers.get('location'), '/refresh/room', 'a way back that a browser would read as another site is not followed')
})

t.test('SQLite: a file outlives a restart, beside its message', async (t) => {
  const dir = tempDir(t)
  const first = await served(t, { STORE: 'sqlite', DATA_DIR: dir })
  const ann = await signIn(first.app, 'ann')
  const sent = await upload(first.base, ann, await photo(30, 30), 'kept.jpg')
  await first.app.close()
  const second = await served(t, { STORE: 'sqlite', DATA_DIR: dir })
  const again = await signIn(second.app, 'ann')
  const res = await get(second.base, again, `/room/files/${sent.body.file!.id}`)
  t.equal(res.status, 200)
  t.equal(Buffer.from(await res.arrayBuffer()).length, sent.body.file!.size)
})

t.test('two processes: a file sent on A is served by B, and its deletion on B is seen by A', { skip: noCluster }, async (t) => {
  const { a, b } = await twoProcesses(t)
  const ann = await signInAt(a.base, 'ann')
  const bob = await signInAt(b.base, 'bob')
  const sent = await upload(a.base, ann, await photo(64, 48), 'shared.jpg')
  t.equal(sent.status, 201)
  const res = await get(b.base, bob, `/room/files/${sent.body.file!.id}`)
  t.equal(res.status, 200, 'B serves it')
  t.equal(Buffer.from(await res.arrayBuffer()).length, sent.body.file!.size, 'the same bytes')
  t.equal((await get(b.base, bob, `/room/files/${sent.body.file!.id}/thumbnail`)).status, 200)
  t.equal((await post(a.base, ann, `/room/messages/${sent.body.id}/delete`)).status, 201)
  for (let i = 0; i < 50 && (await get(b.base, bob, `/room/files/${sent.body.file!.id}`)).status === 200; i++) await sleep(20)
  t.equal((await get(b.base, bob, `/room/files/${sent.body.file!.id}`)).status, 404, 'deleted on A: gone on B too')
})
