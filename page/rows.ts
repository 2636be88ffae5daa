// The thread's rows as the page draws them (the same markup the server renders in
// views/partials/events.eta): a message with its sender, time, text and your actions on your
// own; a join or leave line; edits and deletions applied in place; date lines and groups by the
// reader's local day (client/render.ts's rule); consecutive join and leave lines folded into one.
import type { ChatEvent, MessageEvent } from '../client/protocol.js'
import { continuesGroup, drawnAsImage, joinLeaveWords, moderationWords, sizeWords, thumbnailBox } from '../client/render.js'
import { iAmGuest, me, roomName, threadEl } from './context.js'
import { moderating } from './moderate.js'
import { avatarEl, dayFormat, el, fullFormat, textWithLinks, timeEl, timeFormat } from './dom.js'
import { mentions } from './mentions.js'
import { quoteEl, reactionsEl, repliesEl } from './social.js'

/** Whether this event is this person's own (the server checks again; a guest's name is not an account's). */
function isOwn(event: ChatEvent): boolean {
  return event.user === me && Boolean(event.guest) === iAmGuest
}

/** The text each message row shows now (after edits), for the editor. */
export const rowText = new WeakMap<Element, string>()

/** A message's content: its text and "(edited)", or "message deleted". */
function contentEl(text: string, edited: number | undefined, deleted: boolean): HTMLDivElement {
  const content = el('div', 'content')
  if (deleted) {
    content.append(el('p', 'gone', 'message deleted'))
    return content
  }
  content.append(textWithLinks(text))
  if (edited !== undefined) {
    const mark = el('span', 'edited', '(edited)')
    mark.dataset.ts = String(edited)
    mark.title = `Edited ${fullFormat.format(edited)}`
    content.append(' ', mark)
  }
  return content
}

/**
 * Edit and Delete on one's own message: shown on hover and focus, behind "⋯" on a touch screen.
 * Their words are drawn by chat.css (and named by aria-label), so copying a message, or reading
 * its text, gets the message and not the buttons.
 */
function actionsEl(): HTMLDivElement {
  const actions = el('div', 'actions')
  const more = actionButton('more', 'Edit or delete this message')
  more.setAttribute('aria-expanded', 'false')
  // React, Reply and Thread after Edit and Delete: Tab from the row reaches those first, as before.
  actions.append(more, actionButton('edit', 'Edit'), actionButton('delete', 'Delete'), ...socialButtons())
  return actions
}

/** Reply (quoting it in the room), Thread (answering in its thread) and React: on everyone's messages. */
function socialButtons(): HTMLButtonElement[] {
  return [actionButton('react', 'React'), actionButton('reply', 'Reply'), actionButton('in-thread', 'Reply in a thread')]
}

/** One of a message's action buttons: its word drawn by chat.css, its name its aria-label; a Tab stop only while its row has the focus. */
function actionButton(className: string, label: string): HTMLButtonElement {
  const b = el('button', className)
  b.type = 'button'
  b.tabIndex = -1
  b.setAttribute('aria-label', label)
  return b
}

/**
 * What one does about someone else's message: Report for everyone; Delete, Mute, Remove and Ban
 * for the room's moderators (the server checks again). Shown as one's own message's actions are.
 */
function othersActionsEl(): HTMLDivElement {
  const actions = el('div', 'actions others')
  const button = actionButton
  // A direct room has no moderators to report to (the line naming its other person says it is one).
  if (document.getElementById('dm-with')) {
    const more = button('more', 'Reply or react to this message')
    more.setAttribute('aria-expanded', 'false')
    actions.append(more, ...socialButtons())
    return actions
  }
  const more = button('more', moderating() ? 'Report or moderate this message' : 'Report this message')
  more.setAttribute('aria-expanded', 'false')
  actions.append(more, button('report', 'Report'))
  if (moderating()) {
    actions.append(button('mod-delete', 'Delete'), button('mute', 'Mute its author'))
    if (roomName !== 'lobby') actions.append(button('kick', 'Remove its author from the room'))
    actions.append(button('ban', 'Ban its author'))
  }
  actions.append(...socialButtons())
  return actions
}

/** This room's files' URL base. */
const filesBase = (): string => (roomName === 'lobby' ? '/room/files' : `/rooms/${encodeURIComponent(roomName)}/files`)

/** A message's file, as the server draws it: an image at its thumbnail's size (known before it loads), or a download link with its name and size. */
function fileEl(file: NonNullable<MessageEvent['file']>): HTMLAnchorElement {
  const url = `${filesBase()}/${encodeURIComponent(file.id)}`
  const a = el('a', 'file')
  a.href = url
  a.tabIndex = -1
  if (drawnAsImage(file)) {
    a.classList.add('image')
    a.target = '_blank'
    a.rel = 'noopener'
    const img = el('img')
    const box = thumbnailBox(file.width!, file.height!)
    img.width = box.width
    img.height = box.height
    img.alt = file.name
    img.loading = 'lazy'
    img.src = `${url}/thumbnail`
    a.append(img)
    return a
  }
  a.classList.add('download')
  a.download = file.name
  const icon = el('span', 'icon', '📄')
  icon.setAttribute('aria-hidden', 'true')
  a.append(icon, ' ', el('span', 'name', file.name), ' ', el('span', 'size', `(${sizeWords(file.size)})`))
  return a
}

