// Unit tests of the web page's Markdown renderer (web/markdown.js): model
// output must never become markup other than what the renderer emits itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const file = fileURLToPath(new URL('../../../web/markdown.js', import.meta.url));
const sandbox = { module: { exports: {} } };
vm.runInNewContext(readFileSync(file, 'utf8'), sandbox, { filename: file });
const { render, escapeHtml } = sandbox.module.exports;

// Every tag in the output must be one the renderer is allowed to produce.
const ALLOWED = new Set(['p', 'br', 'pre', 'code', 'strong', 'em', 'del', 'ul', 'ol', 'li',
  'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'blockquote', 'hr', 'a', 'div', 'span', 'button']);
const ALLOWED_ATTRS = new Set(['href', 'target', 'rel', 'class', 'type', 'start']);
function assertOnlyAllowedTags(html) {
  // Real tags only: in escaped text a "<" never appears, so every "<" opens a tag.
  for (const m of html.matchAll(/<\/?([a-zA-Z][a-zA-Z0-9]*)([^>]*)>/g)) {
    assert.ok(ALLOWED.has(m[1].toLowerCase()), `unexpected <${m[1]}> in ${html}`);
    for (const a of m[2].matchAll(/\s([^\s=]+)(?:="[^"]*")?/g)) {
      assert.ok(ALLOWED_ATTRS.has(a[1].toLowerCase()), `unexpected attribute ${a[1]} in ${m[0]}`);
    }
  }
  assert.equal((html.match(/</g) || []).length, [...html.matchAll(/<\/?[a-zA-Z][a-zA-Z0-9]*[^>]*>/g)].length,
    'every < starts a tag of the renderer');
}

test('escapeHtml escapes the five HTML-special characters', () => {
  assert.equal(escapeHtml(`<a href="x" onclick='y'>&</a>`),
    '&lt;a href=&quot;x&quot; onclick=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

test('raw HTML in model output is shown as text, never as markup', () => {
  const attacks = [
    '<script>alert(1)</script>',
    '<img src=x onerror="alert(1)">',
    '<iframe src="https://example.com"></iframe>',
    '<a href="javascript:alert(1)">x</a>',
    '<svg onload=alert(1)>',
    '**<b>bold</b>**',
    '`<code>` and <style>*{}</style>',
    '- <img src=x onerror=alert(1)>\n- ok',
    '> <script>x</script>',
    '```\n</code></pre><script>alert(1)</script>\n```',
    '# <h1>x</h1>',
  ];
  for (const a of attacks) {
    const html = render(a);
    assertOnlyAllowedTags(html);
    assert.doesNotMatch(html, /<(script|img|iframe|svg|style|b)\b/i, html);
    // The attack text is still there, as text.
    assert.match(html, /&lt;/, html);
  }
});

test('links are emitted only for http(s) URLs', () => {
  const html = render('[ok](https://example.com/a?b=1&c=2) [no](javascript:alert(1)) [no2](data:text/html,x) [no3](//evil.example)');
  const hrefs = [...html.matchAll(/href="([^"]*)"/g)].map((m) => m[1]);
  assert.deepEqual(hrefs, ['https://example.com/a?b=1&amp;c=2']);
  assert.match(html, /rel="noopener noreferrer nofollow"/);
  assert.match(html, /\[no\]\(javascript:alert\(1\)\)/);
});

test('a quote inside a link URL cannot break out of the attribute', () => {
  const html = render('[x](https://a.example/"onmouseover="alert(1))');
  assert.doesNotMatch(html, /"\s*onmouseover=/);
  assertOnlyAllowedTags(html);
});

test('bare http(s) URLs become links without trailing punctuation', () => {
  const html = render('see https://example.com/x. and http://a.example/b?c=d&e=f)');
  assert.match(html, /<a href="https:\/\/example.com\/x"[^>]*>https:\/\/example.com\/x<\/a>\./);
  assert.match(html, /<a href="http:\/\/a.example\/b\?c=d&amp;e=f"/);
});

test('code fences keep their content verbatim (escaped) and label the language', () => {
  const html = render('before\n\n```python\nif a < b and c > d:\n    print("**not bold**")\n```\nafter');
  assert.match(html, /<p>before<\/p>/);
  assert.match(html, /<code class="lang-python">if a &lt; b and c &gt; d:\n    print\(&quot;\*\*not bold\*\*&quot;\)<\/code>/);
  assert.match(html, /<span class="code-lang">python<\/span>/);
  assert.match(html, /<p>after<\/p>/);
  assert.doesNotMatch(html, /<strong>/);
});

test('an unterminated fence (still streaming) renders as code to the end', () => {
  const html = render('```js\nconst x = 1;\nconst y = "<b>";');
  assert.match(html, /<pre><code class="lang-js">const x = 1;\nconst y = &quot;&lt;b&gt;&quot;;<\/code><\/pre>/);
});

test('a hostile fence language cannot inject attributes', () => {
  const html = render('```js"onclick="alert(1)\ncode\n```');
  assert.doesNotMatch(html, /onclick=/);
  assertOnlyAllowedTags(html);
});

test('inline code, bold, italic and strikethrough', () => {
  assert.equal(render('a `x < y` **b** *c* _d_ ~~e~~'),
    '<p>a <code>x &lt; y</code> <strong>b</strong> <em>c</em> <em>d</em> <del>e</del></p>');
  // Markers inside code spans and identifiers are literal.
  assert.equal(render('`**no**` snake_case_name 2*3*4'),
    '<p><code>**no**</code> snake_case_name 2*3*4</p>');
});

test('lists: bullets, numbers, nesting', () => {
  assert.equal(render('- one\n- two\n  - inner\n- three'),
    '<ul><li>one</li><li>two<ul><li>inner</li></ul></li><li>three</li></ul>');
  assert.equal(render('3. c\n4. d'), '<ol start="3"><li>c</li><li>d</li></ol>');
});

test('paragraphs, line breaks, headings, quotes, rules', () => {
  assert.equal(render('line one\nline two\n\nnext'), '<p>line one<br>line two</p><p>next</p>');
  assert.equal(render('## Title **x**'), '<h2>Title <strong>x</strong></h2>');
  assert.equal(render('> quoted'), '<blockquote><p>quoted</p></blockquote>');
  assert.equal(render('a\n\n---\n\nb'), '<p>a</p><hr><p>b</p>');
});

test('empty and odd input', () => {
  assert.equal(render(''), '');
  assert.equal(render(null), '');
  assert.equal(render('\u0000x\u0000'), '<p>x</p>');
  assertOnlyAllowedTags(render('*'.repeat(1000) + '`'.repeat(999) + '_'.repeat(1000)));
});
