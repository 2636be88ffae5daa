// Long polling: ask for what follows the last id we have; the server answers at once if
// there is something, else when something happens, else [] after its timeout.
import { Room, backoff, isLeaving, nameTaken, onSay, onTyping, setStatus, signedOut, sleep, tab } from './chat.js'

const room = new Room()
const thread = room.thread

async function poll() {
  let failures = 0
  let synced = false
  while (!isLeaving()) {
    try {
      const cursor = thread.cursor()
      const res = await fetch(`/longpolling/room/messages?typing=1&tab=${encodeURIComponent(tab)}${cursor ? '&' + cursor : ''}`, { headers: { accept: 'application/json' } })
      if (res.status === 401) return signedOut()
      if (res.status === 409) {
        const conflict = await res.json()
        if (conflict.reason === 'name') return nameTaken()
        // Another log of the room, or too far behind: start over from the newest.
        thread.reset(conflict.epoch)
        continue
      }
      thread.adopt(res.headers.get('x-room-epoch'))
      if (!res.ok) throw new Error(`HTTP ${res.status}`)
      room.receive(await res.json())
      if (failures > 0 || !synced) {
        setStatus('')
        synced = true
        room.roster.resync()
      }
      failures = 0
    } catch {
      if (isLeaving()) return
      synced = false
      // Revel's client stopped for good on one error; this one keeps trying.
      const wait = backoff(failures++)
      setStatus('Connection lost; retrying {s}…', Date.now() + wait)
      await sleep(wait)
    }
  }
}

onSay(async (text) => {
  try {
    const res = await fetch('/longpolling/room/messages', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ text }),
    })
    if (res.ok) return ''
    const body = await res.json().catch(() => ({}))
    return body.message || `Not sent (HTTP ${res.status}); your message is still in the box.`
  } catch {
    return 'Not sent: the server cannot be reached. Your message is still in the box.'
  }
})

onTyping(() => {
  fetch('/longpolling/room/typing', { method: 'POST' }).catch(() => {})
})

poll()
