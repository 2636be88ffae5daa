// The automatic page: the best way the network allows, switching by itself.
import { roomEl } from './context.js'
import { automatic } from './links.js'

automatic(Number(roomEl.dataset.retry || 60) * 1000)
