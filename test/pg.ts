import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** The PostgreSQL the tests use: DATABASE_URL, or this machine's (trust auth, database test). */
export const ADMIN_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Whether that PostgreSQL answers. */
export async function havePostgres(): Promise<boolean> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 2000 })
  try {
    await client.connect()
    return true
  } catch {
    return false
  } finally {
    await client.end().catch(() => {})
  }
}

/**
 * A database of the test's own (so parallel test files never share a log), dropped when the
 * test ends. Returns its URL.
 */
export async function freshDatabase(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const name = `chat_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: ADMIN_URL })
  await admin.connect()
  try {
    await admin.query(`CREATE DATABASE ${name}`)
  } finally {
    await admin.end()
  }
  t.teardown(async () => {
    const drop = new pg.Client({ connectionString: ADMIN_URL })
    await drop.connect()
    try {
      await drop.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } finally {
      await drop.end()
    }
  })
  const url = new URL(ADMIN_URL)
  url.pathname = `/${name}`
  return url.toString()
}
