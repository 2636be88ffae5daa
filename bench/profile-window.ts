// Where a profiled server spent its CPU within a stretch of a run (the scale run's rest, say):
//   node dist/bench/profile-window.js FROM_US TO_US bench/profiles/*.cpuprofile
// FROM_US and TO_US are monotonic microseconds, as the scale run prints them at each stage and as
// a --cpu-prof profile's sample times are. Prints self time by function and by file, busiest first.
import { readFileSync } from 'node:fs'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
}
interface Profile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

const [from, to, ...files] = process.argv.slice(2)
if (from === undefined || to === undefined || files.length === 0) {
  console.error('usage: profile-window.js FROM_US TO_US FILE.cpuprofile...')
  process.exit(2)
}
const top = (counts: Map<string, number>, busy: number, n: number) =>
  [...counts]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([what, count]) => `  ${((100 * count) / Math.max(1, busy)).toFixed(1).padStart(5)}% ${what}`)
for (const file of files) {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const byFunction = new Map<string, number>()
  const byFile = new Map<string, number>()
  let at = profile.startTime
  let total = 0
  let idle = 0
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!
    if (at < Number(from) || at > Number(to)) continue
    total++
    const { functionName, url, lineNumber } = byId.get(profile.samples[i]!)!.callFrame
    if (functionName === '(idle)') {
      idle++
      continue
    }
    // The package, or the file of ours, or node's module: enough to tell them apart.
    const where = url.replace(/^.*\/(node_modules\/[^/]+|dist\/.*)$/, '$1')
    const fn = `${functionName || '(anonymous)'} ${where}:${lineNumber}`
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + 1)
    byFile.set(where || '(native)', (byFile.get(where || '(native)') ?? 0) + 1)
  }
  const busy = total - idle
  console.log(`\n${file}: ${total} samples in the stretch, ${busy} busy`)
  console.log(top(byFunction, busy, 25).join('\n'))
  console.log('  by file:')
  console.log(top(byFile, busy, 12).join('\n'))
}
