import t from 'tap'
import { parsePollQuery, pollQuerySchema } from '../app/validation.js'

// A long poll's query is checked by hand when well formed (every poll of every page) and by the
// schema otherwise: both must read every query the same way, and a bad one says what is wrong.

const queries: Record<string, unknown>[] = [
  {},
  { lastReceived: '0' },
  { lastReceived: '42', epoch: 'abc_DEF-1' },
  { lastReceived: '999999999999999', epoch: 'e', tab: 'tab_ABC-123', typing: '1' },
  { typing: '0' },
  { typing: 'true' },
  { typing: 'false' },
  { tab: 'a'.repeat(40) },
  { other: 'ignored', lastReceived: '7' },
  // Wrong, each in its own way.
  { lastReceived: '' },
  { lastReceived: '-1' },
  { lastReceived: '1.5' },
  { lastReceived: '1000000000000000' },
  { lastReceived: ['1', '2'] },
  { epoch: '' },
  { epoch: 'a b' },
  { epoch: 'x'.repeat(65) },
  { tab: 'short' },
  { tab: 'a'.repeat(41) },
  { tab: 'has space in it' },
  { typing: 'yes' },
  { typing: ['1'] },
  { lastReceived: '3', typing: '2' },
]

t.test('the quick check reads every query as the schema does, and a bad one is refused with the schema\'s message', async (t) => {
  for (const query of queries) {
    const schema = pollQuerySchema.safeParse(query)
    const quick = parsePollQuery(query)
    if (schema.success) t.same(quick, { data: schema.data }, `${JSON.stringify(query)}: the same reading`)
    else t.match(quick, { error: schema.error.issues[0]!.message }, `${JSON.stringify(query)}: refused, saying why`)
  }
  t.same(parsePollQuery({ lastReceived: '12', typing: '1' }), { data: { lastReceived: 12, epoch: undefined, tab: undefined, typing: true } }, 'a number, and typing as a yes')
  t.match(parsePollQuery({ lastReceived: 'abc' }), { error: /lastReceived must be a non-negative whole number/ })
})
