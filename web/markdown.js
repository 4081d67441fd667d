// A small, safe Markdown renderer for model output.
//
// Safety rule: the whole input is HTML-escaped FIRST, so no tag, attribute or
// entity written by the model can survive as markup. Only the tags this file
// emits itself (p, br, pre, code, strong, em, del, ul, ol, li, h1-h6,
// blockquote, hr, a) appear in the output, and links are emitted only for
// http:// and https:// URLs.
//
// Loaded as a classic <script> in the page (exposes window.SlimMarkdown) and
// as a CommonJS module by the tests.
(function (root) {
  'use strict';

  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (c) => ESC[c]);
  }

  // Placeholders keep already-rendered pieces (code spans, links) away from
  // the emphasis rules. \u0000 never survives into the text (stripped first).
  function stash(store, html) {
    store.push(html);
    return '\u0000' + (store.length - 1) + '\u0000';
  }
  function unstash(store, s) {
    // Stashed pieces may contain other placeholders (link text with code).
    let prev;
    do {
      prev = s;
      s = s.replace(/\u0000(\d+)\u0000/g, (_, i) => store[Number(i)]);
    } while (s !== prev);
    return s;
  }

  // Emphasis on escaped text without placeholders inside markers' reach.
  function emphasis(s) {
    s = s.replace(/\*\*(?=\S)([\s\S]*?\S)\*\*/g, '<strong>$1</strong>');
    s = s.replace(/(^|[^\w])__(?=\S)([\s\S]*?\S)__(?!\w)/g, '$1<strong>$2</strong>');
    s = s.replace(/(^|[^*\w])\*(?=[^\s*])([^*]*?[^\s*])\*(?![*\w])/g, '$1<em>$2</em>');
    s = s.replace(/(^|[^\w])_(?=[^\s_])([^_]*?[^\s_])_(?!\w)/g, '$1<em>$2</em>');
    s = s.replace(/~~(?=\S)([\s\S]*?\S)~~/g, '<del>$1</del>');
    return s;
  }

  // s is already HTML-escaped. Returns HTML.
  function inline(s) {
    const store = [];
    // Code spans: `code` or ``code with ` inside``.
    s = s.replace(/(`+)([^`]|[^`][\s\S]*?[^`])\1(?!`)/g, (_, ticks, code) =>
      stash(store, '<code>' + code.replace(/^ (.*) $/, '$1') + '</code>'));
    // [text](http(s)://url) — any other scheme stays plain text.
    s = s.replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s()]+)\)/gi, (_, text, url) =>
      stash(store, '<a href="' + url + '" target="_blank" rel="noopener noreferrer nofollow">' +
        emphasis(text) + '</a>'));
    // Bare http(s) URLs (escaped text: &amp; is part of a URL, &lt; &gt; &quot; end it).
    s = s.replace(/(^|[\s(])(https?:\/\/(?:[^\s<>"'\u0000&]|&amp;)+)/gi, (m, pre, url) => {
      let tail = '';
      const t = /[.,;:!?)]+$/.exec(url);
      if (t) { tail = t[0]; url = url.slice(0, -tail.length); }
      if (!/^https?:\/\/./i.test(url)) return m;
      return pre + stash(store, '<a href="' + url + '" target="_blank" rel="noopener noreferrer nofollow">' +
        url + '</a>') + tail;
    });
    s = emphasis(s);
    s = s.replace(/\n/g, '<br>');
    return unstash(store, s);
  }

  const FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$/;
  const LIST_ITEM = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
  const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$/;
  const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
  const QUOTE = /^ {0,3}&gt; ?(.*)$/;

  function isBlockStart(line) {
    return FENCE.test(line) || HEADING.test(line) || RULE.test(line) ||
      QUOTE.test(line) || LIST_ITEM.test(line);
  }

  function indentOf(line) {
    return /^ */.exec(line)[0].length;
  }

  // lines are HTML-escaped. Returns HTML.
  function blocks(lines) {
    const out = [];
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (/^\s*$/.test(line)) { i++; continue; }

      let m = FENCE.exec(line);
      if (m) {
        const marker = m[1];
        const lang = m[2].replace(/[^\w+#.-]/g, '').slice(0, 32);
        const code = [];
        i++;
        while (i < lines.length) {
          const close = /^ {0,3}(`{3,}|~{3,})[ \t]*$/.exec(lines[i]);
          if (close && close[1][0] === marker[0] && close[1].length >= marker.length) { i++; break; }
          code.push(lines[i]);
          i++;
        }
        out.push('<div class="code-block"><div class="code-head"><span class="code-lang">' +
          (lang || 'text') + '</span><button type="button" class="copy-code">Copy</button></div>' +
          '<pre><code' + (lang ? ' class="lang-' + lang + '"' : '') + '>' + code.join('\n') +
          '</code></pre></div>');
        continue;
      }

      m = HEADING.exec(line);
      if (m) {
        const n = m[1].length;
        out.push('<h' + n + '>' + inline(m[2]) + '</h' + n + '>');
        i++;
        continue;
      }

      if (RULE.test(line)) { out.push('<hr>'); i++; continue; }

      if (QUOTE.test(line)) {
        const inner = [];
        while (i < lines.length && QUOTE.test(lines[i])) {
          inner.push(QUOTE.exec(lines[i])[1]);
          i++;
        }
        out.push('<blockquote>' + blocks(inner) + '</blockquote>');
        continue;
      }

      m = LIST_ITEM.exec(line);
      if (m) {
        const baseIndent = m[1].length;
        const ordered = /\d/.test(m[2]);
        const items = [];
        let start = ordered ? parseInt(m[2], 10) : 1;
        while (i < lines.length) {
          const im = LIST_ITEM.exec(lines[i]);
          if (!im || im[1].length !== baseIndent || /\d/.test(im[2]) !== ordered) break;
          const contentIndent = im[1].length + im[2].length + 1;
          const itemLines = [im[3]];
          i++;
          // Continuation: indented lines (nested lists, code) or lazy paragraph lines.
          while (i < lines.length) {
            const l = lines[i];
            if (/^\s*$/.test(l)) {
              // A blank line continues the item only if the next line is indented into it.
              if (i + 1 < lines.length && indentOf(lines[i + 1]) >= contentIndent && !/^\s*$/.test(lines[i + 1])) {
                itemLines.push('');
                i++;
                continue;
              }
              break;
            }
            if (indentOf(l) > baseIndent) {
              itemLines.push(l.slice(Math.min(indentOf(l), contentIndent)));
              i++;
              continue;
            }
            if (!isBlockStart(l)) { itemLines.push(l); i++; continue; }
            break;
          }
          let html = blocks(itemLines);
          // A tight item is just its paragraph's text.
          html = html.replace(/^<p>([\s\S]*?)<\/p>/, '$1');
          items.push('<li>' + html + '</li>');
          // Blank lines between items of the same list.
          let j = i;
          while (j < lines.length && /^\s*$/.test(lines[j])) j++;
          if (j > i && j < lines.length) {
            const nm = LIST_ITEM.exec(lines[j]);
            if (nm && nm[1].length === baseIndent && /\d/.test(nm[2]) === ordered) i = j;
          }
        }
        if (ordered) {
          out.push('<ol' + (start !== 1 ? ' start="' + start + '"' : '') + '>' + items.join('') + '</ol>');
        } else {
          out.push('<ul>' + items.join('') + '</ul>');
        }
        continue;
      }

      const para = [line];
      i++;
      while (i < lines.length && !/^\s*$/.test(lines[i]) && !isBlockStart(lines[i])) {
        para.push(lines[i]);
        i++;
      }
      out.push('<p>' + inline(para.join('\n').trim()) + '</p>');
    }
    return out.join('');
  }

  function render(src) {
    const text = escapeHtml(String(src == null ? '' : src).replace(/\u0000/g, '').replace(/\r\n?/g, '\n'));
    return blocks(text.split('\n'));
  }

  const api = { render, escapeHtml };
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  else root.SlimMarkdown = api;
})(this);
