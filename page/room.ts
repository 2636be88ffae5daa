// A live page's room: the thread, the people and the typing line, fed from one stream of events
// and signals (those of the client library's room), and the message box's extras (@name
// completion, Up to edit your last message).
import type { ChatRoom } from '../client/room.js'
import type { ChatEvent, Item } from '../client/protocol.js'
import { messageBox } from './composer.js'
import { me, threadEl } from './context.js'
import { keyboardInThread, startEdit } from './edit.js'
import { MentionCompleter } from './mentions.js'
import type { OutboxView } from './outbox.js'
import { Roster, TypingLine } from './people.js'
import { Thread } from './thread.js'

export type RoomChat = Pick<ChatRoom, 'history' | 'markRead' | 'edit' | 'delete' | 'users'>

export class Room {
  readonly thread: Thread
  readonly roster: Roster
  readonly typing = new TypingLine()
  /** Set by the page's links (page/outbox.ts): what is written and not confirmed yet, as rows. */
  outbox: OutboxView | null = null

  constructor(
    public chat: RoomChat,
    send?: (text: string, reply: { replyTo: number; alsoToRoom?: true }) => void,
  ) {
    this.thread = new Thread(chat, send)
    this.roster = new Roster(chat)
    keyboardInThread(this.thread)
    // @name completion: recent senders first, then who is listed.
    const list = document.getElementById('mention-list')
    if (list) {
      new MentionCompleter(messageBox, list, () => {
        const names: string[] = []
        const rows = threadEl.querySelectorAll<HTMLElement>(':scope > .message')
        for (let i = rows.length - 1; i >= 0 && names.length < 50; i--) names.push(rows[i]?.dataset.user ?? '')
        names.push(...[...this.roster.users.keys()].sort((a, b) => a.localeCompare(b)))
        return [...new Set(names)].filter((n) => n && n !== me)
      })
    }
    // Up in an empty box edits your last message (as in most chat apps).
    messageBox.addEventListener('keydown', (e) => {
      if (e.key !== 'ArrowUp' || messageBox.value !== '' || e.shiftKey || e.altKey || e.ctrlKey || e.metaKey) return
      const row = this.thread.lastOwn()
      if (!row) return
      e.preventDefault()
      row.scrollIntoView({ block: 'nearest' })
      startEdit(row, this.thread)
    })
  }

  get lastId(): number {
    return this.thread.lastId
  }

  /** Shows another room in place: the thread, the people and the typing line start over with `chat`. */
  switchTo(chat: RoomChat): void {
    this.chat = chat
    this.thread.switchTo(chat)
    this.roster.switchTo(chat)
    this.typing.clear()
  }

  receive(items: readonly Item[]): void {
    const events = items.filter((item): item is ChatEvent => typeof (item as { id?: unknown }).id === 'number')
    this.thread.add(events)
    this.roster.add(events)
    this.roster.signals(items)
    this.typing.add(items)
    this.outbox?.seen(events, this.thread.lastId)
  }

  /** Puts the focus back in the message box. */
  get composer(): HTMLTextAreaElement {
    return messageBox
  }
}
