// @mentions: finding "@yourname" in a message (whole word, any case), completing "@na" in the
// message box from the names the page knows, and counting the mentions you have not seen yet
// (a badge, the tab's title, and a browser notification when the tab is hidden and you allowed it).

export { mentionParts, mentionPattern, mentions } from '../client/render.js'

/** What is being typed as a mention just before the caret ("@an" → {start, query: "an"}), or null. */
export function mentionQuery(value: string, caret: number): { start: number; query: string } | null {
  const before = value.slice(0, caret)
  const match = /(?:^|[\s(])@([^\s@]{0,32})$/u.exec(before)
  if (!match) return null
  const query = match[1] ?? ''
  return { start: caret - query.length - 1, query }
}

/** Names starting with `query` (any case), in the order given, at most `limit`. */
export function completions(names: readonly string[], query: string, limit = 6): string[] {
  const q = query.toLocaleLowerCase()
  return names.filter((n) => n.toLocaleLowerCase().startsWith(q)).slice(0, limit)
}

/**
 * The completion list under the message box: opens while "@na" is typed, ArrowUp/ArrowDown
 * choose, Tab or Enter pick, Escape closes; a click picks too. `names()` gives the candidates.
 */
export class MentionCompleter {
  private items: string[] = []
  private index = 0
  private query: { start: number; query: string } | null = null

  constructor(
    private readonly input: HTMLTextAreaElement,
    private readonly list: HTMLElement,
    private readonly names: () => string[],
  ) {
    input.setAttribute('aria-autocomplete', 'list')
    input.setAttribute('aria-controls', list.id)
    input.addEventListener('input', () => this.update())
    input.addEventListener('click', () => this.update())
    input.addEventListener('blur', () => setTimeout(() => this.close(), 150))
    // Before the box's own Enter (which sends): capture phase.
    input.addEventListener('keydown', (e) => this.key(e), true)
    list.addEventListener('mousedown', (e) => e.preventDefault())
    list.addEventListener('click', (e) => {
      const option = (e.target as Element | null)?.closest<HTMLElement>('[role=option]')
      if (option) this.pick(Number(option.dataset.index))
    })
  }

  get open(): boolean {
    return !this.list.hidden
  }

  update(): void {
    const query = mentionQuery(this.input.value, this.input.selectionStart ?? this.input.value.length)
    this.query = query
    this.items = query ? completions(this.names(), query.query) : []
    // Nothing to complete, or the name is typed in full already.
    if (!query || this.items.length === 0 || (this.items.length === 1 && this.items[0] === query.query)) return this.close()
    this.index = Math.min(this.index, this.items.length - 1)
    this.render()
  }

  private render(): void {
    this.list.replaceChildren(
      ...this.items.map((name, i) => {
        const li = document.createElement('li')
        li.id = `${this.list.id}-${i}`
        li.setAttribute('role', 'option')
        li.setAttribute('aria-selected', String(i === this.index))
        li.dataset.index = String(i)
        li.textContent = `@${name}`
        return li
      }),
    )
    this.list.hidden = false
    this.input.setAttribute('aria-expanded', 'true')
    this.input.setAttribute('aria-activedescendant', `${this.list.id}-${this.index}`)
  }

  close(): void {
    if (this.list.hidden) return
    this.list.hidden = true
    this.list.replaceChildren()
    this.input.setAttribute('aria-expanded', 'false')
    this.input.removeAttribute('aria-activedescendant')
  }

  private key(e: KeyboardEvent): void {
    if (!this.open || e.isComposing) return
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      const step = e.key === 'ArrowDown' ? 1 : -1
      this.index = (this.index + step + this.items.length) % this.items.length
      this.render()
    } else if ((e.key === 'Tab' && !e.shiftKey) || (e.key === 'Enter' && !e.shiftKey)) {
      this.pick(this.index)
    } else if (e.key === 'Escape') {
      this.close()
    } else return
    e.preventDefault()
    e.stopImmediatePropagation()
  }

  /** Puts "@name " in place of what was typed after the "@". */
  private pick(i: number): void {
    const name = this.items[i]
    const query = this.query
    if (name === undefined || !query) return this.close()
    const value = this.input.value
    const end = query.start + 1 + query.query.length
    const after = value.slice(end)
    const insert = `@${name}${after.startsWith(' ') ? '' : ' '}`
    this.input.value = value.slice(0, query.start) + insert + after
    const caret = query.start + insert.length + (after.startsWith(' ') ? 1 : 0)
    this.input.setSelectionRange(caret, caret)
    this.close()
    this.input.dispatchEvent(new Event('input', { bubbles: true }))
    this.input.focus()
  }
}

