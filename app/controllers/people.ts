import type { FastifyReply, FastifyRequest } from 'fastify'
import { avatarFilePattern, identiconSvg } from '../avatars.js'
import { closeCodesModule } from '../protocol.js'

/** GET /room/users — who is online, with avatars, as of event lastId. */
export function users(request: FastifyRequest, reply: FastifyReply) {
  return reply.header('cache-control', 'no-store').send(request.server.chatroom.roster())
}

/** GET /avatars/:file — a deterministic identicon, made here (no third-party request). */
export function avatar(request: FastifyRequest, reply: FastifyReply) {
  const { file } = request.params as { file: string }
  const key = avatarFilePattern.exec(file)?.[1]
  if (!key) return reply.code(404).send({ error: 'Not Found', message: 'No such avatar.' })
  return reply
    .type('image/svg+xml')
    .header('cache-control', 'public, max-age=31536000, immutable')
    .send(identiconSvg(key))
}

/** GET /public/js/protocol.js — the close codes for the browser scripts, generated from app/protocol.ts. */
export function protocolScript(_request: FastifyRequest, reply: FastifyReply) {
  return reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache').send(closeCodesModule)
}
