// The thread: one log's events shown once each, in order, with edits and deletions applied in
// place, join and leave lines folded, missed stretches said, older history on request, the
// mentions of you tracked, the read marker kept, and what came in while you could not see it
// counted (a pill when scrolled up, the tab's title when hidden).
import type { ChatRoom } from '../client/room.js'
import type { ChatEvent, DeleteEvent, EditEvent, MessageEvent } from '../client/protocol.js'
import { me, roomEl, roomName, threadEl } from './context.js'
import { atBottom, el, keepingScroll } from './dom.js'
import { MentionTracker } from './mentions.js'
import { arrange, arrangeFrom, refoldAround, renderEvent, showDeleted, showEdited } from './rows.js'
import { applyReaction, countReply, markThreadSeen, onJump, quotesGone, resolveQuotes, threadPanel, type ThreadPanel } from './social.js'
import { showError } from './status.js'

/** A reply kept in its thread (not also sent to the room): no row of the room's thread (its first message counts it). */
const threadOnly = (e: ChatEvent): boolean => e.type === 'message' && e.thread !== undefined && !e.alsoToRoom

/** What the thread asks of the client library's room: its history, its read marker, edits of one's own. */
export type ThreadChat = Pick<ChatRoom, 'history' | 'markRead' | 'edit' | 'delete'>

/** "No messages yet": shown by the style sheet while the thread has nothing else; kept across switches. */
const emptyHint = threadEl.querySelector('.empty-thread')
const pill = document.getElementById('new-pill')

/**
 * Counts what arrives while the reader cannot see it: a pill over the thread when scrolled up
 * ("3 new messages"), and the count in the tab's title while the tab is hidden (with the
 * mentions of you not seen yet: "(@1 · 3) …").
 */
export class Unseen {
  private below = 0
  private hidden = 0
  private mentions = 0

  constructor() {
    pill?.addEventListener('click', () => {
      threadEl.scrollTop = threadEl.scrollHeight
      this.seenBelow()
    })
    threadEl.addEventListener('scroll', () => {
      if (atBottom()) this.seenBelow()
    })
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) {
        this.hidden = 0
        this.showTitle()
      }
    })
  }

  /**
   * "(@1 · 3) " before the room's title: the title as it is now (another room's after a switch in
   * place), and after what the app shell puts first ("[2] ", the other rooms' count).
   */
  private showTitle(): void {
    const counts = [this.mentions > 0 ? `@${this.mentions}` : '', this.hidden > 0 ? String(this.hidden) : ''].filter(Boolean)
    const [, others = '', , title = ''] = /^(\[\d+\] )?(\([^)]*\) )?(.*)$/s.exec(document.title) ?? []
    document.title = `${others}${counts.length > 0 ? `(${counts.join(' · ')}) ` : ''}${title}`
  }

  setMentions(n: number): void {
    this.mentions = n
    this.showTitle()
  }

  /** `count` messages from others arrived; `followed` says whether the thread scrolled to them. */
  add(count: number, followed: boolean): void {
    if (count === 0) return
    if (!followed) {
      this.below += count
      if (pill) {
        pill.textContent = `${this.below} new message${this.below === 1 ? '' : 's'} below`
        pill.hidden = false
      }
    }
    if (document.hidden) {
      this.hidden += count
      this.showTitle()
    }
  }

  seenBelow(): void {
    this.below = 0
    if (pill) pill.hidden = true
  }
}

/** Each room's read marker on its way (by the library's room): up to which id, and its timer. */
const reads = new WeakMap<object, { upTo: number; timer: ReturnType<typeof setTimeout> | undefined }>()
/**
 * Tells the server (through the library's room `chat`) this room is read up to `id`, at most
 * every 2 s; each room its own (a switch within the 2 s marks both rooms, each at its own id).
 */
