// What one commit costs on the default store (SQLite), as at a trickle: one message per commit,
// each awaited before the next (issue 33 item 4: "measure what a commit costs").
//   node dist/bench/commit-cost.js [N]    (taskset -c 1 to pin it, as the bench pins servers)
// Prints, per message: CPU (user + system) and wall time of the commits; then the CPU of putting
// them in the search index, which happens later and many at once; then the same commits with the
// write-ahead file not synced (synchronous = NORMAL), which the store never does: only to show
// what the sync to disk itself costs. Medians of three runs of N messages (2,000 unless given).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import type { EventDraft } from '../app/chatroom/event.js'
import { SqliteStore } from '../app/chatroom/store/sqlite.js'

const n = Math.max(100, Math.min(100_000, Number(process.argv[2] ?? 2000) || 2000))
const draft = (i: number): EventDraft => ({ type: 'message', user: `user${i % 10}`, text: `message number ${i} with a few words in it`, clientId: `c${i}`, sender: `s${i % 10}` })
const perMessage = (usage: NodeJS.CpuUsage) => (usage.user + usage.system) / n

async function run(synced: boolean): Promise<{ commit: number; wall: number; index: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'commit-cost-'))
  const store = new SqliteStore(dir)
  try {
    await store.open()
    if (!synced) (store as unknown as { db: Database.Database }).db.pragma('synchronous = NORMAL')
    const log = await store.log('lobby')
    for (let i = 0; i < 200; i++) await log.append([draft(i)])
    await store.search({ words: 'number', rooms: ['lobby'], limit: 1 })
    const cpu = process.cpuUsage()
    const started = performance.now()
    for (let i = 200; i < 200 + n; i++) await log.append([draft(i)])
    const commit = perMessage(process.cpuUsage(cpu))
    const wall = ((performance.now() - started) * 1000) / n
    // A search indexes everything that waits: what the index costs per message, done together.
    const before = process.cpuUsage()
    await store.search({ words: 'number', rooms: ['lobby'], limit: 1 })
    return { commit, wall, index: perMessage(process.cpuUsage(before)) }
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const us = (x: number) => `${x.toFixed(1)} µs`
for (const synced of [true, false]) {
  const runs = []
  for (let r = 0; r < 3; r++) runs.push(await run(synced))
  const label = synced ? 'as the store commits (synchronous = FULL)' : 'not synced (synchronous = NORMAL, for comparison only)'
  console.log(`${label}: per message ${us(median(runs.map((x) => x.commit)))} CPU, ${us(median(runs.map((x) => x.wall)))} wall; indexed for search later, together: ${us(median(runs.map((x) => x.index)))} CPU`)
}