/** What a notification of a mention says: who, where in the log, and the words. */
export interface MentionEvent {
  id: number
  user: string
  text?: string | undefined
}

/**
 * The mentions of you not seen yet: a badge (a button that goes to the oldest), the count in
 * the tab's title (through `onChange`), and a notification while the tab is hidden. A mention
 * counts as seen once it has been in view with the tab in front.
 */
export class MentionTracker {
  /** The room shown (its notifications say it). */
  room: string
  readonly unseen = new Set<HTMLElement>()
  private readonly badge: HTMLElement | null
  private readonly notifyButton: HTMLElement | null
  private readonly onChange: ((count: number) => void) | undefined
  private readonly observer: IntersectionObserver

  constructor({ thread, badge, notifyButton, room, onChange }: { thread: HTMLElement; badge: HTMLElement | null; notifyButton: HTMLElement | null; room: string; onChange?: (count: number) => void }) {
    this.badge = badge
    this.notifyButton = notifyButton
    this.room = room
    this.onChange = onChange
    this.observer = new IntersectionObserver((entries) => {
      for (const entry of entries) if (entry.isIntersecting) this.seen(entry.target as HTMLElement)
    }, { root: thread, threshold: 0.6 })
    badge?.addEventListener('click', () => this.showOldest())
    document.addEventListener('visibilitychange', () => {
      if (document.hidden) return
      // Back in front: what is in view now counts as seen.
      const view = thread.getBoundingClientRect()
      for (const row of [...this.unseen]) {
        const box = row.getBoundingClientRect()
        if (box.bottom > view.top && box.top < view.bottom) this.seen(row)
      }
    })
    this.setUpNotifications()
  }

  get count(): number {
    return this.unseen.size
  }

  /** A message row mentioning you arrived live. */
  add(row: HTMLElement, event: MentionEvent): void {
    this.unseen.add(row)
    this.observer.observe(row)
    if (document.hidden) this.notify(row, event)
    this.render()
  }

  /** A row went away or stopped being a mention (deleted, edited). */
  drop(row: HTMLElement): void {
    if (!this.unseen.delete(row)) return
    this.observer.unobserve(row)
    this.render()
  }

  seen(row: HTMLElement): void {
    if (document.hidden || !this.unseen.has(row)) return
    this.unseen.delete(row)
    this.observer.unobserve(row)
    this.render()
  }

  showOldest(): void {
    const rows = [...this.unseen].filter((r) => r.isConnected).sort((a, b) => Number(a.dataset.id) - Number(b.dataset.id))
    const row = rows[0]
    if (!row) return
    row.scrollIntoView({ block: 'center' })
    row.tabIndex = -1
    row.focus({ preventScroll: true })
    this.seen(row)
  }

  render(): void {
    for (const row of [...this.unseen]) if (!row.isConnected) this.unseen.delete(row)
    const n = this.unseen.size
    if (this.badge) {
      this.badge.hidden = n === 0
      const count = this.badge.querySelector('.count')
      if (count) count.textContent = String(n)
      this.badge.setAttribute('aria-label', `${n} mention${n === 1 ? '' : 's'} of you: show the ${n === 1 ? 'message' : 'oldest'}`)
    }
    this.onChange?.(n)
  }

  private setUpNotifications(): void {
    const button = this.notifyButton
    if (!button) return
    if (!('Notification' in window) || Notification.permission !== 'default') return
    button.hidden = false
    button.addEventListener('click', async () => {
      try {
        await Notification.requestPermission()
      } finally {
        button.hidden = Notification.permission === 'default'
      }
    })
  }

  private notify(row: HTMLElement, event: MentionEvent): void {
    if (!('Notification' in window) || Notification.permission !== 'granted') return
    try {
      const note = new Notification(`${event.user} mentioned you${this.room && this.room !== 'lobby' ? ` in #${this.room}` : ''}`, {
        body: (event.text ?? '').slice(0, 200),
        tag: `mention-${this.room}-${event.id}`,
        icon: '/public/favicon.svg',
      })
      note.addEventListener('click', () => {
        window.focus()
        row.scrollIntoView({ block: 'center' })
        note.close()
      })
    } catch {
      // Some browsers only allow notifications from a service worker: the badge and title still say it.
    }
  }
}
