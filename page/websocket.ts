// The WebSocket page: one connection both ways, kept connected (page/links.ts does the work).
import { keepConnected } from './links.js'

keepConnected('websocket')
