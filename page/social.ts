// Replies, threads and reactions on the live pages (issue 32), drawn as the server draws them
// (views/partials/events.eta): a reply's quote of what it answers (a click goes to it), a thread's
// count (a click opens the thread beside the room: a panel on a desktop, the whole view on a
// phone), reaction chips (a click adds or takes back one's own; who reacted on hover and focus),
// a picker of common emoji with a search over the full list (emojibase's data, fetched once when
// first searched), and the message box's "Replying to …" line.
import { plainLine } from '../client/format.js'
import { reactedBy, reactionsAfter } from '../client/render.js'
import type { ChatRoom } from '../client/room.js'
import type { ChatEvent, MessageEvent, ReactionEvent } from '../client/protocol.js'
import { me, roomName, threadEl } from './context.js'
import { el, keepingScroll, timeEl } from './dom.js'
import { showError } from './status.js'

/** What the social parts ask of the library's room shown. */
export type SocialChat = Pick<ChatRoom, 'react' | 'message' | 'thread'>

type Reactions = NonNullable<MessageEvent['reactions']>

/** The reactions of each message shown, as they stand (the rows of the thread and of the panel draw them). */
const reactionsOf = new Map<number, Reactions>()
/** The messages quoted by replies that are not shown: fetched once each. */
const fetched = new Map<number, Promise<MessageEvent | undefined>>()
let chat: SocialChat | undefined

/** The room shown is `room` now: what was known of another room's messages goes. */
export function socialRoom(room: SocialChat): void {
  chat = room
  reactionsOf.clear()
  fetched.clear()
  cancelReply()
  panel?.close()
}

/** The common reactions, first in the picker (as on the page without JavaScript). */
export const COMMON = ['👍', '❤️', '😂', '🎉', '😮', '😢', '👀', '✅']

/** A message's reaction chips: each emoji with its count, pressed when one's own is among them. */
export function reactionsEl(id: number, reactions: Reactions | undefined): HTMLDivElement {
  const bar = el('div', 'reactions')
  bar.dataset.for = String(id)
  if (reactions) reactionsOf.set(id, reactions)
  drawReactions(bar, reactions ?? [])
  return bar
}

function drawReactions(bar: HTMLElement, reactions: Reactions): void {
  bar.replaceChildren(
    ...reactions.map(({ emoji, users }) => {
      const mine = users.includes(me)
      const b = el('button', mine ? 'reaction mine' : 'reaction')
      b.type = 'button'
      b.tabIndex = -1
      b.dataset.emoji = emoji
      b.setAttribute('aria-pressed', String(mine))
      const who = reactedBy(users, me)
      b.title = `${who} reacted with ${emoji}`
      b.setAttribute('aria-label', `${emoji} ${users.length}: ${who}${mine ? ' (press to take yours back)' : ' (press to add yours)'}`)
      b.append(`${emoji} `, el('span', 'count', String(users.length)))
      return b
    }),
  )
}

/** A reaction event (live, or the answer to one's own): every row of its message shows the new totals. */
export function applyReaction(event: ReactionEvent): void {
  const standing = reactionsAfter(reactionsOf.get(event.ref) ?? [], event.user, event.emoji, event.action)
  if (!standing) return
  reactionsOf.set(event.ref, standing)
  keepingScroll(() => {
    for (const bar of document.querySelectorAll<HTMLElement>(`.reactions[data-for="${event.ref}"]`)) drawReactions(bar, standing)
  })
}

/** Adds one's `emoji` to message `id`, or takes it back; what the server answers is applied at once (the live event changes nothing more). */
async function react(id: number, emoji: string, action: 'add' | 'remove'): Promise<void> {
  if (!chat) return
  try {
    const answer = await chat.react(id, emoji, action)
    if (answer.type === 'reaction') applyReaction(answer)
  } catch (error) {
    showError((error as { message?: string }).message || 'The reaction did not go through; try again.')
  }
}

