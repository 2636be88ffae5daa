import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Event, StoredEvent } from '../chatroom/event.js'
import type { Room } from '../chatroom/room.js'
import { answerSay, fromHtmlForm, httpActions, newTab, peopleOf, replyOf, roomBase, roomOf, roomSidebar, safeBack, sendEnterRefusal } from '../transport/http.js'
import { transportNames } from '../identity.js'
import { httpRefusal } from '../transport/protocol.js'
import { currentUser } from '../plugins/session.js'
import { changedIds, quotedIds, threadRows, type RowContext } from '../transport/thread.js'
import { firstIssue, historyQuerySchema, pageQuerySchema } from '../validation.js'
import { typingText } from '../../client/render.js'

/** Older messages shown per page of history. */
const HISTORY_PAGE = 50

/**
 * What the rows of `events` look up as the room has them now: the messages their replies answer
 * (a quote), and the messages their reactions and thread-only replies changed (for the page's
 * script). A message the store no longer has is left out (the quote says what it can).
 */
async function rowContext(room: Room, events: readonly Event[], changes: boolean): Promise<RowContext> {
  const ids = [...new Set([...quotedIds(events), ...(changes ? changedIds(events) : [])])]
  const messages = new Map<number, Event>()
  for (const found of await Promise.all(ids.map((id) => room.messageAt(id).catch(() => undefined)))) if (found) messages.set(found.stored.event.id, found.stored.event)
  return { messages, room: true }
}

/**
 * Enters the room for one page load (Revel's Room action): the replay window, or with
 * `?before=ID` a page of older history, and who is here. A stale `epoch` starts over.
 */
async function inRoom(request: FastifyRequest, tab: string) {
  const chatroom = await roomOf(request)
  const user = currentUser(request)
  const entered = await chatroom.enter(user, 'refresh', { tab })
  if (!entered.ok) throw Object.assign(new Error('The chat is unavailable right now; try again shortly.'), { statusCode: 503 })
  let events: StoredEvent[]
  const query = historyQuerySchema.safeParse(request.query)
  const before = query.success && query.data.before !== undefined && query.data.epoch === chatroom.epoch ? query.data.before : undefined
  try {
    events = before === undefined ? entered.subscription.take() : await chatroom.history(before, HISTORY_PAGE)
  } finally {
    entered.subscription.cancel()
  }
  const first = events[0]?.event.id
  const { users, count, members } = await peopleOf(request, chatroom)
  const lastId = events.at(-1)?.event.id ?? chatroom.lastId
  // Seen on this page: the room is read up to here (the list's unread counts follow the person to any device).
  const sidebar = await roomSidebar(request, chatroom, 'refresh', before === undefined ? lastId : 0)
  return {
    user,
    tab,
    rows: threadRows(events.map((s) => s.event), user.name, undefined, await rowContext(chatroom, events.map((s) => s.event), false)),
    lastId,
    users,
    count,
    members,
    typing: typingText(chatroom.typingNow(user.name)),
    epoch: chatroom.epoch,
    // A link to the page before this one, while there is one.
    older: first !== undefined && first > 1 ? first : undefined,
    history: before !== undefined,
    base: roomBase('/refresh', chatroom),
    ...sidebar,
  }
}

async function renderRoom(request: FastifyRequest, reply: FastifyReply, extra: { error?: string; draft?: string } = {}) {
  const { config } = request.server
  const page = await inRoom(request, newTab())
  // Which room this is, in the top bar (the lobby, as the one room always was, needs no name).
  return reply.view('refresh/room', { ...page, way: page.where + transportNames.refresh.short, interval: config.REFRESH_INTERVAL, maxLength: config.MAX_MESSAGE_LENGTH, ...extra })
}

/** GET /refresh — Revel's entry: the room (which enters it: a join, unless already here). */
export function index(_request: FastifyRequest, reply: FastifyReply) {
  return reply.redirect('/refresh/room', 303)
}

/**
 * GET /refresh/room[?before=ID&epoch=E] — the replay window and who is here, as a page that
 * reloads its thread every few seconds; with `before`, a page of older messages (a `before`
 * from another epoch of the log shows the newest again).
 */
export async function room(request: FastifyRequest, reply: FastifyReply) {
  const query = historyQuerySchema.safeParse(request.query)
  const chatroom = await roomOf(request)
  if (query.success && query.data.before !== undefined && query.data.epoch !== chatroom.epoch) {
    return reply.redirect(roomBase('/refresh', chatroom), 303)
  }
  return renderRoom(request, reply)
}

/**
 * GET /refresh/room/thread?lastReceived=ID&epoch=E&tab=T — for the page's script: the events
 * after its cursor (only what is new), who is here and who is typing, as HTML the server
 * rendered. A cursor that cannot be resumed answers 409 as long polling does (the page reloads).
 */
