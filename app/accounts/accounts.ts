import { randomBytes } from 'node:crypto'
import type { AccountRecord, AccountStore } from '../chatroom/store/store.js'
import { skeleton, userFromSignIn, type User } from '../identity.js'
import { hashPassword, passwordProblem, verifyPassword } from './passwords.js'
import { Throttle } from './throttle.js'

/** An account as the store keeps it: controllers name it from here, never from the store. */
export type { AccountRecord } from '../chatroom/store/store.js'

export type Refused = { ok: false; status: 400 | 401 | 409 | 429; message: string; retryAfter?: number }

export interface AccountsOptions {
  /** Claims a name for a person id among the people present (the bus's name claims). */
  claim: (id: string, name: string) => Promise<boolean>
  /** Failed password sign-ins: per name, then per address (growing delays past the free ones). */
  perName?: Throttle
  perAddress?: Throttle
}

/** The user a session holds for an account: its id is the account's, the same on every device. */
export function accountUser(account: AccountRecord): User {
  return { id: account.id, name: account.name, account: true, ...(account.emailHash && { emailHash: account.emailHash }) }
}

/**
 * Registered names: creating an account, signing in with a password (slow for an attacker,
 * never a lock-out the owner cannot get past), changing it. Framework-free: the controllers
 * turn the outcomes into pages and JSON; the chatroom never sees any of this.
 */
export class Accounts {
  readonly perName: Throttle
  readonly perAddress: Throttle
  constructor(
    readonly store: AccountStore,
    private readonly options: AccountsOptions,
  ) {
    // A name: 5 free failures per 15 min, then 1 s, 2 s, 4 s ... at most 5 min between tries.
    this.perName = options.perName ?? new Throttle(5, 15 * 60_000, 5 * 60_000)
    // An address (a class, an office): 20 free failures per 15 min, then at most a minute.
    this.perAddress = options.perAddress ?? new Throttle(20, 15 * 60_000, 60_000)
  }

  /** The account that holds this name or a look-alike of it. */
  holding(name: string): Promise<AccountRecord | undefined> {
    return this.store.bySkeleton(skeleton(name))
  }

  /**
   * A new account with a password (and optionally an email, for the picture). `holder`: the
   * id of the guest who holds the name now and keeps it as theirs.
   */
  async register(input: { name: unknown; password: unknown; email?: unknown }, holder?: string): Promise<{ ok: true; account: AccountRecord } | Refused> {
    if (typeof input.name !== 'string') return { ok: false, status: 400, message: 'Please choose a name.' }
    // The name field works as on the welcome page (a name, or an email whose part before "@" is the name).
    const named = userFromSignIn(input.name)
    if ('error' in named) return { ok: false, status: 400, message: named.error }
    const { name } = named.user
    let emailHash = named.user.emailHash
    if (typeof input.email === 'string' && input.email.trim() !== '') {
      const email = input.email.includes('@') ? userFromSignIn(input.email) : { error: 'That email address does not look right.' }
      if ('error' in email) return { ok: false, status: 400, message: email.error }
      emailHash = email.user.emailHash
    }
    const problem = passwordProblem(input.password)
    if (problem) return { ok: false, status: 400, message: problem }
    const taken: Refused = { ok: false, status: 409, message: `The name "${name}" (or one that looks the same) is registered already. If it is yours, sign in with its password.` }
    const key = skeleton(name)
    if (await this.store.bySkeleton(key)) return taken
    const id = holder ?? randomBytes(16).toString('base64url')
    if (!(await this.options.claim(id, name))) {
      return { ok: false, status: 409, message: `Someone in the room goes by "${name}" (or a name that looks the same) right now. Pick another name.` }
    }
    const account: AccountRecord = { id, name, skeleton: key, passwordHash: await hashPassword(input.password as string), emailHash, createdAt: Date.now() }
    if (!(await this.store.create(account))) return taken
    return { ok: true, account }
  }

  /**
   * Signs in with a name and password. "No such account" and "wrong password" get the same
   * answer after the same work. Past a few failures a name (and an address) must wait longer
   * and longer between tries, except on a device that signed in to that account before
   * (`trusted`: the account id its device cookie names), so nobody can lock the owner out.
   */
  async signIn(name: string, password: string, address: string, trusted?: string): Promise<{ ok: true; account: AccountRecord } | Refused> {
    const nameKey = skeleton(name.trim())
    const account = await this.store.bySkeleton(nameKey)
    const known = account !== undefined && trusted === account.id
    const wait = Math.max(known ? 0 : this.perName.wait(nameKey), known ? 0 : this.perAddress.wait(address))
    if (wait > 0) {
      const retryAfter = Math.ceil(wait / 1000)
      return { ok: false, status: 429, retryAfter, message: `Too many wrong passwords. Try again in ${retryAfter} s.` }
    }
    if (await verifyPassword(account?.passwordHash, password)) {
      this.perName.succeed(nameKey)
      return { ok: true, account: account! }
    }
    this.perName.fail(nameKey)
    this.perAddress.fail(address)
    return { ok: false, status: 401, message: 'That name and password do not match an account.' }
  }

  /** A new password for the account, given the current one. */
  async changePassword(accountId: string, current: unknown, next: unknown): Promise<{ ok: true } | Refused> {
    const account = await this.store.byId(accountId)
    if (!account) return { ok: false, status: 401, message: 'Sign in first.' }
    if (account.passwordHash && !(typeof current === 'string' && (await verifyPassword(account.passwordHash, current)))) {
      return { ok: false, status: 401, message: 'The current password is not right.' }
    }
    const problem = passwordProblem(next)
    if (problem) return { ok: false, status: 400, message: problem }
    await this.store.setPassword(account.id, await hashPassword(next as string))
    return { ok: true }
  }
}
