// One's own messages and the keyboard in the thread: Edit in place (Enter saves, Escape cancels,
// the counter as in the message box), Delete asked once in place, "⋯" on touch screens; the
// thread is one Tab stop that arrow keys, Home and End move in.
import type { DeleteEvent, EditEvent } from '../client/protocol.js'
import { messageLength } from '../client/render.js'
import { counterText } from './composer.js'
import { maxLength, threadEl } from './context.js'
import { askInRow, el, keepingScroll } from './dom.js'
import { askInPlace } from './moderate.js'
import { rowText } from './rows.js'
import { openPicker, startReply } from './social.js'
import { signedOut } from './status.js'
import type { Thread } from './thread.js'

/** An edit or a deletion of one's own message, through the library's room (the answer is the event), or why not. */
async function changeMessage(thread: Thread, id: number, kind: 'edit' | 'delete', text = ''): Promise<{ event: EditEvent | DeleteEvent; error?: undefined } | { error: string }> {
  try {
    return { event: await (kind === 'edit' ? thread.chat.edit(id, text) : thread.chat.delete(id)) }
  } catch (error) {
    const { kind: why, message } = (error ?? {}) as { kind?: string; message?: string }
    if (why === 'signedOut') {
      signedOut()
      return { error: 'You were signed out.' }
    }
    return { error: message || 'That did not work.' }
  }
}

/** Edits one's own message in place: a box with its text; Enter saves, Escape cancels. */
export function startEdit(row: HTMLElement, thread: Thread): void {
  const body = row.querySelector('.body')
  if (!body || row.classList.contains('editing') || row.classList.contains('deleted')) return
  const id = Number(row.dataset.id)
  const original = rowText.get(row) ?? row.querySelector<HTMLElement>('.text')?.dataset.source ?? row.querySelector('.text')?.textContent ?? ''
  row.classList.add('editing')
  row.classList.remove('open')
  const editor = el('form', 'edit-form')
  const box = el('textarea')
  box.value = original
  box.rows = Math.min(8, original.split('\n').length + 1)
  box.setAttribute('aria-label', 'Your message, edited')
  const hint = el('span', 'hint', 'Enter saves · Esc cancels')
  const counter = el('span', 'say-count')
  counter.hidden = true
  const error = el('p', 'edit-error')
  error.setAttribute('role', 'alert')
  error.hidden = true
  const save = el('button', 'save', 'Save')
  save.type = 'submit'
  const cancel = el('button', 'cancel link', 'Cancel')
  cancel.type = 'button'
  const bar = el('div', 'edit-bar')
  bar.append(hint, counter, cancel, save)
  editor.append(box, bar, error)
  keepingScroll(() => body.append(editor))
  box.focus()
  box.setSelectionRange(box.value.length, box.value.length)
  const done = () => {
    keepingScroll(() => {
      editor.remove()
      row.classList.remove('editing')
    })
    row.tabIndex = -1
    row.focus({ preventScroll: true })
  }
  const count = () => {
    const n = messageLength(box.value)
    counter.hidden = n <= maxLength * 0.9
    counter.textContent = counterText(n)
    counter.classList.toggle('over', n > maxLength)
    save.disabled = n > maxLength
  }
  box.addEventListener('input', count)
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      e.preventDefault()
      e.stopPropagation()
      done()
    } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault()
      editor.requestSubmit()
    }
  })
  cancel.addEventListener('click', done)
  editor.addEventListener('submit', async (e) => {
    e.preventDefault()
    const text = box.value
    const n = messageLength(text)
    if (n === 0) {
      error.textContent = 'A message cannot be empty: use Delete to remove it.'
      error.hidden = false
      return
    }
    if (n > maxLength) return
    if (text.trim() === (rowText.get(row) ?? '').trim()) return done()
    editor.setAttribute('aria-busy', 'true')
    save.disabled = true
    const result = await changeMessage(thread, id, 'edit', text)
    editor.removeAttribute('aria-busy')
    save.disabled = false
    if (result.error !== undefined) {
      error.textContent = result.error
      error.hidden = false
      return
    }
    done()
    thread.applyChange(result.event)
  })
  count()
}

/** Deleting one's own message: asked once, in place. */
function confirmDelete(row: HTMLElement, thread: Thread): void {
  const body = row.querySelector('.body')
  if (!body || row.querySelector('.confirm-delete') || row.classList.contains('deleted')) return
  const id = Number(row.dataset.id)
  const ask = el('div', 'confirm-delete')
  ask.setAttribute('role', 'group')
  ask.setAttribute('aria-label', 'Delete this message?')
  const yes = el('button', 'danger', 'Delete')
  yes.type = 'button'
  const no = el('button', 'link', 'Cancel')
  no.type = 'button'
  const error = el('span', 'edit-error')
  ask.append(el('span', '', 'Delete this message for everyone?'), ' ', yes, ' ', no, ' ', error)
  askInRow(row, body, ask, no, yes)
  yes.addEventListener('click', async () => {
    yes.disabled = true
    const result = await changeMessage(thread, id, 'delete')
    yes.disabled = false
    if (result.error !== undefined) {
      error.textContent = result.error
      return
    }
    ask.remove()
    thread.applyChange(result.event)
  })
}

