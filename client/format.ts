// A message's formatting, in one place for the server's pages and the page's script: a Markdown
// subset (bold, italic, strike, inline code, code blocks, quotes, lists, line breaks) parsed by
// markdown-it with HTML off, then turned into a small tree of safe nodes. Links are the existing
// safe linking (linkSegments: bare http(s) URLs only; Markdown's [text](url) and images stay text),
// and the viewer's name where they are mentioned is marked. The server writes the tree as escaped
// HTML (formatHtml); the page builds it as DOM nodes, never as HTML. The text stored, edited,
// searched and sent over curl stays the source that was typed.
import MarkdownIt, { type Token } from 'markdown-it'
import { linkSegments, mentionParts } from './render.js'

/** The elements a formatted message may hold, and nothing else. */
export type FormatTag = 'p' | 'br' | 'strong' | 'em' | 's' | 'code' | 'pre' | 'blockquote' | 'ul' | 'ol' | 'li' | 'a' | 'mark'

/** A piece of a formatted message: text, or an element with its children (`href` only on a link, checked http(s)). */
export type FormatNode = string | { tag: FormatTag; children: FormatNode[]; href?: string; start?: number }

const markdown = new MarkdownIt('zero', { html: false, breaks: true, linkify: false, typographer: false })
// The subset: no headings, tables, images, Markdown links, raw HTML or indented code (a message
// that starts with spaces is a message, not a code block); a fence (```) is a code block.
markdown.enable(['emphasis', 'strikethrough', 'backticks', 'fence', 'blockquote', 'list', 'newline', 'escape', 'entity'])
// A chat message is short: nesting deeper than this is somebody testing the parser.
markdown.set({ maxNesting: 20 })

const blockTags: Readonly<Record<string, FormatTag>> = { p: 'p', blockquote: 'blockquote', ul: 'ul', ol: 'ol', li: 'li', strong: 'strong', em: 'em', s: 's' }

/** `text` (a message as typed) as the tree both renderers draw; `me` marks mentions of the viewer. */
export function formatMessage(text: string, me?: string): FormatNode[] {
  const root: FormatNode[] = []
  const stack: FormatNode[][] = [root]
  const add = (node: FormatNode) => stack.at(-1)!.push(node)
  const walk = (tokens: readonly Token[]) => {
    for (const token of tokens) {
      if (token.type === 'inline') {
        walk(token.children ?? [])
        continue
      }
      if (token.type === 'text') {
        for (const part of linkSegments(token.content)) {
          if (part.href) add({ tag: 'a', href: part.href, children: [part.text] })
          else for (const piece of mentionParts(part.text, me)) if (piece.text) add(piece.mention ? { tag: 'mark', children: [piece.text] } : piece.text)
        }
        continue
      }
      if (token.type === 'code_inline') {
        add({ tag: 'code', children: [token.content] })
        continue
      }
      if (token.type === 'fence' || token.type === 'code_block') {
        add({ tag: 'pre', children: [{ tag: 'code', children: [token.content.replace(/\n$/, '')] }] })
        continue
      }
      if (token.type === 'softbreak' || token.type === 'hardbreak') {
        // A line break is the newline itself (the text is drawn with pre-wrap): copied, it is a newline.
        add('\n')
        continue
      }
      const tag = blockTags[token.tag]
      // A tight list's paragraphs are not drawn; anything else unknown is left out (its text is not).
      if (tag === undefined || token.hidden) continue
      if (token.nesting === 1) {
        const node: FormatNode = { tag, children: [] }
        const start = token.attrGet('start')
        if (tag === 'ol' && start !== null && Number(start) !== 1) node.start = Number(start)
        add(node)
        stack.push(node.children)
      } else if (token.nesting === -1 && stack.length > 1) stack.pop()
    }
  }
  walk(markdown.parse(text, {}))
  // One paragraph (most messages) is its text alone: a plain message is drawn as it was before formatting.
  const only = root[0]
  return root.length === 1 && typeof only === 'object' && only.tag === 'p' ? only.children : root
}

/** The tree's text as a reader copies it (a line break, and the end of a paragraph, item or code block, as `\n`). */
export function formattedText(nodes: readonly FormatNode[]): string {
  const block = (tag: FormatTag) => tag === 'p' || tag === 'li' || tag === 'pre'
  return nodes.map((n) => (typeof n === 'string' ? n : n.tag === 'br' ? '\n' : formattedText(n.children) + (block(n.tag) ? '\n' : ''))).join('')
}

const escapes: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** Text escaped for HTML (element content and quoted attributes). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => escapes[c]!)
}

/** The tree as HTML, every text and attribute escaped: what the server's pages show (the page's script builds the same as DOM). */
export function formatHtml(nodes: readonly FormatNode[]): string {
  let out = ''
  for (const node of nodes) {
    if (typeof node === 'string') {
      out += escapeHtml(node)
      continue
    }
    if (node.tag === 'br') {
      out += '<br>'
      continue
    }
    if (node.tag === 'a') out += `<a href="${escapeHtml(node.href ?? '')}" rel="noopener noreferrer nofollow" target="_blank" tabindex="-1">`
    else if (node.tag === 'mark') out += '<mark class="at-me">'
    else if (node.tag === 'ol' && node.start !== undefined) out += `<ol start="${node.start}">`
    else out += `<${node.tag}>`
    out += formatHtml(node.children) + `</${node.tag}>`
  }
  return out
}

/** A message's first line as plain text, without its Markdown marks (a reply's quote, a notification). */
export function plainLine(text: string, max = 120): string {
  const line = formattedText(formatMessage(text)).trim().split('\n')[0] ?? ''
  const chars = Array.from(line)
  return chars.length > max ? chars.slice(0, max - 1).join('') + '…' : line
}
