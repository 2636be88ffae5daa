import type { FastifyReply, FastifyRequest } from 'fastify'
import { memberKey } from '../chatroom/presence.js'
import { BusyError, cleanName, INLINE_TYPES, newFileId, prepare } from '../files.js'
import { currentUser } from '../plugins/session.js'
import { JSON_TYPE, roomBase, roomOf, safeBack, sendRefusal } from '../transport/http.js'
import { httpRefusal, reasons } from '../transport/protocol.js'

/** Room for the form around the file (its other fields, the multipart boundaries) beyond UPLOAD_MAX_BYTES. */
const FORM_OVERHEAD = 64 * 1024
const DAY_MS = 24 * 3600_000

/** Whether the request came from a page's form (a browser without JavaScript): it gets pages, not JSON. */
const fromPage = (request: FastifyRequest) => (request.headers.accept ?? '').includes('text/html')

/** A refusal: JSON to programs, an error page to a form's browser. */
function refuse(request: FastifyRequest, reply: FastifyReply, status: 400 | 403 | 404 | 413 | 415 | 429 | 503, message: string, headers: Record<string, string> = {}) {
  reply.headers(headers)
  if (fromPage(request)) throw Object.assign(new Error(message), { statusCode: status })
  return reply.code(status).type(JSON_TYPE).send({ error: reasons[status], message })
}

/**
 * 413 in the middle of a body: none of the rest is kept. The parser lets go of it; the answer says
 * `Connection: close`, and once it is out the connection is half-closed and what still comes is
 * discarded as it arrives for a moment, then the connection is cut. Node's own way of closing after
 * such an answer (destroySoon) cuts it as soon as the answer is written, with the sender's bytes
 * still unread: that resets the connection, and a client still writing loses the answer on the way
 * (seen on Node 24, now and then on 20), so this connection is given a patient one instead.
 */
function refuseTheRest(request: FastifyRequest, reply: FastifyReply, status: 400 | 403 | 404 | 413 | 429 | 503, message: string, headers: Record<string, string> = {}) {
  request.raw.unpipe()
  request.raw.resume()
  // A short body is read to its end and let go (the connection stays usable); a long one is not waited for.
  const declared = Number(request.headers['content-length'])
  if (status !== 413 && Number.isFinite(declared) && declared <= DRAIN_BYTES) return refuse(request, reply, status, message, headers)
  const socket = request.raw.socket
  if (socket) {
    socket.destroySoon = () => {
      if (socket.writable) socket.end()
      setTimeout(() => socket.destroy(), LINGER_MS).unref()
    }
  }
  return refuse(request, reply, status, message, { ...headers, connection: 'close' })
}

/** A refused upload's body up to this long is read to its end rather than cut. */
const DRAIN_BYTES = 1024 * 1024

/** How long a refused upload's connection takes (and discards) what is still on its way before it is cut. */
const LINGER_MS = 2000

/**
 * POST /rooms/:room/files (the lobby's: /room/files) — multipart: `file`, and optional `text` (its
 * caption), `clientId` (a resend answers the first), `replyTo` and `alsoToRoom`. 201 with the
 * message event (`file: {id, name, size, type, width?, height?}`); a form goes back to its page.
 * Too big: 413, from the declared length before anything is read (else as the limit is passed);
 * over the day's quota: 429 with Retry-After. An image is kept re-encoded, upright, without its
 * metadata, with a thumbnail.
 */