export function markRead(chat: Pick<ThreadChat, 'markRead'>, id: number): void {
  let read = reads.get(chat)
  if (!read) reads.set(chat, (read = { upTo: 0, timer: undefined }))
  read.upTo = Math.max(read.upTo, id)
  if (read.timer) return
  const pending = read
  pending.timer = setTimeout(() => {
    pending.timer = undefined
    chat.markRead(pending.upTo).catch(() => {})
  }, 2000)
}

/** Sends a room's pending read marker now (the page leaves the room): a list drawn next counts from there, not from before the last 2 s. */
function flushRead(chat: Pick<ThreadChat, 'markRead'>): Promise<void> {
  const read = reads.get(chat)
  if (!read?.timer) return Promise.resolve()
  clearTimeout(read.timer)
  read.timer = undefined
  return chat.markRead(read.upTo).catch(() => {})
}

/**
 * The thread as a sequence of consecutive ids of one log: shows each event once, in order,
 * applies edits and deletions to the messages they refer to, folds join and leave lines, says
 * when events were missed, and loads older ones on request. Pending messages (the outbox) stay
 * at its end. `chat` is the client library's room (its cursor, history, edits).
 */
export class Thread {
  lastId = 0
  firstId = 0
  /** Where the outbox shows what is not confirmed yet: always last. */
  readonly outboxEl = el('div', 'outbox')
  readonly mentions: MentionTracker
  private readonly unseen = new Unseen()
  private readonly olderButton = document.getElementById('older')
  /** The room's last event when the page was made: mentions after it are news, those before were there already. */
  private seenUpTo = Number(roomEl.dataset.seen || 0)
  /** The next batch is the window again (a start over, a switch): history, not news. */
  private restarted = false

  /** The thread beside the room (a panel), when the page has one. */
  readonly panel: ThreadPanel | undefined

  constructor(public chat: ThreadChat, send?: (text: string, reply: { replyTo: number; alsoToRoom?: true }) => void) {
    this.olderButton?.addEventListener('click', () => void this.loadOlder())
    this.panel = send ? threadPanel(document.getElementById('thread-panel'), renderEvent, send) : undefined
    onJump((id) => this.reveal(id))
    this.outboxEl.id = 'outbox'
    threadEl.append(this.outboxEl)
    this.mentions = new MentionTracker({
      thread: threadEl,
      badge: document.getElementById('mention-badge'),
      notifyButton: document.getElementById('notify-me'),
      room: roomName,
      onChange: (n) => this.unseen.setMentions(n),
    })
  }

  keepingScroll(change: (thread: HTMLElement) => void, follow?: boolean): boolean {
    return keepingScroll(change, follow)
  }