/** The rows arrow keys move between: what the reader sees, in order. */
function navigableRows(): HTMLElement[] {
  return [...threadEl.querySelectorAll<HTMLElement>(':scope > .message, :scope > .notice, :scope > .outbox > .outgoing')].filter((r) => r.offsetHeight > 0)
}

function focusRow(row: HTMLElement): void {
  row.tabIndex = -1
  row.focus({ preventScroll: true })
  row.scrollIntoView({ block: 'nearest' })
}

/**
 * The thread is one Tab stop (role=log): Up and Down move between its rows, Home and End go to
 * the first and the last, Enter opens the focused message's first link, Escape goes back to the
 * thread. Your own message's Edit and Delete are the next Tab stops while it has the focus
 * (`thread`: none on the refresh page, whose forms do that).
 */
export function keyboardInThread(thread: Thread | null): void {
  threadEl.addEventListener('keydown', (e) => {
    const target = e.target as HTMLElement
    if (target.closest('textarea, input, button, summary, form, [role=group]') || e.altKey || e.ctrlKey || e.metaKey) return
    const current = target === threadEl ? null : target.closest<HTMLElement>('.message, .notice, .outgoing')
    if (e.key === 'Enter' && current) {
      const link = current.querySelector<HTMLAnchorElement>('.text a')
      if (link) {
        e.preventDefault()
        link.click()
      }
      return
    }
    if (e.key === 'Escape' && current) {
      e.preventDefault()
      threadEl.focus()
      return
    }
    if ((e.key === 'e' || e.key === 'F2') && current?.classList.contains('own') && thread) {
      e.preventDefault()
      startEdit(current, thread)
      return
    }
    if (!['ArrowUp', 'ArrowDown', 'Home', 'End'].includes(e.key)) return
    if (!current && (e.key === 'Home' || e.key === 'End')) return
    const rows = navigableRows()
    if (rows.length === 0) return
    e.preventDefault()
    const view = threadEl.getBoundingClientRect()
    const inView = rows.filter((r) => {
      const box = r.getBoundingClientRect()
      return box.bottom > view.top + 1 && box.top < view.bottom - 1
    })
    let next: HTMLElement | undefined
    if (e.key === 'Home') next = rows[0]
    else if (e.key === 'End') next = rows.at(-1)
    else if (!current) next = e.key === 'ArrowUp' ? (inView.at(-1) ?? rows.at(-1)) : (inView[0] ?? rows[0])
    else next = rows[rows.indexOf(current) + (e.key === 'ArrowUp' ? -1 : 1)]
    if (next) focusRow(next)
  })
  // The focused row's buttons are Tab stops; every other row's are not.
  threadEl.addEventListener('focusin', (e) => {
    const row = (e.target as HTMLElement).closest?.('.message, .outgoing')
    if (row && row.parentElement && (row.parentElement === threadEl || row.parentElement.classList.contains('outbox'))) {
      for (const button of row.querySelectorAll<HTMLButtonElement>('.actions button')) button.tabIndex = 0
    }
  })
  threadEl.addEventListener('focusout', (e) => {
    const row = (e.target as HTMLElement).closest?.('.message, .outgoing')
    if (!row || (e.relatedTarget instanceof Node && row.contains(e.relatedTarget))) return
    for (const button of row.querySelectorAll<HTMLButtonElement>('.actions button')) button.tabIndex = -1
    row.classList.remove('open')
  })
  if (!thread) return
  // Edit, Delete, and "⋯" (touch screens) on one's own messages.
  threadEl.addEventListener('click', (e) => {
    const button = (e.target as HTMLElement).closest<HTMLButtonElement>('.actions button')
    if (!button) return
    const row = button.closest<HTMLElement>('.message')
    if (!row) return
    if (button.classList.contains('more')) {
      const open = !row.classList.contains('open')
      for (const other of threadEl.querySelectorAll(':scope > .message.open')) other.classList.remove('open')
      row.classList.toggle('open', open)
      button.setAttribute('aria-expanded', String(open))
    } else if (button.classList.contains('reply')) startReply(row)
    else if (button.classList.contains('in-thread')) void thread.panel?.open(Number(row.dataset.id))
    else if (button.classList.contains('react')) openPicker(button, Number(row.dataset.id))
    else if (button.classList.contains('edit')) startEdit(row, thread)
    else if (button.classList.contains('delete')) confirmDelete(row, thread)
    else if (button.classList.contains('report')) askInPlace(row, 'report')
    else if (button.classList.contains('mod-delete')) askInPlace(row, 'delete')
    else if (button.classList.contains('mute')) askInPlace(row, 'mute')
    else if (button.classList.contains('kick')) askInPlace(row, 'kick')
    else if (button.classList.contains('ban')) askInPlace(row, 'ban')
  })
}
