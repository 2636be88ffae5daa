import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { backendUnavailable } from '../chatroom/deadline.js'
import { reasons } from '../transport/protocol.js'

/** Browsers get a page, everything else JSON. */
function wantsHtml(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? ''
  return accept.includes('text/html')
}

function sendError(request: FastifyRequest, reply: FastifyReply, status: number, error: string, message: string) {
  reply.code(status)
  if (wantsHtml(request)) {
    return reply.type('text/html; charset=utf-8').view('error', { title: error, status, error, message, user: request.user })
  }
  return reply.send({ error, message })
}

const reason = (status: number): string | undefined => (reasons as Record<number, string>)[status]

/** One error handler: 4xx say what was wrong; 5xx are logged in full and hidden from clients. */
export default fp(
  async function errors(app) {
    app.setErrorHandler((error: { statusCode?: number; message?: string }, request, reply) => {
      // A database or Redis that is away or did not answer in time: try again, not a bug.
      if (backendUnavailable(error)) {
        request.log.warn({ err: error }, 'a backend is unavailable')
        reply.header('retry-after', '2')
        return sendError(request, reply, 503, reasons[503], 'The chat is unavailable right now (its database or broker is not answering). Try again shortly.')
      }
      const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500
      if (status >= 500) {
        request.log.error({ err: error }, 'request failed')
        return sendError(request, reply, status, reason(status) ?? 'Internal Server Error', 'Something went wrong on our side. Please try again.')
      }
      return sendError(request, reply, status, reason(status) ?? 'Bad Request', error.message ?? 'Bad request')
    })
    app.setNotFoundHandler((request, reply) =>
      sendError(request, reply, 404, 'Not Found', `Nothing here: ${request.method} ${request.url.split('?')[0]}`),
    )
  },
  { name: 'errors' },
)
