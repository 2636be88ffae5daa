import type { FastifyInstance } from 'fastify'
import t from 'tap'
import { formatHtml, formatMessage, formattedText, plainLine } from '../client/format.js'
import type { Event } from '../app/chatroom/event.js'
import { buildTestApp, signIn } from './helpers.js'

// Issue 32, formatting: a Markdown subset drawn by one renderer (client/format.ts) on the server's
// pages and the live pages, raw HTML never passed through, the text kept as typed.

const html = (text: string, me?: string) => formatHtml(formatMessage(text, me))

t.test('the subset: bold, italic, strike, inline code, code blocks, quotes, lists and line breaks', async (t) => {
  t.equal(html('**bold** *it* _it_ ~~gone~~ `x < y`'), '<strong>bold</strong> <em>it</em> <em>it</em> <s>gone</s> <code>x &lt; y</code>', 'inline marks')
  t.equal(html('```\n  if (a < b) {\n\treturn\n  }\n```'), '<pre><code>  if (a &lt; b) {\n\treturn\n  }</code></pre>', 'a code block keeps its whitespace, escaped')
  t.equal(html('> quoted\n\nmine'), '<blockquote><p>quoted</p></blockquote><p>mine</p>')
  t.equal(html('> one\n> two'), '<blockquote><p>one\ntwo</p></blockquote>', 'a quote of two lines')
  t.equal(html('- one\n- two'), '<ul><li>one</li><li>two</li></ul>')
  t.equal(html('3. three\n4. four'), '<ol start="3"><li>three</li><li>four</li></ol>')
  t.equal(html('line one\nline two'), 'line one\nline two', 'a line break is kept (drawn with pre-wrap, copied as a newline); one paragraph is its text alone')
  t.equal(html('plain words'), 'plain words', 'a plain message is drawn as it was before formatting')
  t.equal(html('`**not bold**` https://example.com/x'), '<code>**not bold**</code> <a href="https://example.com/x" rel="noopener noreferrer nofollow" target="_blank" tabindex="-1">https://example.com/x</a>')
  t.equal(html('hi @ann and @annie', 'ann'), 'hi <mark class="at-me">@ann</mark> and @annie', "the viewer's mentions are marked")
  t.equal(html('`https://example.com`'), '<code>https://example.com</code>', 'no link inside code')
})

t.test('never raw HTML, scripts or Markdown links: everything outside the subset stays text', async (t) => {
  const hostile = [
    '<script>alert(1)</script>',
    '<img src=x onerror=alert(1)>',
    '[click](javascript:alert(1))',
    '![x](https://example.com/a.png)',
    '<a href="javascript:alert(1)">x</a>',
    '```js"><script>\n<script>alert(1)</script>\n```',
    '# not a heading',
    '| a | b |\n|---|---|\n| 1 | 2 |',
    '&lt;b&gt; &#60;i&#62;',
    '[ref]: javascript:alert(1)\n[ref]',
    '<https://example.com/auto>',
  ]
  const allowed = new Set(['p', 'br', 'strong', 'em', 's', 'code', 'pre', 'blockquote', 'ul', 'ol', 'li', 'mark', 'a'])
  for (const text of hostile) {
    const out = html(text)
    const tags = [...out.matchAll(/<\/?([a-zA-Z][\w-]*)([^>]*)>/g)]
    t.ok(tags.every(([, tag]) => allowed.has(tag!)), `${JSON.stringify(text)}: only the subset's own elements (${out})`)
    for (const [, tag, attributes] of tags) {
      if (tag === 'a' && attributes!.trim() !== '') t.match(attributes, /^ href="https?:\/\/[^"]*" rel="noopener noreferrer nofollow" target="_blank" tabindex="-1"$/, `${JSON.stringify(text)}: a link is an http(s) one`)
      else if (tag !== 'a') t.match(attributes, /^( class="at-me"| start="\d+")?$/, `${JSON.stringify(text)}: no attribute of its own`)
    }
    t.equal(formattedText(formatMessage(text)).includes('alert(1)'), text.includes('alert(1)'), `${JSON.stringify(text)}: its words are still there, as text`)
  }
  t.equal(html('<b>hi</b>'), '&lt;b&gt;hi&lt;/b&gt;')
  t.equal(html('[x](https://example.com)'), '[x](<a href="https://example.com/" rel="noopener noreferrer nofollow" target="_blank" tabindex="-1">https://example.com</a>)', "a Markdown link's URL is linked as itself, its words stay text")
  // Nesting a parser would recurse on ends, as text, well before the stack.
  const deep = '>'.repeat(5000) + ' x'
  t.ok(html(deep).length < 2000, 'deep nesting is cut short')
  t.ok(html('*'.repeat(20000) + 'a').length > 0, 'a wall of marks is drawn')
})

