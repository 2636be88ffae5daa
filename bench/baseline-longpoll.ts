// The long-polling baseline: a bare fastify long-poll server as one would write it for a
// comparison. GET /longpolling/room/messages?lastReceived=N answers the events after N at once,
// else the next ones when they come, else [] after 25 s; POST /longpolling/room/messages
// {"text"} publishes. No sign-in, no store, no limits, no presence: the floor for the transport.
import Fastify from 'fastify'

interface Event {
  id: number
  type: 'message'
  user: string
  timestamp: number
  text: string
}

const port = Number(process.env.PORT ?? 9101)
const app = Fastify()
const events: Event[] = []
let waiters: { after: number; resolve: (events: Event[]) => void }[] = []
const after = (id: number) => events.filter((e) => e.id > id)

app.get('/', async () => 'long-poll baseline')
app.get('/longpolling/room/messages', async (request) => {
  const lastReceived = Number((request.query as { lastReceived?: string }).lastReceived ?? 0)
  const ready = after(lastReceived)
  if (ready.length > 0) return ready
  return new Promise<Event[]>((resolve) => {
    const waiter = { after: lastReceived, resolve }
    waiters.push(waiter)
    setTimeout(() => {
      waiters = waiters.filter((w) => w !== waiter)
      resolve([])
    }, 25_000).unref()
    request.raw.once('close', () => (waiters = waiters.filter((w) => w !== waiter)))
  })
})
app.post('/longpolling/room/messages', async (request, reply) => {
  const { text } = request.body as { text: string }
  const event: Event = { id: (events.at(-1)?.id ?? 0) + 1, type: 'message', user: 'poster', timestamp: Date.now(), text }
  events.push(event)
  if (events.length > 1000) events.shift()
  const waiting = waiters
  waiters = []
  for (const w of waiting) w.resolve(after(w.after))
  return reply.code(201).send(event)
})

await app.listen({ port, host: '127.0.0.1' })
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)))