  /** Shows the events not shown yet; returns how many were new. */
  add(events: readonly ChatEvent[]): number {
    const rows: HTMLElement[] = []
    const changes: (EditEvent | DeleteEvent)[] = []
    const mentioned: [HTMLElement, MessageEvent][] = []
    let fromOthers = 0
    let sentByMe = false
    let followed = keepingScroll(() => {
      for (const event of events) {
        if (event.id <= this.lastId) continue
        if (this.lastId > 0 && event.id > this.lastId + 1) {
          const missed = event.id - this.lastId - 1
          const gap = el('div', 'notice gap', `${missed} earlier event${missed === 1 ? ' was' : 's were'} missed while you were away`)
          this.outboxEl.before(gap)
          rows.push(gap)
        }
        if (this.firstId === 0) this.firstId = event.id
        this.lastId = event.id
        if (event.type === 'edit' || event.type === 'delete') {
          changes.push(event)
          continue
        }
        if (event.type === 'reaction') {
          applyReaction(event)
          continue
        }
        if (event.type === 'message' && event.thread !== undefined) {
          countReply(event.thread, event.threadReplies ?? 1, event.timestamp)
          // One's own reply: one follows that thread, and has seen it up to here.
          if (event.user === me && event.threadReplies !== undefined) markThreadSeen(event.thread, event.threadReplies)
        }
        if (threadOnly(event)) {
          // An answer to yours kept in its thread tells you as a mention does, at the thread's first message.
          const root = event.type === 'message' && event.replyToUser === me && event.user !== me ? threadEl.querySelector<HTMLElement>(`:scope > .message[data-id="${event.thread}"]`) : null
          if (root && event.type === 'message') mentioned.push([root, event])
          continue
        }
        // Kinds of event this page does not draw (a newer server's) take their id and nothing else.
        if (event.type !== 'message' && event.type !== 'join' && event.type !== 'leave' && event.type !== 'moderation') continue
        const row = renderEvent(event)
        this.outboxEl.before(row)
        rows.push(row)
        if (event.type === 'message' && event.user !== me) {
          fromOthers++
          if (row.classList.contains('mention')) mentioned.push([row, event])
        } else if (event.type === 'message') sentByMe = true
      }
      if (rows.length > 0) {
        arrangeFrom(rows[0] ?? null)
        refoldAround(rows)
        resolveQuotes(rows)
      }
      for (const change of changes) this.applyChange(change)
    })
    this.panel?.receive(events)
    // What you just sent is where you look: the thread goes to it.
    if (sentByMe && !followed) {
      threadEl.scrollTop = threadEl.scrollHeight
      this.unseen.seenBelow()
      followed = true
    }
    this.unseen.add(fromOthers, followed)
    // After a start over, the first batch is the window again: history, not news.
    if (!this.restarted) for (const [row, event] of mentioned) if (event.id > this.seenUpTo) this.mentions.add(row, event)
    if (events.length > 0) this.restarted = false
    // Seen: the read marker follows (so this room is not "new" on your other devices).
    if (rows.length > 0 && followed && !document.hidden) markRead(this.chat, this.lastId)
    this.showOlder()
    return rows.length
  }

  /** An edit or a deletion (from the stream, or the answer to one's own): applied once, in place; unknown ids are ignored. */
  applyChange(event: EditEvent | DeleteEvent): void {
    // The open thread shows it too.
    for (const other of document.querySelectorAll<HTMLElement>(`.thread-log .message[data-id="${Number(event.ref)}"]`)) {
      if (event.type === 'delete') showDeleted(other)
      else if (typeof event.text === 'string') showEdited(other, event.text, event.timestamp)
    }
    if (event.type === 'delete') quotesGone(event.ref)
    // A reply deleted: its thread's count as it now stands (the reply need not be shown).
    if (event.type === 'delete' && event.thread !== undefined && event.threadReplies !== undefined) countReply(event.thread, event.threadReplies, undefined, true)
    const row = threadEl.querySelector<HTMLElement>(`.message[data-id="${Number(event.ref)}"]`)
    if (!row || row.classList.contains('deleted')) return
    if (event.type === 'delete') {
      this.mentions.drop(row)
      keepingScroll(() => showDeleted(row))
      return
    }
    if (typeof event.text !== 'string') return
    const edited = Number(row.querySelector<HTMLElement>('.edited')?.dataset.ts ?? 0)
    // An older edit (the answer to ours, after the stream's newer one) changes nothing.
    if (edited > event.timestamp) return
    keepingScroll(() => showEdited(row, event.text, event.timestamp))
    if (!row.classList.contains('mention')) this.mentions.drop(row)
  }

  /** The cursor cannot be resumed (a new log, or too far behind): start over from the newest, with nothing shown twice. */
  reset(): void {
    this.lastId = 0
    this.firstId = 0
    this.seenUpTo = 0
    this.restarted = true
    threadEl.replaceChildren(...(emptyHint ? [emptyHint] : []), el('div', 'notice gap', 'The conversation was reloaded from the server.'), this.outboxEl)
    this.mentions.render()
    this.showOlder()
  }

  showOlder(): void {
    if (this.olderButton) this.olderButton.hidden = !(this.firstId > 1)
  }

  /** The room shown is left: what was read of it is told now (see flushRead). */
  flushRead(): Promise<void> {
    return flushRead(this.chat)
  }

