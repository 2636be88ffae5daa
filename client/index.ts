// The chat client library: every way into a room (WebSocket, Server-Sent Events, long polling),
// falling back and coming back up by itself, rooms with their cursors (epoch, last id), an outbox
// whose sends are posted exactly once, typed events. The same module runs in the room pages
// (served at /public/js/client/index.js) and in Node 20+ (examples/bot.ts).
export { ChatClient, signIn, type ChatEvents, type ChatOptions, type JoinOptions } from './client.js'
export type { ConnectionState, EndReason, StateInfo } from './connection.js'
export { FollowStream, ME, type FollowEvents, type PersonEvent } from './follow.js'
export type { FetchLike, SocketConstructor, SocketLike, StorageLike } from './net.js'
export { ChatError, type EntryStatus, type Outbox, type OutboxEntry, type OutboxEvents, type ReplyTo, type Sent } from './outbox.js'
export { CloseCode, newClientId, TRANSPORTS, type ChatEvent, type DeleteEvent, type EditEvent, type ErrorBody, type Item, type JoinEvent, type LeaveEvent, type MessageEvent, type ModerationEvent, type PresenceSignal, type ReactionEvent, type Transport, type TypingSignal } from './protocol.js'
export type { ChatRoom, RoomEvents, Roster } from './room.js'
