import pg from 'pg'

/** The PostgreSQL of the benchmark and the tests: DATABASE_URL, or this machine's (trust auth, database test). */
export const pgAdminUrl = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/** Runs one statement as the admin connection. */
async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: pgAdminUrl, connectionTimeoutMillis: 2000 })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end().catch(() => {})
  }
}

/** Whether that PostgreSQL answers. */
export async function postgresAnswers(): Promise<boolean> {
  return admin('SELECT 1').then(
    () => true,
    () => false,
  )
}

/** A new, empty database `name` (dropped first if a stopped run left it); returns its URL. */
export async function createDatabase(name: string): Promise<string> {
  await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
  await admin(`CREATE DATABASE ${name}`)
  const url = new URL(pgAdminUrl)
  url.pathname = `/${name}`
  return url.toString()
}

export function dropDatabase(name: string): Promise<void> {
  return admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
}
