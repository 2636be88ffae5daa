// The people beside the thread: the list (who is here in the lobby, a room's members elsewhere,
// each with their presence as a person), its count, "Message" for a direct room, the typing
// line under the thread, and the list's panel on a phone.
import type { Roster as RosterSnapshot } from '../client/room.js'
import type { ChatEvent, Item } from '../client/protocol.js'
import { typingText } from '../client/render.js'
import { me, roomEl } from './context.js'
import { avatarEl, el } from './dom.js'

type Presence = 'online' | 'away' | 'offline'

const usersEl = document.getElementById('users') as HTMLElement
const typingEl = document.getElementById('typing') as HTMLElement

/** The online count, in the list's heading and on the phone's "Online" button. */
function showCount(n: number): void {
  for (const id of ['online-count', 'online-toggle-count']) {
    const node = document.getElementById(id)
    if (node) node.textContent = String(n)
  }
}

/**
 * Who is listed: a snapshot from /room/users (as of its lastId), kept current by the join and
 * leave events that follow it (and, outside the lobby, who opens or closes the room); fetched
 * again after every reconnect.
 */
export class Roster {
  lastId = Infinity
  /** Each listed person's avatar, by name. */
  users = new Map<string, string | undefined>()
  /** Each listed person's presence as a person; set by the stream's presence signals too. */
  presence: Map<string, Presence> | undefined = undefined
  private members = false
  private hidden = 0
  private readonly recent: ChatEvent[] = []

  constructor(private chat: { users(): Promise<RosterSnapshot> }) {}

  /** Another room shown in place: nobody listed until its snapshot comes. */
  switchTo(chat: { users(): Promise<RosterSnapshot> }): void {
    this.chat = chat
    this.users = new Map()
    this.presence = undefined
    this.lastId = Infinity
    this.recent.length = 0
    this.render()
  }

  async resync(): Promise<void> {
    try {
      const snapshot = await this.chat.users()
      this.lastId = snapshot.lastId
      this.users = new Map(snapshot.users.map((u) => [u.name, u.avatar]))
      // Each person's presence (online, away, offline); outside the lobby the list is the room's members.
      this.presence = new Map(snapshot.users.map((u) => [u.name, u.presence ?? 'online']))
      this.members = snapshot.members === true
      // Past the server's limit only a count comes; leaves of people not listed come off it.
      this.hidden = Math.max(0, (snapshot.count ?? snapshot.users.length) - snapshot.users.length)
      // Events that arrived while the snapshot was on its way.
      for (const event of this.recent) this.apply(event)
      this.render()
    } catch {
      // The next reconnect tries again.
    }
  }

  /** Join and leave events; those the snapshot already counts are skipped. */
  add(events: readonly ChatEvent[]): void {
    let changed = false
    for (const event of events) {
      if (event.type !== 'join' && event.type !== 'leave') continue
      this.recent.push(event)
      if (this.recent.length > 200) this.recent.shift()
      changed = this.apply(event) || changed
    }
    if (changed) this.render()
  }

  /** Who opens or closes a room other than the lobby comes as a signal (its log says membership only). */
  signals(items: readonly Item[]): void {
    // A list of members changes with joins and leaves only.
    if (this.members) return
    let changed = false
    for (const item of items) {
      // A presence event of an older log (it has an id) is no signal.
      if (item.type !== 'presence' || 'id' in item) continue
      if (item.presence === 'offline') changed = this.users.delete(item.user) || changed
      else if (!this.users.has(item.user)) {
        this.users.set(item.user, item.avatar)
        changed = true
      }
    }
    if (changed) this.render()
  }

  private apply(event: ChatEvent): boolean {
    if (event.id <= this.lastId) return false
    this.lastId = event.id
    if (event.type === 'join') {
      this.users.set(event.user, event.avatar)
      this.presence?.set(event.user, 'online')
    } else if (!this.users.delete(event.user) && this.hidden > 0) this.hidden--
    return true
  }

  render(): void {
    const presenceOf = (name: string): Presence => (name === me ? 'online' : (this.presence?.get(name) ?? 'online'))
    // Online first, then away, then offline (a list of members has all three), each by name.
    const rank = (name: string) => ({ online: 0, away: 1, offline: 2 })[presenceOf(name)]
    const names = [...this.users.keys()].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b))
    showCount(names.length + this.hidden)
    usersEl.replaceChildren(
      ...names.map((name) => {
        const presence = presenceOf(name)
        const li = el('li', name === me ? 'online me' : presence === 'online' ? 'online' : `online ${presence}`)
        li.dataset.name = name
        const avatar = avatarEl(this.users.get(name), 24)
        if (avatar) li.append(avatar)
        li.append(el('span', 'name', name))
        if (presence !== 'online') li.append(' ', el('span', 'presence', presence))
        if (name === me) li.append(' ', el('span', 'you', '(you)'))
        else if (roomEl.dataset.dm === '1') li.append(dmForm(name))
        return li
      }),
    )
  }
}

/** "Message": opens (or finds) the direct room with this person (an account; the server says so otherwise). */
function dmForm(name: string): HTMLFormElement {
  const form = el('form', 'dm')
  form.method = 'post'
  form.action = '/direct'
  for (const [field, value] of [['user', name], ['transport', roomEl.dataset.transport || 'auto']] as const) {
    const input = el('input')
    input.type = 'hidden'
    input.name = field
    input.value = value
    form.append(input)
  }
  const button = el('button', 'link', 'Message')
  button.type = 'submit'
  button.setAttribute('aria-label', `Direct message to ${name}`)
  form.append(button)
  return form
}

/** The list drawn by the server (the refresh page): swapped in whole, with its count. */
export function showUsers(list: HTMLElement, count: number): void {
  usersEl.replaceChildren(...list.childNodes)
  showCount(count)
}

export function setTyping(text: string): void {
  if (typingEl.textContent !== text) typingEl.textContent = text
}

/** "NAME is typing…": shown a few seconds after each signal, cleared when they send. Never for yourself. */
export class TypingLine {
  private readonly until = new Map<string, number>()

  /** Another room shown in place: nobody typing there yet. */
  clear(): void {
    this.until.clear()
    this.render()
  }

  constructor(private readonly showMs = 4000) {
    setInterval(() => this.render(), 1000)
  }

  add(items: readonly Item[]): void {
    let changed = false
    for (const item of items) {
      if (item.user === me) continue
      if (item.type === 'typing') this.until.set(item.user, Date.now() + this.showMs)
      else if (item.type === 'message' || item.type === 'leave') this.until.delete(item.user)
      else continue
      changed = true
    }
    if (changed) this.render()
  }

  render(): void {
    const now = Date.now()
    for (const [name, until] of this.until) if (until <= now) this.until.delete(name)
    setTyping(typingText([...this.until.keys()]))
  }
}

// The list on a phone: behind the top bar's button (a plain #people link without JavaScript).
const toggle = document.getElementById('online-toggle')
const closePeople = document.getElementById('close-people')
function showPeople(open: boolean): void {
  document.body.classList.toggle('people-open', open)
  toggle?.setAttribute('aria-expanded', String(open))
  if (open) document.getElementById('people')?.focus?.()
}
toggle?.addEventListener('click', (e) => {
  e.preventDefault()
  showPeople(!document.body.classList.contains('people-open'))
})
closePeople?.addEventListener('click', (e) => {
  e.preventDefault()
  showPeople(false)
  toggle?.focus()
})
addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && document.body.classList.contains('people-open')) showPeople(false)
})