  /** Another room shown in place (`chat`, the library's room): the thread starts empty; its recent history comes next. */
  switchTo(chat: ThreadChat): void {
    this.chat = chat
    this.lastId = 0
    this.firstId = 0
    this.restarted = true
    this.seenUpTo = Number(roomEl.dataset.seen || 0)
    for (const row of [...this.mentions.unseen]) this.mentions.drop(row)
    this.mentions.room = roomName
    this.outboxEl.replaceChildren()
    threadEl.replaceChildren(...(emptyHint ? [emptyHint] : []), this.outboxEl)
    this.unseen.seenBelow()
    this.showOlder()
  }

  /**
   * The room's recent history (before `before`, when the stream starts the room there), when its
   * events come from the person's stream.
   */
  async loadRecent(before?: number): Promise<void> {
    const chat = this.chat
    try {
      const { events } = await chat.history(before === undefined ? { limit: 50 } : { before, limit: 50 })
      if (chat !== this.chat) return
      // Live events came first: what came before them is older history.
      if (this.lastId > 0) await this.loadOlder()
      else {
        this.restarted = true
        this.add(events)
        threadEl.scrollTop = threadEl.scrollHeight
      }
      await this.revealTarget()
    } catch (error) {
      if ((error as { kind?: string } | undefined)?.kind !== 'conflict') showError('Could not load the conversation; try again.')
    }
  }

  /** A link to a message (#mID, as search results give): older history is loaded until it is shown, then it is scrolled to. */
  async revealTarget(): Promise<void> {
    const id = Number(/^#m(\d+)$/.exec(location.hash)?.[1] ?? 0)
    if (id) await this.reveal(id, 'target')
  }

  /** Shows message `id` (a reply's quote clicked): older history loaded until it is there, scrolled to, marked a moment. */
  async reveal(id: number, mark = 'flash-target'): Promise<void> {
    for (let pages = 0; pages < 20 && this.firstId > id && this.firstId > 1; pages++) await this.loadOlder()
    const row = document.getElementById(`m${id}`)
    if (!row) {
      // Kept in its thread: the thread opens at it.
      if (this.panel) await this.panel.open(id)
      return
    }
    row.classList.remove(mark)
    void row.offsetWidth
    row.classList.add(mark)
    row.scrollIntoView({ block: 'center' })
    row.tabIndex = -1
    row.focus({ preventScroll: true })
  }

  /** "Load older messages": the page of history before the first event shown; what the reader sees stays in place. */
  async loadOlder(): Promise<void> {
    if (this.firstId <= 1) return
    try {
      // Another log of the room: the library starts over (the thread with it).
      const { events } = await this.chat.history({ before: this.firstId, limit: 50 })
      const older = events.filter((e) => e.id < this.firstId)
      const first = older[0]
      if (!first) {
        this.firstId = 1
        return this.showOlder()
      }
      keepingScroll(() => {
        const oldFirst = threadEl.querySelector<HTMLElement>('[data-ts]')
        // History shows messages as they stand: its edits and deletions are already applied.
        const rows = older.filter((e) => (e.type === 'message' && !threadOnly(e)) || e.type === 'join' || e.type === 'leave' || e.type === 'moderation').map(renderEvent)
        if (rows.length === 0) return
        threadEl.prepend(...rows)
        arrangeFrom(rows[0] ?? null)
        if (oldFirst) arrange(oldFirst)
        refoldAround(oldFirst ? [...rows, oldFirst] : rows)
        resolveQuotes(threadEl.querySelectorAll(':scope > .message'))
      }, false)
      this.firstId = first.id
      this.showOlder()
    } catch (error) {
      if ((error as { kind?: string } | undefined)?.kind !== 'conflict') showError('Could not load older messages; try again.')
    }
  }

  /** The newest of your own messages that can still be edited. */
  lastOwn(): HTMLElement | null {
    const rows = threadEl.querySelectorAll<HTMLElement>(':scope > .message.own:not(.deleted)')
    return rows[rows.length - 1] ?? null
  }
}