/** One event as DOM: the markup the server renders (views/partials/events.eta). */
export function renderEvent(event: ChatEvent): HTMLDivElement {
  const mine = event.user === me
  const who = mine ? 'you' : event.user
  const row = el('div', event.type === 'message' ? (mine ? 'message mine' : 'message') : event.type === 'moderation' ? 'notice moderation' : 'notice presence')
  row.dataset.id = String(event.id)
  row.dataset.user = event.user
  row.dataset.ts = String(event.timestamp)
  row.dataset.type = event.type
  if (event.type === 'message') {
    row.id = `m${event.id}`
    const avatar = avatarEl(event.avatar, 32)
    if (avatar) row.append(avatar)
    const meta = el('div', 'meta')
    meta.append(el('span', 'user', who))
    if (typeof event.via === 'string') {
      const via = el('span', 'via', event.via)
      via.title = `Signed in with ${event.via}`
      meta.append(' ', via)
    }
    if (event.guest === true) {
      const guest = el('span', 'guest', 'guest')
      guest.title = 'A guest: the name is theirs only while they stay'
      meta.append(' ', guest)
    }
    meta.append(' ', timeEl(event.timestamp))
    const body = el('div', 'body')
    const deleted = event.deleted === true
    const quote = quoteEl(event)
    if (quote) body.append(quote)
    body.append(meta, contentEl(event.text ?? '', event.edited, deleted))
    if (event.file && !deleted) body.append(fileEl(event.file))
    if (event.replies) body.append(repliesEl(event.id, event.replies, event.lastReply))
    if (!deleted) body.append(reactionsEl(event.id, event.reactions))
    if (event.thread !== undefined) row.dataset.thread = String(event.thread)
    row.append(body)
    rowText.set(row, event.text ?? '')
    if (deleted) row.classList.add('deleted')
    // A reply to your message tells you as a mention does.
    if (!mine && !deleted && (mentions(event.text, me) || event.replyToUser === me)) row.classList.add('mention')
    if (isOwn(event)) {
      row.classList.add('own')
      if (!deleted) row.append(actionsEl())
    } else if (!deleted && !mine) row.append(othersActionsEl())
    return row
  }
  if (event.type === 'moderation') {
    row.append(...moderationWords(event, me).map((w) => (w.user ? el('span', 'user', w.text) : w.text)), ' ', timeEl(event.timestamp))
    return row
  }
  const verb = event.type === 'join' ? 'joined' : 'left'
  row.append(el('span', 'user', who), ` ${verb}${mine ? '' : ' the room'} `, timeEl(event.timestamp))
  return row
}

/** A message row now reads `text` (an edit): "(edited)" beside it, the mention mark redone. */
export function showEdited(row: HTMLElement, text: string, at: number): void {
  if (row.classList.contains('deleted')) return
  rowText.set(row, text)
  const content = contentEl(text, at, false)
  const old = row.querySelector('.content')
  if (old) old.replaceWith(content)
  else row.querySelector('.body')?.append(content)
  if (row.dataset.user !== me) row.classList.toggle('mention', mentions(text, me))
}

/** A message row now says "message deleted"; its actions go. */
export function showDeleted(row: HTMLElement): void {
  rowText.delete(row)
  row.classList.add('deleted')
  row.classList.remove('mention', 'editing', 'open')
  row.querySelector('.content')?.replaceWith(contentEl('', undefined, true))
  row.querySelector('.edit-form')?.remove()
  row.querySelector('.actions')?.remove()
  row.querySelector('.reactions')?.remove()
  row.querySelector('.file')?.remove()
}