/** A reply's quote of the message it answers: who, and its first line (filled in once known); a click goes to it. */
export function quoteEl(event: MessageEvent): HTMLAnchorElement | null {
  if (event.replyTo === undefined) return null
  const a = el('a', 'quote')
  a.href = `#m${event.replyTo}`
  a.dataset.ref = String(event.replyTo)
  a.tabIndex = -1
  const who = event.replyToUser ?? ''
  a.append(el('span', 'visually-hidden', 'In reply to '), el('span', 'user', who === me ? 'you' : who), ' ', el('span', 'line', '…'))
  return a
}

/** Fills in the quotes among `rows`: from the message's row when it is shown, else from the server (once per message). */
export function resolveQuotes(rows: Iterable<Element>): void {
  for (const row of rows) {
    for (const quote of row.querySelectorAll<HTMLElement>('.quote[data-ref]')) {
      const id = Number(quote.dataset.ref)
      const line = quote.querySelector('.line')
      if (!line) continue
      const shown = threadEl.querySelector<HTMLElement>(`:scope > .message[data-id="${id}"]`)
      if (shown) {
        const text = shown.querySelector<HTMLElement>('.text')?.dataset.source ?? shown.querySelector('.text')?.textContent ?? ''
        const file = shown.querySelector<HTMLElement>('.file img')?.getAttribute('alt') ?? shown.querySelector('.file .name')?.textContent
        fillQuote(quote, shown.classList.contains('deleted') ? undefined : text || (file ? `📎 ${file}` : ''))
        continue
      }
      if (!chat) continue
      let known = fetched.get(id)
      if (!known) fetched.set(id, (known = chat.message(id).catch(() => undefined)))
      void known.then((message) => fillQuote(quote, message && !message.deleted ? message.text || (message.file ? `📎 ${message.file.name}` : '') : undefined, message === undefined))
    }
  }
}

function fillQuote(quote: HTMLElement, text: string | undefined, unknown = false): void {
  const line = quote.querySelector('.line')
  if (!line) return
  if (text === undefined) {
    line.textContent = unknown ? 'an earlier message' : 'message deleted'
    line.className = unknown ? 'line' : 'line gone'
  } else line.textContent = plainLine(text) || '…'
}

/** The quotes of message `id` say it is deleted now. */
export function quotesGone(id: number): void {
  for (const quote of document.querySelectorAll<HTMLElement>(`.quote[data-ref="${id}"]`)) fillQuote(quote, undefined)
}

/** A thread's first message: "3 replies · last 14:02", a button that opens the thread. */
export function repliesEl(id: number, count: number, last: number | undefined): HTMLButtonElement {
  const b = el('button', 'replies')
  b.type = 'button'
  b.tabIndex = -1
  b.dataset.thread = String(id)
  b.dataset.count = String(count)
  if (last !== undefined) b.dataset.last = String(last)
  drawReplies(b, count, last)
  return b
}

function drawReplies(b: HTMLElement, count: number, last: number | undefined): void {
  b.replaceChildren(`${count} ${count === 1 ? 'reply' : 'replies'}`)
  // A thread one follows (opened, or answered, in this browser): what came since, as its own unread mark.
  const unread = count - (seenOf(Number(b.dataset.thread)) ?? count)
  if (unread > 0) {
    const mark = el('span', 'thread-unread', `${unread} new`)
    b.append(' ', mark)
  }
  if (last !== undefined) {
    const when = el('span', 'last', ' · last ')
    when.append(timeEl(last))
    b.append(when)
  }
  b.hidden = count === 0
}

// Threads' own unread marks: for each thread one opened or answered (kept in this browser, per
// person and room), how many of its replies one has seen.
const threadsKey = () => `chat.threads.v1:${me}:${roomName}`
function seenThreads(): Record<string, number> {
  try {
    return (JSON.parse(localStorage.getItem(threadsKey()) ?? '{}') as Record<string, number>) ?? {}
  } catch {
    return {}
  }
}
function seenOf(root: number): number | undefined {
  return seenThreads()[root]
}
/** The thread of `root` is seen up to `count` replies: its rows' marks follow. */
export function markThreadSeen(root: number, count: number): void {
  const seen = seenThreads()
  if ((seen[root] ?? -1) >= count) return
  seen[root] = count
  // The newest 200 threads are kept.
  const kept = Object.fromEntries(Object.entries(seen).slice(-200))
  try {
    localStorage.setItem(threadsKey(), JSON.stringify(kept))
  } catch {
    // No storage here: marks last as long as the page.
  }
  for (const b of document.querySelectorAll<HTMLElement>(`.message .replies[data-thread="${root}"]`)) drawReplies(b, Number(b.dataset.count || 0), Number(b.dataset.last) || undefined)
}

