/**
 * The invitation form answers in place: "NAME is invited" (or a member already), or what was
 * wrong (no such account, too many invitations) beside the field, without leaving the room. With
 * no JavaScript it is a plain form post, as before.
 */
export function inviteInPlace(form) {
  const result = form?.querySelector('.form-result')
  if (!form || !result) return
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const input = form.querySelector('input[name=user]')
    const button = form.querySelector('button[type=submit]')
    button.disabled = true
    result.classList.remove('error')
    try {
      const res = await fetch(form.action, {
        method: 'POST',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(new FormData(form)),
      })
      const body = await res.json().catch(() => ({}))
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