/** The reader's local day of a moment. */
export const dayKey = (ts: number): string => {
  const d = new Date(ts)
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`
}

function dayLabel(ts: number): string {
  const key = dayKey(ts)
  if (key === dayKey(Date.now())) return 'Today'
  if (key === dayKey(Date.now() - 86_400_000)) return 'Yesterday'
  return dayFormat.format(ts)
}

function dayEl(ts: number): HTMLParagraphElement {
  const p = el('p', 'day')
  p.setAttribute('role', 'separator')
  p.append(el('span', '', dayLabel(ts)))
  return p
}

/** The event row before this one in the thread (date lines and notices without an id skipped). */
function previousEvent(row: HTMLElement): HTMLElement | null {
  for (let node = row.previousElementSibling as HTMLElement | null; node; node = node.previousElementSibling as HTMLElement | null) if (node.dataset.ts) return node
  return null
}

/** The row before this one that a reader sees (folded join/leave lines and hidden rows skipped). */
function previousShown(row: HTMLElement): HTMLElement | null {
  for (let node = row.previousElementSibling as HTMLElement | null; node; node = node.previousElementSibling as HTMLElement | null) {
    if (!node.hidden && !node.classList.contains('folded')) return node
  }
  return null
}

/**
 * Puts one event row in its place: a date line before it when its (local) day differs from
 * the event before, and `cont` when it continues that sender's group. The server draws the
 * same with UTC dates; here local time wins.
 */
export function arrange(row: HTMLElement): void {
  if (!row.dataset.ts) return
  const ts = Number(row.dataset.ts)
  const prev = previousEvent(row)
  const before = row.previousElementSibling
  const line = before?.classList.contains('day') ? before : null
  const newDay = !prev || dayKey(Number(prev.dataset.ts)) !== dayKey(ts)
  if (newDay && !line) row.before(dayEl(ts))
  else if (newDay && line?.firstElementChild) line.firstElementChild.textContent = dayLabel(ts)
  else if (!newDay) line?.remove()
  const kind = (r: HTMLElement) => (r.classList.contains('message') ? 'message' : 'notice')
  const cont =
    !newDay && prev !== null && previousShown(row) === prev && continuesGroup({ type: kind(prev), user: prev.dataset.user ?? '', timestamp: Number(prev.dataset.ts) }, { type: kind(row), user: row.dataset.user ?? '', timestamp: ts }, true)
  row.classList.toggle('cont', cont)
  const time = row.querySelector('time')
  if (time) {
    time.textContent = timeFormat.format(ts)
    time.title = fullFormat.format(ts)
  }
  // Links are no Tab stops, in rows the server drew too.
  for (const a of row.querySelectorAll<HTMLAnchorElement>('.text a')) a.tabIndex = -1
  if (row.classList.contains('message') && row.dataset.user !== me && !row.classList.contains('deleted')) {
    const text = row.querySelector('.text')?.textContent
    if (text && mentions(text, me)) row.classList.add('mention')
  }
}

/** Arranges every row from `first` on (after adding rows there). */
export function arrangeFrom(first: Element | null): void {
  for (let node = first; node; node = node.nextElementSibling) arrange(node as HTMLElement)
}

/** Server-rendered rows (the refresh page): local dates and times, and groups. */
export function arrangeAll(): void {
  for (const line of threadEl.querySelectorAll('.day')) line.remove()
  arrangeFrom(threadEl.firstElementChild)
}

const isPresenceRow = (node: Element | null | undefined): node is HTMLElement => node?.classList?.contains('presence') === true
const isFoldRow = (node: Element | null | undefined): node is HTMLElement => node?.classList?.contains('fold') === true

/**
 * Consecutive join and leave lines fold into one ("ann, bob and cy joined · dan left"): the
 * single lines stay in the thread (hidden, each with its id), and one line before them stands
 * for them.
 * Refolds the run of such lines `row` belongs to.
 */
function refold(row: HTMLElement): void {
  let start: Element = row
  while (isPresenceRow(start.previousElementSibling) || isFoldRow(start.previousElementSibling)) start = start.previousElementSibling!
  const run: HTMLElement[] = []
  for (let node: Element | null = start; isPresenceRow(node) || isFoldRow(node); node = node.nextElementSibling) run.push(node)
  const rows = run.filter(isPresenceRow)
  const folds = run.filter(isFoldRow)
  const first = rows[0]
  const last = rows.at(-1)
  if (rows.length < 2 || !first || !last) {
    for (const r of rows) r.classList.remove('folded')
    for (const f of folds) f.remove()
    return
  }
  const joined: string[] = []
  const left: string[] = []
  for (const r of rows) {
    const list = r.dataset.type === 'leave' ? left : joined
    const user = r.dataset.user ?? ''
    if (!list.includes(user)) list.push(user)
    r.classList.add('folded')
  }
  for (const f of folds.slice(1)) f.remove()
  const fold = folds[0] ?? el('div', 'notice fold')
  fold.replaceChildren(...joinLeaveWords(joined, left, me).map((w) => (w.user ? el('span', 'user', w.text) : w.text)), ' ', timeEl(Number(last.dataset.ts)))
  fold.title = [joined.length ? `Joined: ${joined.join(', ')}.` : '', left.length ? `Left: ${left.join(', ')}.` : ''].filter(Boolean).join(' ')
  // Before the lines it stands for: the first line of the run a reader (or a search) comes to.
  first.before(fold)
}

/** Refolds every run of join and leave lines among `rows`. */
export function refoldAround(rows: readonly Element[]): void {
  const done = new Set<Element>()
  for (const row of rows) {
    if (!isPresenceRow(row) || done.has(row)) continue
    refold(row)
    for (let node: Element | null = row; isPresenceRow(node) || isFoldRow(node); node = node.nextElementSibling) done.add(node)
  }
}
