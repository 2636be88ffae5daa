// The invitation form answers in place: "NAME is invited" (or a member already), or what was
// wrong (no such account, too many invitations) beside the field, without leaving the room. With
// no JavaScript it is a plain form post, as before.

/** What POST /rooms/NAME/invite answers as JSON. */
interface InviteAnswer {
  user?: string
  added?: boolean
  message?: string
}

export function inviteInPlace(form: HTMLFormElement | null): void {
  const result = form?.querySelector<HTMLElement>('.form-result')
  const input = form?.querySelector<HTMLInputElement>('input[name=user]')
  const button = form?.querySelector<HTMLButtonElement>('button[type=submit]')
  if (!form || !result || !input || !button) return
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    button.disabled = true
    result.classList.remove('error')
    try {
      const res = await fetch(form.action, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(new FormData(form) as unknown as Record<string, string>),
      })
      const body = (await res.json().catch(() => ({}))) as InviteAnswer
      if (res.ok) {
        result.textContent = body.added === false ? `${body.user} is a member already.` : `${body.user} is invited: the room is in their list now.`
        input.value = ''
        input.removeAttribute('aria-invalid')
      } else {
        result.textContent = body.message || `The invitation failed (${res.status}).`
        result.classList.add('error')
        input.setAttribute('aria-invalid', 'true')
        input.focus()
      }
    } catch {
      result.textContent = 'The invitation could not be sent: the connection is down. Try again.'
      result.classList.add('error')
    } finally {
      button.disabled = false
    }
  })
}