export async function upload(request: FastifyRequest, reply: FastifyReply) {
  const room = await roomOf(request)
  const { config, chatroom } = request.server
  const user = currentUser(request)
  const max = config.UPLOAD_MAX_BYTES
  const tooBig = `A file may be at most ${Math.floor(max / 1024 / 1024) || `${Math.floor(max / 1024)} K`}${max >= 1024 * 1024 ? ' MB' : 'B'}.`
  const declared = Number(request.headers['content-length'])
  // Refused before a byte of it is read.
  if (Number.isFinite(declared) && declared > max + FORM_OVERHEAD) return refuseTheRest(request, reply, 413, tooBig)
  if (!request.isMultipart()) return refuse(request, reply, 415, 'Files are sent as multipart/form-data, with the file in the field "file".')
  // Whether they may send here at all (a member, not muted, within the flood limit), before the bytes are read.
  const may = await room.mayUpload(user)
  if (may) {
    const { status, headers } = httpRefusal(may)
    return refuseTheRest(request, reply, status as 403 | 404 | 429 | 503, may.message, headers)
  }
  const owner = memberKey(user)
  let used: number
  try {
    used = await chatroom.files.usedSince(owner, Date.now() - DAY_MS)
  } catch {
    return refuse(request, reply, 503, 'Files cannot be stored right now; try again shortly.')
  }
  const quotaMessage = `You have sent ${Math.round(config.UPLOAD_QUOTA_BYTES / 1024 / 1024)} MB of files today, as much as one may; try again later.`
  if (used >= config.UPLOAD_QUOTA_BYTES) return refuseTheRest(request, reply, 429, quotaMessage, { 'retry-after': '3600' })
  const fields: Record<string, string> = {}
  let sent: { name: string | undefined; bytes: Buffer } | undefined
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        // One file, in the field "file"; any other is read past and left.
        if (part.fieldname !== 'file' || sent) {
          part.file.resume()
          continue
        }
        // Read as it comes; past the limit what was read is let go at once, and the rest is not taken (413, the connection closes).
        // (busboy would read on to the end of the part, discarding: the limit ends the reading instead.)
        const chunks: Buffer[] = []
        let over = false
        part.file.once('limit', () => {
          over = true
          part.file.destroy()
        })
        try {
          for await (const chunk of part.file as AsyncIterable<Buffer>) chunks.push(chunk)
        } catch (error) {
          if (!over) throw error
        }
        if (over || part.file.truncated) {
          chunks.length = 0
          return refuseTheRest(request, reply, 413, tooBig)
        }
        sent = { name: part.filename, bytes: Buffer.concat(chunks) }
      } else if (typeof part.value === 'string') fields[part.fieldname] = part.value
    }
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code === 'FST_REQ_FILE_TOO_LARGE') return refuseTheRest(request, reply, 413, tooBig)
    // Anything else the form parser refuses (limits, no boundary, a body cut short) is the sender's.
    request.log.info({ err: error }, 'an upload whose form could not be read')
    return refuseTheRest(request, reply, 400, 'The form could not be read: one file, in the field "file", and a few short fields.')
  }
  if (!sent) return refuse(request, reply, 400, 'No file: send it in the multipart field "file".')
  if (used + sent.bytes.length > config.UPLOAD_QUOTA_BYTES) return refuse(request, reply, 429, quotaMessage, { 'retry-after': '3600' })
  let prepared
  try {
    prepared = await prepare(sent.bytes)
  } catch (error) {
    if (error instanceof BusyError) return refuse(request, reply, 503, error.message, { 'retry-after': '5' })
    throw error
  }
  const id = newFileId()
  const file = {
    id,
    name: cleanName(sent.name),
    size: prepared.bytes.length,
    type: prepared.type,
    ...(prepared.width !== undefined && { width: prepared.width }),
    ...(prepared.height !== undefined && { height: prepared.height }),
  }
  try {
    await chatroom.files.put({ room: room.name, owner, at: Date.now(), ...file }, prepared.bytes, prepared.thumbnail)
  } catch (error) {
    request.log.error({ err: error }, 'could not store a file')
    return refuse(request, reply, 503, 'Files cannot be stored right now; try again shortly.')
  }
  const said = await room.say(user, fields.text, undefined, fields.clientId, { replyTo: fields.replyTo, alsoToRoom: fields.alsoToRoom }, file)
  // Refused, or a resend of one already sent (the first one's file stands): this copy goes.
  if (said.outcome !== 'ok' || said.duplicate) await chatroom.files.remove(room.name, id).catch(() => {})
  else {
    // Tried twice: a file left unattached is taken for one whose send never committed, and pruned after a day.
    const message = said.stored.event.id
    await chatroom.files.attach(room.name, id, message).catch(() => chatroom.files.attach(room.name, id, message)).catch((error: unknown) => request.log.error({ err: error }, 'could not attach a file to its message'))
  }
  if (fromPage(request)) {
    if (said.outcome !== 'ok') throw Object.assign(new Error(said.message), { statusCode: httpRefusal(said).status })
    const back = typeof fields.back === 'string' && safeBack.test(fields.back) ? fields.back : roomBase('/refresh', room)
    return reply.redirect(back, 303)
  }
  if (said.outcome !== 'ok') return sendRefusal(reply, said)
  return reply.code(said.duplicate ? 200 : 201).type(JSON_TYPE).send(said.stored.json)
}

/** A file's bytes (or its thumbnail) to a reader of its room (ids are 128 random bits, handed out only in its message); served so that nothing in it runs as this site. */
async function serve(request: FastifyRequest, reply: FastifyReply, which: 'file' | 'thumbnail') {
  const room = await roomOf(request)
  const { id } = request.params as { id: string }
  const { files } = request.server.chatroom
  const notFound = () => reply.code(404).type(JSON_TYPE).send({ error: 'Not Found', message: 'There is no such file in this room.' })
  if (!/^[0-9a-f]{32}$/.test(id)) return notFound()
  let record, bytes
  try {
    record = await files.get(room.name, id)
    // Served as soon as it is kept: its message reaches readers as it commits, before the file is attached to it.
    bytes = record ? await files.bytes(room.name, id, which) : undefined
  } catch {
    return reply.code(503).type(JSON_TYPE).send({ error: 'Service Unavailable', message: 'Files cannot be read right now; try again shortly.' })
  }
  if (!record || !bytes) return notFound()
  const inline = which === 'thumbnail' || INLINE_TYPES.has(record.type)
  const type = which === 'thumbnail' ? 'image/webp' : record.type.startsWith('text/') ? `${record.type}; charset=utf-8` : record.type
  const ascii = record.name.replace(/[^\x20-\x7e]|["\\]/g, '_')
  return reply
    .header('content-type', type)
    .header('x-content-type-options', 'nosniff')
    // Opened on its own, a file can run nothing and reach nothing: no scripts, no origin of ours.
    .header('content-security-policy', "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox")
    .header('content-disposition', `${inline ? 'inline' : 'attachment'}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(record.name)}`)
    .header('cross-origin-resource-policy', 'same-origin')
    // A deleted message's file must not outlive it in a shared cache.
    .header('cache-control', 'private, max-age=300')
    .send(bytes)
}

/** GET /rooms/:room/files/:id (the lobby's: /room/files/:id) — the file, to the room's readers (404 to anyone else, as every room route). */
export function download(request: FastifyRequest, reply: FastifyReply) {
  return serve(request, reply, 'file')
}

/** GET /rooms/:room/files/:id/thumbnail — an image's thumbnail (WebP, at most 360 pixels a side); 404 for a file that is no image. */
export function thumbnail(request: FastifyRequest, reply: FastifyReply) {
  return serve(request, reply, 'thumbnail')
}
