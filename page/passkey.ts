// Passkeys: "Add a passkey" on the account page, "Sign in with a passkey" on the welcome page.
// The server's options and the browser's answers travel as JSON, where binary values are
// base64url; the WebAuthn calls want and give ArrayBuffers.

const addButton = document.getElementById('passkey-add') as HTMLButtonElement | null
const signInButton = document.getElementById('passkey-signin') as HTMLButtonElement | null
const removeForms = document.querySelectorAll<HTMLFormElement>('form.passkey-remove')
const supported = typeof window.PublicKeyCredential === 'function' && Boolean(navigator.credentials)

/** Options as the server sends them: binary values as base64url text. */
interface CreationOptionsJSON extends Omit<PublicKeyCredentialCreationOptions, 'challenge' | 'user' | 'excludeCredentials'> {
  challenge: string
  user: Omit<PublicKeyCredentialUserEntity, 'id'> & { id: string }
  excludeCredentials?: (Omit<PublicKeyCredentialDescriptor, 'id'> & { id: string })[]
}
interface RequestOptionsJSON extends Omit<PublicKeyCredentialRequestOptions, 'challenge' | 'allowCredentials'> {
  challenge: string
  allowCredentials?: (Omit<PublicKeyCredentialDescriptor, 'id'> & { id: string })[]
}

function toBase64url(buffer: ArrayBuffer): string {
  let binary = ''
  for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte)
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '')
}

function fromBase64url(text: string): ArrayBuffer {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4))
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes.buffer
}

/** POSTs (JSON when there is a body) and returns the JSON answer; a refusal throws with the server's message. */
async function post<T = Record<string, unknown>>(url: string, body?: unknown): Promise<T> {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const answer = (await response.json().catch(() => ({}))) as T & { message?: string }
  if (!response.ok) throw new Error(answer.message || `The server answered ${response.status}. Please try again.`)
  return answer
}

/** Words for what the browser's WebAuthn call threw. */
function problem(error: unknown, adding: boolean): string {
  const { name, message } = (error ?? {}) as { name?: string; message?: string }
  switch (name) {
    case 'NotAllowedError':
      return 'The passkey request was cancelled or timed out. Please try again.'
    case 'InvalidStateError':
      return adding ? 'This device or key holds a passkey for your account already.' : 'That passkey cannot be used here.'
    case 'SecurityError':
      return 'Passkeys need this site opened by its name (https, or localhost), not by an address.'
    case 'NotSupportedError':
      return 'This browser or device cannot make passkeys.'
    default:
      return message || 'Something went wrong with the passkey. Please try again.'
  }
}

function show(element: HTMLElement | null, text: string): void {
  if (!element) return
  element.textContent = text
  element.hidden = !text
  // Marked as an error only while it says something (an empty one is no error on the page).
  element.classList.toggle('error', Boolean(text))
}

/** The common part of both answers: the credential's ids and what the browser adds. */
function credentialJSON(credential: PublicKeyCredential, response: Record<string, unknown>): Record<string, unknown> {
  return {
    id: credential.id,
    rawId: toBase64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    clientExtensionResults: credential.getClientExtensionResults(),
    response,
  }
}

async function addPasskey(button: HTMLButtonElement): Promise<void> {
  const status = document.getElementById('passkey-add-status')
  show(status, '')
  button.disabled = true
  try {
    const options = await post<CreationOptionsJSON>('/account/passkeys/options')
    let credential: PublicKeyCredential
    try {
      credential = (await navigator.credentials.create({
        publicKey: {
          ...options,
          challenge: fromBase64url(options.challenge),
          user: { ...options.user, id: fromBase64url(options.user.id) },
          excludeCredentials: (options.excludeCredentials || []).map((c) => ({ ...c, id: fromBase64url(c.id) })),
        },
      })) as PublicKeyCredential
    } catch (error) {
      throw new Error(problem(error, true))
    }
    const r = credential.response as AuthenticatorAttestationResponse
    await post(
      '/account/passkeys',
      credentialJSON(credential, {
        clientDataJSON: toBase64url(r.clientDataJSON),
        attestationObject: toBase64url(r.attestationObject),
        transports: typeof r.getTransports === 'function' ? r.getTransports() : [],
      }),
    )
    location.assign(`/account?done=passkey-added${backQuery()}`)
  } catch (error) {
    show(status, (error as Error).message)
    button.disabled = false
  }
}

/** The account page's way back to the room it came from, kept by the page it goes to next. */
const backQuery = (): string => (addButton?.dataset.from ?? '').replace('?', '&')

async function signInWithPasskey(button: HTMLButtonElement): Promise<void> {
  const status = document.getElementById('passkey-signin-status')
  show(status, '')
  button.disabled = true
  try {
    const options = await post<RequestOptionsJSON>('/signin/passkey/options')
    let credential: PublicKeyCredential
    try {
      credential = (await navigator.credentials.get({
        publicKey: {
          ...options,
          challenge: fromBase64url(options.challenge),
          allowCredentials: (options.allowCredentials || []).map((c) => ({ ...c, id: fromBase64url(c.id) })),
        },
      })) as PublicKeyCredential
    } catch (error) {
      throw new Error(problem(error, false))
    }
    const r = credential.response as AuthenticatorAssertionResponse
    const transport = button.form?.querySelector<HTMLInputElement>('input[name=transport]:checked')?.value
    const answer = await post<{ redirect: string }>('/signin/passkey', {
      ...credentialJSON(credential, {
        clientDataJSON: toBase64url(r.clientDataJSON),
        authenticatorData: toBase64url(r.authenticatorData),
        signature: toBase64url(r.signature),
        userHandle: r.userHandle ? toBase64url(r.userHandle) : undefined,
      }),
      transport,
    })
    location.assign(answer.redirect)
  } catch (error) {
    show(status, (error as Error).message)
    button.disabled = false
  }
}

/** Removing keeps the page (and says why when refused); without this script the form posts as it is. */
async function removePasskey(event: SubmitEvent): Promise<void> {
  event.preventDefault()
  const form = event.currentTarget as HTMLFormElement
  const button = form.querySelector('button')
  if (button) button.disabled = true
  try {
    await post(form.action)
    location.assign(`/account?done=passkey-removed${backQuery()}`)
  } catch (error) {
    show(document.getElementById('passkey-add-status'), (error as Error).message)
    if (button) button.disabled = false
  }
}

for (const button of [addButton, signInButton]) if (button) button.hidden = !supported
if (supported && addButton) addButton.addEventListener('click', () => void addPasskey(addButton))
if (supported && signInButton) signInButton.addEventListener('click', () => void signInWithPasskey(signInButton))
for (const form of removeForms) form.addEventListener('submit', (e) => void removePasskey(e))