/**
 * A reply came (`count`: its thread's replies with it, as the reply says) or one was deleted
 * (`count` undefined: one fewer): the thread's first message shows the new count. A count from a
 * reply never lowers what a newer read of the message said.
 */
export function countReply(root: number, count: number | undefined, at?: number, exact = false): void {
  for (const row of document.querySelectorAll<HTMLElement>(`.message[data-id="${root}"]`)) {
    let b = row.querySelector<HTMLElement>('.replies')
    if (!b) {
      if (count === undefined) continue
      b = repliesEl(root, 0, undefined)
      row.querySelector('.content')?.after(b)
    }
    const shown = Number(b.dataset.count || 0)
    const now = count === undefined ? Math.max(0, shown - 1) : exact ? count : Math.max(shown, count)
    b.dataset.count = String(now)
    if (at !== undefined && at >= Number(b.dataset.last || 0)) b.dataset.last = String(at)
    drawReplies(b, now, Number(b.dataset.last) || undefined)
  }
}

// The message box's reply: "Replying to ann: …" above it until sent or cancelled.
let replying: { id: number } | undefined
const replyBar = document.getElementById('reply-bar')

/** The message box answers `row`'s message next (shown in the room, quoting it). */
export function startReply(row: HTMLElement): void {
  const id = Number(row.dataset.id)
  if (!replyBar || !id) return
  replying = { id }
  const who = row.dataset.user === me ? 'yourself' : (row.dataset.user ?? '')
  const text = row.querySelector<HTMLElement>('.text')?.dataset.source ?? row.querySelector('.text')?.textContent ?? ''
  const cancel = el('button', 'link cancel-reply', 'Cancel')
  cancel.type = 'button'
  cancel.setAttribute('aria-label', 'Cancel the reply')
  cancel.addEventListener('click', cancelReply)
  replyBar.replaceChildren(el('span', 'words', `Replying to ${who}: `), el('span', 'line', plainLine(text)), ' ', cancel)
  replyBar.hidden = false
  document.getElementById('message')?.focus()
}

/** The reply the next message is, taken (the line goes); undefined for a plain message. */
export function takeReply(): { replyTo: number; alsoToRoom: true } | undefined {
  const taken = replying
  cancelReply()
  return taken && { replyTo: taken.id, alsoToRoom: true }
}

export function cancelReply(): void {
  replying = undefined
  if (replyBar) {
    replyBar.hidden = true
    replyBar.replaceChildren()
  }
}

// Escape in the message box cancels a reply.
document.getElementById('message')?.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && replying) {
    e.preventDefault()
    cancelReply()
  }
})

/** The emoji list as the server serves it: [emoji, words to search by]. */
let emojiIndex: Promise<[string, string][]> | undefined
function emojis(): Promise<[string, string][]> {
  emojiIndex ??= fetch('/public/js/vendor/emoji.json')
    .then((res) => (res.ok ? (res.json() as Promise<[string, string][]>) : []))
    .catch(() => {
      emojiIndex = undefined
      return []
    })
  return emojiIndex
}

/**
 * The reaction picker for message `id`, beside `anchor`: the common ones, then a search over the
 * full list. Tab and the arrow keys move in it, Enter picks, Escape closes (the focus goes back).
 */
