// The welcome form: a name alone is at most data-name-max characters (an email may be longer),
// said before the form is sent rather than after.
const field = document.getElementById('user') as HTMLInputElement | null
const max = Number(field?.dataset.nameMax || 32)

function check(input: HTMLInputElement): void {
  const value = input.value.trim()
  const name = value.includes('@') ? value.slice(0, value.indexOf('@')) : value
  input.setCustomValidity([...name].length > max ? `A name is at most ${max} characters (this one has ${[...name].length}).` : '')
}

if (field) {
  field.addEventListener('input', () => check(field))
  check(field)
}
