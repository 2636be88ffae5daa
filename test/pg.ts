import { randomBytes } from 'node:crypto'
import { createDatabase, dropDatabase, postgresAnswers } from '../bench/pg.js'

export { pgAdminUrl as ADMIN_URL } from '../bench/pg.js'

/** Whether the tests' PostgreSQL (DATABASE_URL, else this machine's) answers. */
export const havePostgres = postgresAnswers

/**
 * A database of the test's own (so parallel test files never share a log), dropped when the
 * test ends. Returns its URL.
 */
export async function freshDatabase(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const name = `chat_test_${randomBytes(6).toString('hex')}`
  const url = await createDatabase(name)
  t.teardown(() => dropDatabase(name))
  return url
}