export async function thread(request: FastifyRequest, reply: FastifyReply) {
  const chatroom = await roomOf(request)
  const query = pageQuerySchema.safeParse(request.query)
  if (!query.success) return reply.code(400).send({ error: 'Bad Request', message: firstIssue(query.error) })
  const user = currentUser(request)
  const entered = await chatroom.enter(user, 'refresh', query.data)
  if (!entered.ok) return sendEnterRefusal(reply, entered)
  let events: StoredEvent[]
  try {
    events = entered.subscription.take()
  } finally {
    entered.subscription.cancel()
  }
  const { users, count } = await peopleOf(request, chatroom)
  return reply.header('cache-control', 'no-store').view('refresh/thread', {
    user,
    rows: threadRows(events.map((s) => s.event), user.name, undefined, await rowContext(chatroom, events.map((s) => s.event), true)),
    base: roomBase('/refresh', chatroom),
    lastId: events.at(-1)?.event.id ?? query.data.lastReceived ?? chatroom.lastId,
    epoch: chatroom.epoch,
    users,
    count,
    typing: typingText(chatroom.typingNow(user.name)),
  })
}

/**
 * POST /refresh/room — says the form's message, then back to the room (post/redirect/get); a
 * refusal shows on the page with the draft kept. The page's script posts JSON-accepting and
 * gets long polling's answers (201, or the refusal as JSON).
 */
export async function say(request: FastifyRequest, reply: FastifyReply) {
  const body = (request.body ?? {}) as Record<string, unknown>
  const chatroom = await roomOf(request)
  const said = await chatroom.say(currentUser(request), body.message, 'refresh', body.clientId, replyOf(request))
  // A reply's form goes back where it was made (a thread's page, or the room at the message).
  const back = typeof body.back === 'string' && safeBack.test(body.back) ? body.back : roomBase('/refresh', chatroom)
  if (!fromHtmlForm(request) || said.outcome === 'ok') return answerSay(request, reply, said, back)
  const { status, body: error, headers } = httpRefusal(said)
  const draft = typeof body.message === 'string' ? body.message : ''
  return renderRoom(request, reply.code(status).headers(headers), { error: error.message, draft })
}

/** POST /refresh/room/typing (204, from the page's script) and POST /refresh/room/leave[tab=T]. */
export const { typing, leave } = httpActions('refresh', '/refresh/room')

/**
 * GET /refresh/room/threads/:id (and /refresh/rooms/:room/threads/:id) — a thread as a page that
 * needs no JavaScript: its first message, its replies, and a form to answer (with "also send to
 * the room"). A reply's id shows its thread; no such message is 404, as every room route.
 */
export async function threadPage(request: FastifyRequest, reply: FastifyReply) {
  const chatroom = await roomOf(request)
  const user = currentUser(request)
  const unavailable = () => Object.assign(new Error('The thread cannot be read right now; try again shortly.'), { statusCode: 503 })
  const found = await chatroom.messageAt(Number((request.params as { id?: string }).id)).catch(() => null)
  if (found === null) throw unavailable()
  if (!found) throw Object.assign(new Error('There is no such message in this room.'), { statusCode: 404 })
  const rootId = found.stored.event.thread ?? found.stored.event.id
  // The newest replies (what was just posted is there), read a page at a time; `?after=ID` shows the ones after that id instead.
  const asked = Number((request.query as { after?: string }).after)
  const from = Number.isSafeInteger(asked) && asked >= 0 ? asked : undefined
  let root, replies: StoredEvent[] = []
  let total = 0
  let later = false
  try {
    root = rootId === found.stored.event.id ? found : await chatroom.messageAt(rootId)
    let after = from ?? 0
    for (let pages = 0; pages < THREAD_PAGES; pages++) {
      const page = await chatroom.thread(rootId, after, THREAD_PAGE)
      total += page.length
      replies = from === undefined ? [...replies, ...page].slice(-THREAD_PAGE) : [...replies, ...page]
      if (page.length < THREAD_PAGE || from !== undefined) {
        later = from !== undefined && page.length === THREAD_PAGE
        break
      }
      after = page.at(-1)!.event.id
    }
  } catch {
    throw unavailable()
  }
  const events = [...(root ? [root.stored.event] : []), ...replies.map((s) => s.event)]
  const base = roomBase('/refresh', chatroom)
  const page = `${base}/threads/${rootId}`
  const { config } = request.server
  return reply.header('cache-control', 'no-store').view('refresh/threadpage', {
    user,
    rows: threadRows(events, user.name, undefined, { messages: (await rowContext(chatroom, events, false)).messages }),
    rootId,
    base,
    page,
    // Links to the replies before and after those shown, when there are more.
    earlier: total > replies.length || (from !== undefined && from > 0) ? `${page}?after=0` : undefined,
    later: later ? `${page}?after=${replies.at(-1)!.event.id}` : undefined,
    roomTitle: chatroom.name,
    messages: base.replace(/^\/refresh/, '') + '/messages',
    interval: config.REFRESH_INTERVAL,
    maxLength: config.MAX_MESSAGE_LENGTH,
  })
}

/** Replies a thread's page shows at once, and pages of them it reads to find the newest. */
const THREAD_PAGE = 200
const THREAD_PAGES = 25
