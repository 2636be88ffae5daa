// Files and pictures from the live page: the paperclip beside the message box, a picture pasted
// into the box, or files dropped on the conversation. Each goes through the client library's
// upload (one client id for every try: sent once however often it is tried again); the message
// arrives in the thread like any other. What is being sent is said under the box.
import type { ChatRoom } from '../client/room.js'
import { sizeWords } from '../client/render.js'
import { el } from './dom.js'
import { showError } from './status.js'

const button = document.getElementById('attach')
const input = document.getElementById('attach-input') as HTMLInputElement | null
const box = document.getElementById('message') as HTMLTextAreaElement | null
const line = document.getElementById('uploads')
const conversation = document.querySelector<HTMLElement>('.conversation')

/** A pasted picture has no name of its own: one from its type and the time. */
function named(file: File): string {
  if (file.name && file.name !== 'image.png') return file.name
  const ext = (file.type.split('/')[1] ?? 'png').replace('jpeg', 'jpg')
  return `pasted ${new Date().toISOString().slice(0, 19).replace('T', ' ').replace(/:/g, '.')}.${ext}`
}

/** Sends each file to the room shown (`room()`: it changes when another is shown in place). */
export function wireUploads(room: () => ChatRoom, maxBytes: number): void {
  if (!button || !input || !line) return
  const send = async (file: File) => {
    const name = named(file)
    if (file.size > maxBytes) return showError(`${name} is ${sizeWords(file.size)}: a file may be at most ${sizeWords(maxBytes)}.`)
    const item = el('span', 'upload', `Sending ${name} (${sizeWords(file.size)})…`)
    line.append(item)
    line.hidden = false
    try {
      await room().upload(file, name)
    } catch (error) {
      showError(`${name} was not sent: ${(error as { message?: string }).message || 'try again.'}`)
    } finally {
      item.remove()
      line.hidden = line.childElementCount === 0
    }
  }
  const sendAll = (files: Iterable<File>) => {
    for (const file of files) void send(file)
  }
  button.addEventListener('click', () => input.click())
  input.addEventListener('change', () => {
    sendAll([...(input.files ?? [])])
    input.value = ''
  })
  // A picture pasted into the message box is sent (text pasted stays text).
  box?.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files ?? [])]
    if (files.length === 0) return
    e.preventDefault()
    sendAll(files)
  })
  if (!conversation) return
  conversation.addEventListener('dragover', (e) => {
    if (!e.dataTransfer?.types.includes('Files')) return
    e.preventDefault()
    conversation.classList.add('dropping')
  })
  conversation.addEventListener('dragleave', (e) => {
    if (e.target === conversation || !conversation.contains(e.relatedTarget as Node | null)) conversation.classList.remove('dropping')
  })
  conversation.addEventListener('drop', (e) => {
    conversation.classList.remove('dropping')
    const files = [...(e.dataTransfer?.files ?? [])]
    if (files.length === 0) return
    e.preventDefault()
    sendAll(files)
  })
}
