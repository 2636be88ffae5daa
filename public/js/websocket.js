// WebSocket: one connection both ways, kept connected (public/js/links.js does the work).
import { keepConnected } from './links.js'

keepConnected('websocket')