export function openPicker(anchor: HTMLElement, id: number): void {
  document.querySelector('.emoji-picker')?.remove()
  const picker = el('div', 'emoji-picker')
  picker.setAttribute('role', 'dialog')
  picker.setAttribute('aria-label', 'React with an emoji')
  const grid = el('div', 'emoji-grid')
  grid.setAttribute('role', 'group')
  grid.setAttribute('aria-label', 'Emoji')
  const search = el('input')
  search.type = 'search'
  search.placeholder = 'Search emoji'
  search.setAttribute('aria-label', 'Search emoji')
  const close = () => {
    picker.remove()
    anchor.focus()
  }
  const button = (emoji: string, label: string) => {
    const b = el('button', 'emoji', emoji)
    b.type = 'button'
    b.title = label
    b.setAttribute('aria-label', label)
    b.addEventListener('click', () => {
      const mine = reactionsOf.get(id)?.find((r) => r.emoji === emoji)?.users.includes(me) ?? false
      void react(id, emoji, mine ? 'remove' : 'add')
      close()
    })
    return b
  }
  const show = (list: [string, string][]) => grid.replaceChildren(...list.map(([emoji, words]) => button(emoji, words.split('|')[0] ?? emoji)))
  show(COMMON.map((e) => [e, e]))
  let seq = 0
  search.addEventListener('input', async () => {
    const mine = ++seq
    const words = search.value.trim().toLowerCase()
    if (!words) return show(COMMON.map((e) => [e, e]))
    const all = await emojis()
    if (mine !== seq) return
    show(all.filter(([, w]) => w.includes(words)).slice(0, 48))
  })
  picker.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault()
      e.stopPropagation()
      close()
      return
    }
    if (!['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown'].includes(e.key) || e.target === search) return
    const buttons = [...grid.querySelectorAll<HTMLButtonElement>('button')]
    const i = buttons.indexOf(e.target as HTMLButtonElement)
    if (i < 0) return
    e.preventDefault()
    const step = e.key === 'ArrowLeft' ? -1 : e.key === 'ArrowRight' ? 1 : e.key === 'ArrowUp' ? -8 : 8
    buttons[Math.min(buttons.length - 1, Math.max(0, i + step))]?.focus()
  })
  picker.addEventListener('focusout', (e) => {
    if (!(e.relatedTarget instanceof Node) || !picker.contains(e.relatedTarget)) setTimeout(() => picker.isConnected && !picker.contains(document.activeElement) && picker.remove(), 0)
  })
  picker.append(grid, search)
  const row = anchor.closest('.message')
  ;(row?.querySelector('.body') ?? document.body).append(picker)
  grid.querySelector<HTMLButtonElement>('button')?.focus()
}

/** A reaction chip, or a reply count, clicked anywhere (the thread, the panel). */
document.addEventListener('click', (e) => {
  const target = e.target as HTMLElement
  const chip = target.closest<HTMLButtonElement>('.reactions .reaction')
  if (chip) {
    const id = Number(chip.closest<HTMLElement>('.reactions')?.dataset.for)
    const emoji = chip.dataset.emoji
    if (id && emoji) void react(id, emoji, chip.classList.contains('mine') ? 'remove' : 'add')
    return
  }
  const count = target.closest<HTMLElement>('.message .replies')
  if (count) {
    e.preventDefault()
    void panel?.open(Number(count.dataset.thread))
    return
  }
  const quote = target.closest<HTMLAnchorElement>('.message .quote')
  if (quote && jump) {
    e.preventDefault()
    void jump(Number(quote.dataset.ref))
  }
})

/** How the thread shows message `id` (older history loaded until it is there), set by the thread. */
let jump: ((id: number) => Promise<void>) | undefined
export function onJump(reveal: (id: number) => Promise<void>): void {
  jump = reveal
}

/** How a message row is drawn (rows.ts's renderEvent: the panel draws the thread's messages with it). */
type Draw = (event: ChatEvent) => HTMLElement
/** How the panel sends a reply: through the room's outbox (exactly once), the same as the message box. */
type Send = (text: string, reply: { replyTo: number; alsoToRoom?: true }) => void

/**
 * The thread beside the room: its first message and its replies, live; a box to answer with
 * "Also send to the room". A panel on a wide screen, the whole view on a phone; Escape or Close
 * shuts it (the focus goes back where it was).
 */
