// The baseline: the plainest ws broadcast server, as a Node developer would write it by hand.
// Every message goes to every client with one send() per client per message, no batching.
// It does the minimum a chat needs (an id, the sender, a timestamp) and nothing else: no
// sign-in, no archive, no limits.
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

const port = Number(process.env.PORT ?? 9100)
const server = createServer((_req, res) => res.writeHead(404).end())
const wss = new WebSocketServer({ server })
let lastId = 0
let users = 0

wss.on('connection', (ws) => {
  const user = `user${++users}`
  ws.on('message', (data) => {
    const { text } = JSON.parse(data.toString()) as { text: string }
    const message = JSON.stringify({ id: ++lastId, type: 'message', user, timestamp: Date.now(), text })
    for (const client of wss.clients) client.send(message)
  })
})

server.listen(port, '127.0.0.1', () => console.log(`baseline listening on ${port}`))
process.on('SIGTERM', () => {
  for (const client of wss.clients) client.terminate()
  server.close(() => process.exit(0))
})
