import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { avatarFilePattern, identiconSvg } from '../avatars.js'
import { jsonArray } from '../chatroom/event.js'
import { JSON_TYPE, peopleOf, roomOf, sendEnterRefusal, tabOf } from '../transport/http.js'
import { currentUser } from '../plugins/session.js'
import { checkReaction, firstIssue, historyQuerySchema } from '../validation.js'

/**
 * GET /room/users — who is in the room, with avatars, as of event lastId, each with their
 * presence as a person (online, away: every page of theirs hidden or idle).
 */
export async function users(request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').send(await peopleOf(request, await roomOf(request)))
}

/**
 * GET /room/history?before=ID&limit=N[&epoch=E] — `{"epoch", "events"}`: at most N (≤ 200,
 * default 50) events with ids below ID (default: the newest), oldest first, from the log.
 */
export async function history(request: FastifyRequest, reply: FastifyReply) {
  const chatroom = await roomOf(request)
  const query = historyQuerySchema.safeParse(request.query)
  if (!query.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  const { before, limit, epoch } = query.data
  if (epoch !== undefined && epoch !== chatroom.epoch) return sendEnterRefusal(reply, { ok: false, refused: 'epoch', epoch: chatroom.epoch, lastId: chatroom.lastId })
  let events
  try {
    events = await chatroom.history(before ?? chatroom.lastId + 1, limit ?? 50)
  } catch {
    return reply.code(503).send({ error: 'Service Unavailable', message: 'The history cannot be read right now; try again shortly.' })
  }
  const body = `{"epoch":${JSON.stringify(chatroom.epoch)},"events":${jsonArray(events)}}`
  return reply.header('cache-control', 'no-store').type(JSON_TYPE).send(body)
}

/** GET /avatars/:file — a deterministic identicon, made here (no third-party request). */
export function avatar(request: FastifyRequest, reply: FastifyReply) {
  const { file } = request.params as { file: string }
  const key = avatarFilePattern.exec(file)?.[1]
  if (!key) return reply.code(404).send({ error: 'Not Found', message: 'No such avatar.' })
  return reply
    .type('image/svg+xml')
    .header('cache-control', 'public, max-age=31536000, immutable')
    .send(identiconSvg(key))
}

/**
 * The TypeScript served to pages as ES modules: the client library (client/, the same code a
 * Node bot runs) and the page's own modules (page/). From source (`npm test`, `npm run dev`) each
 * is compiled on first request and again when its file changes; once built (`npm start`) tsc's
 * output in dist/ is served.
 */
const fromSource = import.meta.url.endsWith('.ts')
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const modules = new Map<string, { mtimeMs: number; code: Promise<string> }>()

/** One module of `folder` as browser JavaScript (compiled once per change of its file), or undefined when there is none of that name. */
async function scriptModule(folder: 'client' | 'page', name: string): Promise<string | undefined> {
  const path = join(root, folder, name + (fromSource ? '.ts' : '.js'))
  const mtimeMs = await stat(path).then((s) => s.mtimeMs, () => undefined)
  if (mtimeMs === undefined) return undefined
  const cached = modules.get(path)
  if (cached?.mtimeMs === mtimeMs) return cached.code
  const code = readFile(path, 'utf8').then(async (source) => {
    // Built: tsc's output, without the pointer to a source map that is not served.
    if (!fromSource) return vendored(source.replace(/\n\/\/# sourceMappingURL=\S*\s*$/, '\n'))
    const ts = (await import('typescript')).default
    return vendored(ts.transpileModule(source, { fileName: path, compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText)
  })
  modules.set(path, { mtimeMs, code })
  return code
}

/** The packages a page module imports by name, and where the page loads each from (its browser build, served by vendorScript). */
const vendorModules: Readonly<Record<string, { url: string; file: string }>> = {
  'markdown-it': { url: '/public/js/vendor/markdown-it.js', file: 'markdown-it/browser' },
}

/** A module's imports of packages pointed at their served browser builds (a browser resolves no bare names). */
function vendored(code: string): string {
  return code.replace(/(\bfrom\s*|\bimport\s*)(['"])([^'"]+)\2/g, (whole, keyword: string, quote: string, name: string) => {
    const vendor = vendorModules[name]
    return vendor ? `${keyword}${quote}${vendor.url}${quote}` : whole
  })
}

const vendorFiles = new Map<string, Promise<string>>()

/**
 * The reaction picker's search: every emoji a reaction may be (checkReaction's rule), each with the
 * words it is found by (its name, then its tags), from emojibase's English data; made once.
 */
let emojiIndex: Promise<string> | undefined
function emojiJson(): Promise<string> {
  emojiIndex ??= readFile(fileURLToPath(import.meta.resolve('emojibase-data/en/compact.json')), 'utf8').then((text) => {
    const all = JSON.parse(text) as { unicode: string; label: string; tags?: string[]; group?: number }[]
    // Group 2 is skin tones and hair parts, no reactions of their own.
    const usable = all.flatMap((e) => {
      const checked = e.group === undefined || e.group === 2 ? undefined : checkReaction(e.unicode, 'add')
      return checked && 'emoji' in checked ? [[checked.emoji, [e.label, ...(e.tags ?? [])].join('|').toLowerCase()]] : []
    })
    return JSON.stringify(usable)
  })
  return emojiIndex
}

/** GET /public/js/vendor/:file — a package's browser build a page module imports (see vendorModules), or the emoji list (emoji.json). */
export async function vendorScript(request: FastifyRequest, reply: FastifyReply) {
  if ((request.params as { file: string }).file === 'emoji.json') return reply.type('application/json; charset=utf-8').header('cache-control', 'public, max-age=86400').send(await emojiJson())
  const name = /^([a-z][a-z-]*)\.js$/.exec((request.params as { file: string }).file)?.[1]
  const vendor = name === undefined ? undefined : vendorModules[name]
  if (vendor === undefined) return reply.code(404).send({ error: 'Not Found', message: 'No such module.' })
  let code = vendorFiles.get(vendor.file)
  if (code === undefined) {
    code = readFile(fileURLToPath(import.meta.resolve(vendor.file)), 'utf8').then((text) => text.replace(/\n\/\/# sourceMappingURL=\S*\s*$/, '\n'))
    vendorFiles.set(vendor.file, code)
  }
  return reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=86400').send(await code)
}

async function serveModule(folder: 'client' | 'page', request: FastifyRequest, reply: FastifyReply) {
  const name = /^([a-z][a-z-]*)\.js$/.exec((request.params as { file: string }).file)?.[1]
  const code = name === undefined ? undefined : await scriptModule(folder, name)
  if (code === undefined) return reply.code(404).send({ error: 'Not Found', message: `No such module of the ${folder === 'client' ? 'client library' : 'page'}.` })
  return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(code)
}

/** GET /public/js/client/:file — the client library (client/*.ts) as ES modules for the room pages: the same code a Node bot runs. */
export function clientScript(request: FastifyRequest, reply: FastifyReply) {
  return serveModule('client', request, reply)
}

/** GET /public/js/page/:file — the page's own modules (page/*.ts), built on the client library. */
export function pageScript(request: FastifyRequest, reply: FastifyReply) {
  return serveModule('page', request, reply)
}

/**
 * POST /room/leave (field `tab`) — a page going away (its `pagehide` beacon) or its leave form:
 * that page's connections end and the user leaves at once, unless another page of theirs still
 * holds them. 204; without a valid `tab`, 400 (nothing is left).
 */
export async function leave(request: FastifyRequest, reply: FastifyReply) {
  const tab = tabOf(request)
  if (tab === undefined) return reply.code(400).send({ error: 'Bad Request', message: 'tab must be the page id the server gave.' })
  await request.server.chatroom.leave(currentUser(request), undefined, tab)
  // Its long poll of the person's stream keeps nothing more for it.
  request.server.pollQueues.closePage(request.sessionHash, tab)
  return reply.code(204).send()
}

/**
 * POST /presence — `presence=away|online` and the page's `tab`: the page is hidden or idle
 * (away) or in use again. A person is away when every page of theirs is; their presence is
 * told to those who share a room with them. 204; anything else, 400.
 */
export async function presence(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const tab = tabOf(request)
  if (body.presence !== 'away' && body.presence !== 'online') return reply.code(400).send({ error: 'Bad Request', message: 'presence is "away" or "online".' })
  if (tab === undefined) return reply.code(400).send({ error: 'Bad Request', message: 'tab must be the page id the connection was opened with.' })
  request.server.chatroom.people.setAway(currentUser(request), tab, body.presence === 'away')
  return reply.code(204).send()
}