export class ThreadPanel {
  root = 0
  private lastReply = 0
  private returnTo: HTMLElement | null = null
  constructor(
    private readonly element: HTMLElement,
    private readonly draw: Draw,
    private readonly send: Send,
  ) {
    const form = element.querySelector<HTMLFormElement>('form')
    const box = element.querySelector<HTMLTextAreaElement>('textarea')
    const also = element.querySelector<HTMLInputElement>('input[type=checkbox]')
    element.querySelector('.close-thread')?.addEventListener('click', () => this.close())
    element.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && !(e.target as HTMLElement).closest('.emoji-picker')) this.close()
    })
    form?.addEventListener('submit', (e) => {
      e.preventDefault()
      const text = box?.value.trim() ?? ''
      if (!text || !this.root) return
      this.send(text, also?.checked ? { replyTo: this.root, alsoToRoom: true } : { replyTo: this.root })
      if (box) box.value = ''
      if (also) also.checked = false
    })
    box?.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault()
        form?.requestSubmit()
      }
    })
  }

  private get log(): HTMLElement {
    return this.element.querySelector('.thread-log')!
  }

  /** Opens the thread message `id` is in. */
  async open(id: number): Promise<void> {
    if (!chat || !id) return
    this.returnTo = document.activeElement as HTMLElement | null
    this.element.hidden = false
    document.body.classList.add('thread-open')
    this.log.replaceChildren(el('p', 'loading', 'Loading the thread…'))
    try {
      const { root, replies } = await chat.thread(id)
      this.root = root?.id ?? id
      this.lastReply = 0
      this.log.replaceChildren()
      if (root) this.append(root)
      const divider = el('p', 'thread-divider', replies.length === 0 ? 'No replies yet' : `${replies.length} ${replies.length === 1 ? 'reply' : 'replies'}`)
      this.log.append(divider)
      for (const reply of replies) this.append(reply)
      markThreadSeen(this.root, replies.filter((r) => !r.deleted).length)
      this.element.querySelector<HTMLTextAreaElement>('textarea')?.focus()
    } catch (error) {
      this.log.replaceChildren(el('p', 'flash error', (error as { message?: string }).message || 'The thread could not be loaded.'))
    }
  }

  close(): void {
    if (this.element.hidden) return
    this.element.hidden = true
    this.root = 0
    document.body.classList.remove('thread-open')
    this.returnTo?.focus()
  }

  /** A message of the open thread, in it (the first message, or a reply newer than those shown). */
  append(event: MessageEvent): void {
    if (event.id <= this.lastReply) return
    if (event.id !== this.root) this.lastReply = event.id
    const row = this.draw(event)
    row.removeAttribute('id')
    row.querySelector('.actions')?.remove()
    // Its replies are this panel: no count on the first message, no quote of it on the replies.
    row.querySelector('.replies')?.remove()
    if (event.replyTo === this.root) row.querySelector('.quote')?.remove()
    keepingScroll(() => this.log.append(row))
    this.log.scrollTop = this.log.scrollHeight
    const divider = this.log.querySelector('.thread-divider')
    const count = this.log.querySelectorAll('.message').length - 1
    if (divider && event.id !== this.root) divider.textContent = `${count} ${count === 1 ? 'reply' : 'replies'}`
  }

  /** Live events of the room: the open thread's replies join it (seen, as they are shown). */
  receive(events: readonly ChatEvent[]): void {
    if (!this.root) return
    for (const event of events) {
      if (event.type !== 'message' || event.thread !== this.root) continue
      this.append(event)
      if (event.threadReplies !== undefined) markThreadSeen(this.root, event.threadReplies)
    }
  }
}

let panel: ThreadPanel | undefined
/** The page's thread panel (made by the page once it can draw rows and send). */
export function threadPanel(element: HTMLElement | null, draw: Draw, send: Send): ThreadPanel | undefined {
  if (element) panel = new ThreadPanel(element, draw, send)
  return panel
}
