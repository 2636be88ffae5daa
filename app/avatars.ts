import { createHash, createHmac } from 'node:crypto'

export type AvatarMode = 'local' | 'gravatar'

export interface AvatarSource {
  name: string
  /** MD5 of the trimmed, lower-cased email; absent for a plain nick. */
  emailHash?: string | undefined
}

/**
 * The avatar URL other users see. In local mode the key is an HMAC, so not even the
 * email's hash leaves the server; in gravatar mode the MD5 is what Gravatar needs.
 */
export function avatarUrl(user: AvatarSource, mode: AvatarMode, secret: string): string {
  if (mode === 'gravatar' && user.emailHash) {
    return `https://www.gravatar.com/avatar/${user.emailHash}?s=80&d=identicon`
  }
  const seed = user.emailHash ? `email:${user.emailHash}` : `name:${user.name}`
  const key = createHmac('sha256', secret).update(seed).digest('hex').slice(0, 20)
  return `/avatars/${key}.svg`
}

export const avatarFilePattern = /^([0-9a-f]{20})\.svg$/

/**
 * A deterministic identicon: a 5x5 grid mirrored left to right, cells and colour from the
 * key's hash. Made of numbers only, so nothing a user typed reaches the SVG.
 */
export function identiconSvg(key: string): string {
  const hash = createHash('sha256').update(key).digest()
  const hue = ((hash[0]! << 8) | hash[1]!) % 360
  const fill = `hsl(${hue} 55% 50%)`
  let cells = ''
  for (let row = 0; row < 5; row++) {
    for (let col = 0; col < 3; col++) {
      const bit = (hash[2 + row]! >> col) & 1
      if (!bit) continue
      cells += `<rect x="${col + 1}" y="${row + 1}" width="1" height="1"/>`
      if (col < 2) cells += `<rect x="${5 - col}" y="${row + 1}" width="1" height="1"/>`
    }
  }
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 7 7" width="64" height="64" shape-rendering="crispEdges">` +
    `<rect width="7" height="7" fill="#f0f0f0"/><g fill="${fill}">${cells}</g></svg>`
  )
}
