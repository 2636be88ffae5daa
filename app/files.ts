// What an uploaded file is, by its bytes (never by its name or the type the browser said), and
// for an image what is kept of it: decoded and encoded again (turned as its EXIF orientation says,
// every metadata block left out: no GPS position, no camera serial), its size in pixels known,
// and a thumbnail made on the server. sharp does the image work (libvips, from the registry's
// prebuilt packages).
import { randomBytes } from 'node:crypto'
import sharp from 'sharp'

/** The types a page may show inline: images browsers decode without running anything. Everything else (SVG and HTML included) is served as an attachment. */
export const INLINE_TYPES: ReadonlySet<string> = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp'])

/** The longest side of a thumbnail, in pixels. */
export const THUMBNAIL_SIZE = 360
/** Images beyond this many pixels are not decoded (a small file can claim a huge picture). */
const MAX_PIXELS = 16_000_000
/** Images worked on at once by this process (each may take a few hundred MB and a core for a second); the rest wait their turn. */
const IMAGE_WORKERS = 2
/** Images that may wait for a turn; past that, an upload is refused as busy (503) rather than queued without end. */
const IMAGE_QUEUE = 32
/** The longest one image's work may take. */
const IMAGE_SECONDS = 15

/** A file's type from its first bytes; text that is valid UTF-8 is text/plain (or the markup it starts as); anything else is octet-stream. */
export function sniff(bytes: Buffer): string {
  const starts = (...b: number[]) => b.every((x, i) => bytes[i] === x)
  if (starts(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a)) return 'image/png'
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg'
  if (bytes.subarray(0, 6).toString('latin1') === 'GIF87a' || bytes.subarray(0, 6).toString('latin1') === 'GIF89a') return 'image/gif'
  if (bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP') return 'image/webp'
  if (bytes.subarray(0, 5).toString('latin1') === '%PDF-') return 'application/pdf'
  if (starts(0x50, 0x4b, 0x03, 0x04)) return 'application/zip'
  if (bytes.includes(0)) return 'application/octet-stream'
  const text = new TextDecoder('utf-8', { fatal: false }).decode(bytes.subarray(0, 4096))
  if (text.includes('\uFFFD') && bytes.length > 0) return 'application/octet-stream'
  const head = text.trimStart().slice(0, 256).toLowerCase()
  if (head.startsWith('<svg') || (head.startsWith('<?xml') && head.includes('<svg'))) return 'image/svg+xml'
  if (head.startsWith('<!doctype html') || head.startsWith('<html') || /<(script|iframe|body|head)\b/.test(head)) return 'text/html'
  if (head.startsWith('<?xml')) return 'application/xml'
  return 'text/plain'
}

/** A file's name as kept: its last path segment, no control or bidi characters, at most 200 characters; "file" when nothing is left. */
export function cleanName(name: string | undefined): string {
  const last = (name ?? '').split(/[/\\]/).at(-1) ?? ''
  const clean = last.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069]/g, '').trim()
  const chars = Array.from(clean)
  return (chars.length > 200 ? chars.slice(0, 200).join('') : clean) || 'file'
}

/** A new file id: 128 random bits as hex. */
export function newFileId(): string {
  return randomBytes(16).toString('hex')
}

/** What is kept of an upload: its bytes (an image's re-encoded), type, and an image's size and thumbnail. */
export interface Prepared {
  bytes: Buffer
  type: string
  width?: number
  height?: number
  thumbnail?: Buffer
}

/**
 * An upload made ready to keep. An image (PNG, JPEG, GIF, WebP) is decoded and encoded again in
 * its own format, turned upright, without its metadata; one that does not decode, or is too big
 * to, is kept as a plain file (application/octet-stream: a download, never shown).
 */
export async function prepare(bytes: Buffer): Promise<Prepared> {
  const type = sniff(bytes)
  if (!INLINE_TYPES.has(type)) return { bytes, type }
  if (waiting.length >= IMAGE_QUEUE) throw new BusyError()
  if (working >= IMAGE_WORKERS) await new Promise<void>((resolve) => waiting.push(resolve))
  working++
  try {
    return await reencode(bytes, type)
  } finally {
    working--
    waiting.shift()?.()
  }
}

/** Too many images waiting to be worked on: try again shortly. */
export class BusyError extends Error {
  constructor() {
    super('Too many pictures are being sent right now; try again in a moment.')
  }
}

let working = 0
const waiting: (() => void)[] = []

async function reencode(bytes: Buffer, type: string): Promise<Prepared> {
  try {
    const animated = type === 'image/gif' || type === 'image/webp'
    const image = sharp(bytes, { animated, limitInputPixels: MAX_PIXELS, failOn: 'error' })
    // rotate() with no angle turns it as EXIF says; the output keeps no metadata unless asked (so no GPS, no serials).
    const upright = image.rotate()
    const encoded =
      type === 'image/png' ? upright.png() : type === 'image/jpeg' ? upright.jpeg({ quality: 90, mozjpeg: true }) : type === 'image/gif' ? upright.gif() : upright.webp({ quality: 90 })
    const { data, info } = await encoded.timeout({ seconds: IMAGE_SECONDS }).toBuffer({ resolveWithObject: true })
    // An animation's height is all its frames': the picture's is one page's.
    const height = info.pageHeight ?? info.height
    const thumbnail = await sharp(data, { limitInputPixels: MAX_PIXELS })
      .resize({ width: THUMBNAIL_SIZE, height: THUMBNAIL_SIZE, fit: 'inside', withoutEnlargement: true })
      .webp({ quality: 80 })
      .timeout({ seconds: IMAGE_SECONDS })
      .toBuffer()
    return { bytes: data, type, width: info.width, height, thumbnail }
  } catch {
    return { bytes, type: 'application/octet-stream' }
  }
}