t.test("the text as a reader reads it, and a reply's quote line", async (t) => {
  t.equal(formattedText(formatMessage('**a**\nb')), 'a\nb')
  t.equal(plainLine('**Bold** start\nsecond line'), 'Bold start')
  t.equal(plainLine('```\ncode first\n```'), 'code first')
  t.equal(plainLine('x'.repeat(300)).length, 120)
})

const say = async (app: FastifyInstance, cookie: string, text: string): Promise<Event> => {
  const res = await app.inject({ method: 'POST', url: '/refresh/room', headers: { cookie, accept: 'application/json' }, payload: { message: text } })
  t.equal(res.statusCode, 201)
  return res.json() as Event
}

t.test('the page without JavaScript draws the formatting; history, search and the JSON keep the source', async (t) => {
  const app = await buildTestApp(t)
  const ann = await signIn(app, 'ann', 'refresh')
  const source = 'look: **bold** and\n```\nconst x = 1 < 2\n```\n<script>alert(1)</script>'
  const sent = await say(app, ann, source)
  t.equal(sent.text, source, 'the event carries what was typed')
  const page = await app.inject({ method: 'GET', url: '/refresh/room', headers: { cookie: ann, accept: 'text/html' } })
  t.match(page.body, '<strong>bold</strong>')
  t.match(page.body, '<pre><code>const x = 1 &lt; 2</code></pre>')
  t.notMatch(page.body, '<script>alert(1)')
  t.match(page.body, 'data-source="look: **bold** and', "the page keeps the source for its editor")
  const history = await app.inject({ method: 'GET', url: '/room/history', headers: { cookie: ann, accept: 'application/json' } })
  t.ok((history.json() as { events: Event[] }).events.some((e) => e.text === source), 'history answers the source')
  const found = await app.inject({ method: 'GET', url: '/search?q=bold', headers: { cookie: ann, accept: 'application/json' } })
  t.match(found.body, 'bold', 'search finds words of a formatted message')
})

t.test('the live page loads the same renderer: the page module imports markdown-it from this server', async (t) => {
  const app = await buildTestApp(t)
  const format = await app.inject({ method: 'GET', url: '/public/js/client/format.js' })
  t.equal(format.statusCode, 200)
  t.match(format.body, "from '/public/js/vendor/markdown-it.js'", 'the bare package name points at the served build')
  const vendor = await app.inject({ method: 'GET', url: '/public/js/vendor/markdown-it.js' })
  t.equal(vendor.statusCode, 200)
  t.match(vendor.headers['content-type'], 'text/javascript')
  t.match(vendor.body, /export\s*\{/, 'an ES module')
  t.notMatch(vendor.body, /\bfrom\s*["'][^"'./]/, 'that imports nothing by bare name')
  t.equal((await app.inject({ method: 'GET', url: '/public/js/vendor/left-pad.js' })).statusCode, 404, 'only the packages the page uses')
  t.equal((await app.inject({ method: 'GET', url: '/public/js/vendor/..%2fpackage.js' })).statusCode, 404)
})
