// The event-stream page: the person's stream as Server-Sent Events, sending by POST.
import { keepConnected } from './links.js'

keepConnected('sse')
