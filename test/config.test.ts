import t from 'tap'
import { ConfigError, loadConfig } from '../conf/config.js'

t.test('defaults need nothing set', async (t) => {
  const config = loadConfig({})
  t.equal(config.HOST, '127.0.0.1')
  t.equal(config.PORT, 9000)
  t.equal(config.ARCHIVE_SIZE, 100)
  t.equal(config.LONGPOLL_TIMEOUT, 25)
  t.throws(() => loadConfig({ LONGPOLL_TIMEOUT: '60' }), /LONGPOLL_TIMEOUT/, 'long polls must end before proxies cut them (60 s)')
})

t.test('a missing SESSION_SECRET is generated and flagged, a set one is kept', async (t) => {
  const a = loadConfig({})
  const b = loadConfig({})
  t.equal(a.sessionSecretGenerated, true)
  t.ok(a.SESSION_SECRET.length >= 32)
  t.not(a.SESSION_SECRET, b.SESSION_SECRET, 'random per process')
  const secret = 's'.repeat(40)
  const c = loadConfig({ SESSION_SECRET: secret })
  t.equal(c.SESSION_SECRET, secret)
  t.equal(c.sessionSecretGenerated, false)
})

t.test('values are parsed from strings; empty means unset', async (t) => {
  const config = loadConfig({ PORT: '8080', ARCHIVE_SIZE: '10', SUBSCRIBER_QUEUE: '', HOST: '' })
  t.equal(config.PORT, 8080)
  t.equal(config.ARCHIVE_SIZE, 10)
  t.equal(config.SUBSCRIBER_QUEUE, 256)
  t.equal(config.HOST, '127.0.0.1')
})

t.test('a bad value stops start-up with one line naming the variable', async (t) => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ PORT: 'abc' }, 'PORT', /whole number from 0 to 65535/],
    [{ PORT: '70000' }, 'PORT', /0 to 65535/],
    [{ PORT: '-1' }, 'PORT', /0 to 65535/],
    [{ ARCHIVE_SIZE: '0' }, 'ARCHIVE_SIZE', /1 to 10000/],
    [{ ARCHIVE_SIZE: '2.5' }, 'ARCHIVE_SIZE', /whole number/],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /info/],
    [{ LONGPOLL_TIMEOUT: '90' }, 'LONGPOLL_TIMEOUT', /seconds from 0.1 to 55/],
    [{ SESSION_MAX_AGE: 'forever' }, 'SESSION_MAX_AGE', /whole number/],
    [{ SUBSCRIBER_QUEUE: '0' }, 'SUBSCRIBER_QUEUE', /1 to 100000/],
  ]
  for (const [env, variable, allowed] of cases) {
    t.throws(() => loadConfig(env), ConfigError, `${JSON.stringify(env)} throws`)
    try {
      loadConfig(env)
    } catch (error) {
      const message = (error as Error).message
      t.match(message, new RegExp(`^Invalid ${variable}\\b`), `names ${variable}`)
      t.match(message, allowed, 'says what is allowed')
      t.notMatch(message, /\n/, 'one line')
    }
  }
})

t.test('a short SESSION_SECRET is refused without echoing it', async (t) => {
  try {
    loadConfig({ SESSION_SECRET: 'hunter2' })
    t.fail('should throw')
  } catch (error) {
    const message = (error as Error).message
    t.match(message, /^Invalid SESSION_SECRET: must be at least 32 characters/)
    t.notMatch(message, /hunter2/)
  }
})
