import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server'
import { z } from 'zod'
import type { AccountRecord, AccountStore, PasskeyRecord } from '../chatroom/store/store.js'

/** Who the passkeys belong to: the site's host name (the rp id) and the origin its pages are served from. */
export interface RelyingParty {
  id: string
  origin: string
}

export type PasskeyRefused = { ok: false; status: 400 | 401 | 404 | 409; message: string }

/** A person can find one passkey among this many; more is someone filling the store. */
export const PASSKEYS_MAX = 20
/** How long the browser may take (and the challenge lives: the controller's cookie lasts as long). */
export const CHALLENGE_MS = 5 * 60_000

const RP_NAME = 'Chat'
const transportNames = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'] as const
const base64url = (max: number) => z.string().max(max).regex(/^[A-Za-z0-9_-]*$/, 'not base64url')

/** What PublicKeyCredential.toJSON() gives after navigator.credentials.create (the parts we read). */
export const registrationSchema = z.object({
  id: base64url(1366).min(1),
  rawId: base64url(1366).min(1),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: base64url(8192),
    attestationObject: base64url(65536),
    authenticatorData: base64url(65536).optional(),
    // Unknown ones (a newer browser's) are dropped rather than refused.
    transports: z.array(z.string().max(32)).max(16).optional().transform((list) => (list ?? []).filter((t): t is (typeof transportNames)[number] => (transportNames as readonly string[]).includes(t))),
    publicKeyAlgorithm: z.number().int().optional(),
    publicKey: base64url(8192).optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
})

/** What PublicKeyCredential.toJSON() gives after navigator.credentials.get. */
export const authenticationSchema = z.object({
  id: base64url(1366).min(1),
  rawId: base64url(1366).min(1),
  type: z.literal('public-key'),
  response: z.object({
    clientDataJSON: base64url(8192),
    authenticatorData: base64url(65536),
    signature: base64url(2048),
    userHandle: base64url(256).optional(),
  }),
  authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
  clientExtensionResults: z.record(z.string(), z.unknown()).default({}),
})

const bad = (message: string): PasskeyRefused => ({ ok: false, status: 400, message })
const failed = (message: string): PasskeyRefused => ({ ok: false, status: 401, message })

/** The user handle a passkey stores for an account: its id's bytes (nothing personal). */
export const userHandle = (accountId: string) => Buffer.from(accountId, 'utf8').toString('base64url')

/**
 * Passkeys (WebAuthn) over @simplewebauthn/server: the options a browser needs to make or use
 * one, and the checks of what it sends back. Framework-free: the caller keeps the challenge
 * (single use) and turns outcomes into replies.
 */
export class Passkeys {
  constructor(private readonly store: AccountStore) {}

