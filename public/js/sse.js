// Server-Sent Events: the room as a stream, sending by POST.
import { keepConnected } from './links.js'

keepConnected('sse')
