// Drawing on the page, always as DOM nodes (never HTML): elements, avatars, times, a message's
// formatted text with its links and your mentions, and keeping the reader's place in the thread while it
// changes.
import { formatMessage, formattedText, type FormatNode } from '../client/format.js'
import { me, threadEl } from './context.js'

/** A new element of `tag`, with its class and text when given. */
export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string, text?: string): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

/** Only avatars this server hands out: its own identicons, or Gravatar. */
export function avatarEl(url: unknown, size: number): HTMLImageElement | null {
  if (typeof url !== 'string' || !(url.startsWith('/avatars/') || url.startsWith('https://www.gravatar.com/avatar/'))) return null
  const img = el('img', 'avatar')
  img.src = url
  img.alt = ''
  img.width = size
  img.height = size
  return img
}

/** Local times: HH:MM in the thread, the full date and time on hover, a day's label on date lines. */
export const timeFormat = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' })
export const fullFormat = new Intl.DateTimeFormat([], { dateStyle: 'full', timeStyle: 'short' })
export const dayFormat = new Intl.DateTimeFormat([], { weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' })

/** A moment as a `<time>`: local HH:MM, the full date and time as its title. */
export function timeEl(timestamp: number): HTMLTimeElement {
  const t = el('time', '', timeFormat.format(timestamp))
  t.dateTime = new Date(timestamp).toISOString()
  t.title = fullFormat.format(timestamp)
  return t
}

/**
 * A message's text formatted (client/format.ts: the same tree the server writes as HTML) and built
 * as DOM nodes, never as HTML: its Markdown subset, its http(s) links as safe links, and your name
 * where you are mentioned marked. Links are no Tab stops: the thread is one (arrow keys move in it,
 * Enter opens a message's first link).
 */
export function textWithLinks(text: string): HTMLDivElement {
  const node = el('div', 'text')
  const nodes = formatMessage(text, me)
  if (formattedText(nodes) !== text) node.dataset.source = text
  node.append(...formatNodes(nodes))
  return node
}

/** The formatted tree as DOM nodes. */
function formatNodes(nodes: readonly FormatNode[]): Node[] {
  return nodes.map((node) => {
    if (typeof node === 'string') return document.createTextNode(node)
    const element = document.createElement(node.tag)
    if (node.tag === 'a') {
      const a = element as HTMLAnchorElement
      a.href = node.href ?? ''
      a.rel = 'noopener noreferrer nofollow'
      a.target = '_blank'
      a.tabIndex = -1
    } else if (node.tag === 'mark') element.className = 'at-me'
    else if (node.tag === 'ol' && node.start !== undefined) (element as HTMLOListElement).start = node.start
    element.append(...formatNodes(node.children))
    return element
  })
}

/** Whether the reader is at (or near) the bottom of the thread, so new events should follow. */
export function atBottom(): boolean {
  return threadEl.scrollHeight - threadEl.scrollTop - threadEl.clientHeight < 32
}

/** The first row the reader sees (at least partly) at the top of the thread; date lines, which come and go, skipped. */
function firstRowInView(): HTMLElement | null {
  const top = threadEl.scrollTop
  for (const row of threadEl.children as HTMLCollectionOf<HTMLElement>) {
    if (row.offsetHeight === 0 || row.classList.contains('day')) continue
    if (row.offsetTop + row.offsetHeight > top) return row
  }
  return null
}

/**
 * Runs a change to the thread and keeps the reader's place: at the bottom it follows new
 * content (or always, with `follow`); elsewhere the first row in view stays where it was on the
 * screen, whatever was added, removed or changed above it. The browser's own scroll anchoring
 * is off for the thread (chat.css), so only this moves it.
 */
export function keepingScroll(change: (thread: HTMLElement) => void, follow = atBottom()): boolean {
  const anchor = follow ? null : firstRowInView()
  const offset = anchor ? anchor.offsetTop - threadEl.scrollTop : 0
  const top = threadEl.scrollTop
  change(threadEl)
  if (follow) threadEl.scrollTop = threadEl.scrollHeight
  else if (anchor?.isConnected && anchor.offsetHeight > 0) threadEl.scrollTop = anchor.offsetTop - offset
  else threadEl.scrollTop = top
  return follow
}

/**
 * A question asked in place in a message's row (`ask`, added to its body, the row's "⋯" closed),
 * `first` focused; Cancel (`no`) or Escape takes it away and gives the row the focus back. Returns
 * what takes it away.
 */
export function askInRow(row: HTMLElement, body: Element, ask: HTMLElement, no: HTMLButtonElement, first: HTMLElement): () => void {
  keepingScroll(() => body.append(ask))
  row.classList.remove('open')
  first.focus()
  const close = () => {
    keepingScroll(() => ask.remove())
    if (row.isConnected) {
      row.tabIndex = -1
      row.focus({ preventScroll: true })
    }
  }
  no.addEventListener('click', close)
  ask.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.stopPropagation()
      close()
    }
  })
  return close
}