  /** Options for navigator.credentials.create: a discoverable credential (so sign-in needs no name), none of the account's again. */
  async registrationOptions(account: AccountRecord, rp: RelyingParty): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.store.passkeys(account.id)
    return generateRegistrationOptions({
      rpName: RP_NAME,
      rpID: rp.id,
      userID: Buffer.from(account.id, 'utf8'),
      userName: account.name,
      userDisplayName: account.name,
      timeout: CHALLENGE_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((k) => ({ id: k.id, transports: k.transports as AuthenticatorTransportFuture[] })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'preferred' },
    })
  }

  /** Checks the browser's new credential against the challenge it was given, and keeps it for the account. */
  async register(accountId: string, body: unknown, expectedChallenge: string, rp: RelyingParty): Promise<{ ok: true; passkey: PasskeyRecord } | PasskeyRefused> {
    const parsed = registrationSchema.safeParse(body)
    if (!parsed.success) return bad('That is not a passkey the browser made (the response is malformed).')
    if ((await this.store.passkeys(accountId)).length >= PASSKEYS_MAX) {
      return { ok: false, status: 409, message: `An account has at most ${PASSKEYS_MAX} passkeys: remove one first.` }
    }
    let info
    try {
      const result = await verifyRegistrationResponse({
        response: parsed.data as RegistrationResponseJSON,
        expectedChallenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        requireUserVerification: false,
      })
      if (!result.verified) return bad('The passkey could not be checked. Please try again.')
      info = result.registrationInfo
    } catch (error) {
      return bad(`The passkey could not be checked: ${(error as Error).message}`)
    }
    const passkey: PasskeyRecord = {
      id: info.credential.id,
      accountId,
      publicKey: Buffer.from(info.credential.publicKey).toString('base64url'),
      counter: info.credential.counter,
      transports: parsed.data.response.transports,
      createdAt: Date.now(),
      lastUsedAt: null,
    }
    if (!(await this.store.addPasskey(passkey))) return { ok: false, status: 409, message: 'That passkey is added already.' }
    return { ok: true, passkey }
  }

  /** Options for navigator.credentials.get: any passkey of this site (discoverable), so no name is asked first. */
  authenticationOptions(rp: RelyingParty): Promise<PublicKeyCredentialRequestOptionsJSON> {
    return generateAuthenticationOptions({ rpID: rp.id, allowCredentials: [], userVerification: 'preferred', timeout: CHALLENGE_MS })
  }

  /**
   * Checks a signed challenge against the stored credential, and records the use. A signature
   * counter that did not go up (when the authenticator keeps one) means a cloned
   * authenticator: refused.
   */
  async authenticate(body: unknown, expectedChallenge: string, rp: RelyingParty): Promise<{ ok: true; account: AccountRecord; passkey: PasskeyRecord } | PasskeyRefused> {
    const parsed = authenticationSchema.safeParse(body)
    if (!parsed.success) return bad('That is not a passkey answer the browser made (the response is malformed).')
    const response = parsed.data
    const passkey = await this.store.passkey(response.id)
    const unknown = failed('This passkey is not known here (it may have been removed from your account). Sign in another way.')
    if (!passkey) return unknown
    // A discoverable credential says whose it is: it must be the account it was added to.
    if (response.response.userHandle !== undefined && response.response.userHandle !== userHandle(passkey.accountId)) return unknown
    const account = await this.store.byId(passkey.accountId)
    if (!account) return unknown
    let newCounter: number
    try {
      const result = await verifyAuthenticationResponse({
        response: response as AuthenticationResponseJSON,
        expectedChallenge,
        expectedOrigin: rp.origin,
        expectedRPID: rp.id,
        credential: { id: passkey.id, publicKey: Buffer.from(passkey.publicKey, 'base64url'), counter: passkey.counter, transports: passkey.transports as AuthenticatorTransportFuture[] },
        requireUserVerification: false,
      })
      if (!result.verified) return failed('The passkey could not be verified. Please try again.')
      newCounter = result.authenticationInfo.newCounter
    } catch (error) {
      // The library refuses a counter that did not go up (when either is non-zero): say so plainly.
      const message = (error as Error).message
      if (/counter/i.test(message)) return failed('This passkey\'s use counter went backwards: it may have been copied. Sign in another way, and remove it from your account.')
      return failed(`The passkey could not be verified: ${message}`)
    }
    const at = Date.now()
    await this.store.usePasskey(passkey.id, newCounter, at)
    return { ok: true, account, passkey: { ...passkey, counter: newCounter, lastUsedAt: at } }
  }

  /**
   * Removes one of the account's passkeys. The last way in is kept: an account without a
   * password cannot remove its last passkey (it would be locked out).
   */
  async remove(account: AccountRecord, id: string): Promise<{ ok: true } | PasskeyRefused> {
    const keys = await this.store.passkeys(account.id)
    if (!keys.some((k) => k.id === id)) return { ok: false, status: 404, message: 'No such passkey on your account.' }
    if (keys.length === 1 && !account.passwordHash) {
      return { ok: false, status: 409, message: 'This passkey is your only way to sign in: choose a password first.' }
    }
    if (!(await this.store.removePasskey(account.id, id))) return { ok: false, status: 404, message: 'No such passkey on your account.' }
    return { ok: true }
  }
}
