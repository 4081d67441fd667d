// slim web chat: conversations kept in localStorage, answers streamed from the
// OpenAI-compatible API of `slim serve` (same origin), rendered with the safe
// Markdown renderer of markdown.js. No framework, no build step, no network
// access other than the server that served this page.
(function () {
  'use strict';

  const STORE_KEY = 'slim.chat.v1';
  const API_KEY_KEY = 'slim.apiKey';
  const LAST_MODEL_KEY = 'slim.lastModel';
  const md = window.SlimMarkdown;

  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $('app'),
    convList: $('conversations'),
    newChat: $('new-chat'),
    status: $('server-status'),
    apiKey: $('api-key'),
    clearAll: $('clear-all'),
    toggleSidebar: $('toggle-sidebar'),
    title: $('conv-title'),
    model: $('model'),
    refreshModels: $('refresh-models'),
    toggleSystem: $('toggle-system'),
    systemPanel: $('system-panel'),
    system: $('system'),
    messages: $('messages'),
    composer: $('composer'),
    input: $('input'),
    send: $('send'),
    stop: $('stop'),
    regenerate: $('regenerate'),
  };

  // ---------------------------------------------------------------- state

  let models = [];            // ids from GET /v1/models
  let modelKinds = new Map(); // id -> 'local' | 'router' (auto) | 'remote' (an endpoint of the router)
  let modelsError = '';
  const streams = new Map();  // conversation id -> { controller, msg }
  const elOf = new WeakMap(); // message object -> its DOM element
  let draft = null;           // the new, still empty conversation (not in the list yet)
  let state = loadState();

  function uid() {
    return Date.now().toString(36) + Math.random().toString(36).slice(2, 8);
  }

  function str(v) { return typeof v === 'string' ? v : ''; }
  function num(v) { return typeof v === 'number' && isFinite(v) ? v : null; }

  // What the hybrid router said about an answer (x_slim.route), as plain
  // strings: it is stored with the conversation and shown under the answer.
  function cleanRoute(r) {
    if (!r || typeof r !== 'object') return null;
    const out = {
      decision: str(r.decision),
      reason: str(r.reason),
      policy: str(r.policy),
      kept_local: str(r.kept_local),
      router_decision: str(r.router_decision),
      escalation_available: r.escalation_available === true,
      endpoint: str(r.endpoint),
      fallback: null,
    };
    if (r.fallback && typeof r.fallback === 'object') {
      out.fallback = {
        endpoint: str(r.fallback.endpoint), failure: str(r.fallback.failure), message: str(r.fallback.message),
      };
    }
    return out;
  }

  function cleanSource(s) {
    if (!s || typeof s !== 'object') return null;
    return { backend: str(s.backend), model: str(s.model), endpoint: str(s.endpoint), route: cleanRoute(s.route) };
  }

  function cleanMessage(m) {
    if (!m || (m.role !== 'user' && m.role !== 'assistant')) return null;
    const out = { role: m.role, content: str(m.content) };
    if (m.role === 'assistant') {
      out.model = str(m.model);
      out.source = cleanSource(m.source);
      out.tokens = num(m.tokens);
      out.tps = num(m.tps);
      out.ttft = num(m.ttft);
      out.finish = str(m.finish);
      out.stopped = m.stopped === true;
      out.error = str(m.error);
    }
    return out;
  }

  function cleanConversation(c) {
    if (!c || typeof c.id !== 'string') return null;
    return {
      id: c.id,
      title: str(c.title),
      model: str(c.model),
      system: str(c.system),
      messages: Array.isArray(c.messages) ? c.messages.map(cleanMessage).filter(Boolean) : [],
      created: num(c.created) || Date.now(),
      updated: num(c.updated) || Date.now(),
    };
  }

  function loadState() {
    try {
      const raw = JSON.parse(localStorage.getItem(STORE_KEY) || 'null');
      if (raw && Array.isArray(raw.conversations)) {
        return {
          conversations: raw.conversations.map(cleanConversation).filter(Boolean),
          currentId: typeof raw.currentId === 'string' ? raw.currentId : null,
        };
      }
    } catch (e) { /* unreadable: start fresh */ }
    return { conversations: [], currentId: null };
  }

  function saveState() {
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(state));
    } catch (e) {
      setStatus('could not save conversations: ' + e.message, 'err');
    }
  }

  function newConversation() {
    const now = Date.now();
    return {
      id: uid(), title: '', model: localStorage.getItem(LAST_MODEL_KEY) || '', system: '',
      messages: [], created: now, updated: now,
    };
  }

  function current() {
    const c = state.conversations.find((x) => x.id === state.currentId);
    if (c) return c;
    if (!draft) draft = newConversation();
    state.currentId = draft.id;
    return draft;
  }

  function isSaved(conv) {
    return state.conversations.includes(conv);
  }

  function touch(conv) {
    conv.updated = Date.now();
    if (!isSaved(conv)) {
      state.conversations.unshift(conv);
      if (draft === conv) draft = null;
    }
    saveState();
  }

  function apiHeaders() {
    const h = { 'Content-Type': 'application/json' };
    const key = localStorage.getItem(API_KEY_KEY);
    if (key) h.Authorization = 'Bearer ' + key;
    return h;
  }

  // ---------------------------------------------------------------- models

  function setStatus(text, kind) {
    ui.status.textContent = text;
    ui.status.className = 'status' + (kind ? ' ' + kind : '');
  }

  async function errorFromResponse(res) {
    let detail = '';
    try {
      const text = await res.text();
      try {
        const j = JSON.parse(text);
        detail = (j.error && (j.error.message || (typeof j.error === 'string' ? j.error : ''))) || j.message || text;
      } catch (e) {
        detail = text;
      }
    } catch (e) { /* no body */ }
    let msg = 'HTTP ' + res.status + (detail ? ': ' + String(detail).slice(0, 500) : '');
    if (res.status === 401) msg += ' — set the API key under Settings';
    return new Error(msg);
  }

  async function loadModels() {
    ui.refreshModels.disabled = true;
    try {
      const res = await fetch('/v1/models', { headers: apiHeaders() });
      if (!res.ok) throw await errorFromResponse(res);
      const body = await res.json();
      const list = (Array.isArray(body.data) ? body.data : []).filter((m) => m && typeof m.id === 'string' && m.id);
      models = list.map((m) => m.id);
      modelKinds = new Map(list.map((m) => [m.id,
        m.owned_by === 'slim-router' ? 'router' : m.owned_by === 'remote' ? 'remote' : 'local']));
      modelsError = '';
      const local = models.filter((id) => kindOf(id) === 'local').length;
      const remotes = models.filter((id) => kindOf(id) === 'remote');
      let text = local === 1 ? '1 model' : local + ' models';
      if (remotes.length) text += ' · remote: ' + remotes.join(', ');
      setStatus(text, models.length ? 'ok' : 'err');
    } catch (e) {
      models = [];
      modelKinds = new Map();
      modelsError = e.message;
      setStatus('server: ' + e.message, 'err');
    } finally {
      ui.refreshModels.disabled = false;
      renderModelPicker();
      renderControls();
      if (!current().messages.length) renderMessages();
    }
  }

  function kindOf(id) {
    return modelKinds.get(id) || (id === 'auto' ? 'router' : 'local');
  }

  // The router when the server has one, else the first local model.
  function defaultModel() {
    if (models.includes('auto') && kindOf('auto') === 'router') return 'auto';
    return models.find((id) => kindOf(id) === 'local') || models[0] || '';
  }

  function modelLabel(id) {
    const kind = kindOf(id);
    if (kind === 'router') return id + ' (router)';
    if (kind === 'remote') return id + ' (remote)';
    return id;
  }

  function modelTitle(id) {
    const kind = kindOf(id);
    if (kind === 'router') return 'Model: auto — the router answers locally and sends what is beyond the local model to a remote endpoint';
    if (kind === 'remote') return 'Model: ' + id + ' — a remote endpoint: messages leave this machine';
    return 'Model: ' + id + ' (local)';
  }

  function renderModelPicker() {
    const conv = current();
    ui.model.textContent = '';
    if (!conv.model || (models.length && !models.includes(conv.model) && !conv.messages.length)) {
      const last = localStorage.getItem(LAST_MODEL_KEY);
      conv.model = models.includes(last) ? last : (defaultModel() || conv.model);
    }
    const option = (id, text) => {
      const o = document.createElement('option');
      o.value = id;
      o.textContent = text;
      return o;
    };
    if (!models.length && !conv.model) {
      ui.model.appendChild(option('', modelsError ? 'no server' : 'no models'));
    }
    // With a router, the choices come in groups: the router, this machine's
    // models, the remote endpoints. Without one, a plain list as before.
    const groups = [
      ['router', 'Router'], ['local', 'Local models'], ['remote', 'Remote endpoints'],
    ].map(([kind, label]) => ({ label, ids: models.filter((id) => kindOf(id) === kind) }));
    const grouped = groups[0].ids.length > 0 || groups[2].ids.length > 0;
    for (const g of groups) {
      if (!g.ids.length) continue;
      let parent = ui.model;
      if (grouped) {
        parent = document.createElement('optgroup');
        parent.label = g.label;
        ui.model.appendChild(parent);
      }
      for (const id of g.ids) parent.appendChild(option(id, modelLabel(id)));
    }
    if (conv.model && !models.includes(conv.model)) ui.model.appendChild(option(conv.model, conv.model + ' (not served)'));
    ui.model.value = conv.model || '';
    ui.model.title = conv.model ? modelTitle(conv.model) : 'Model';
  }

  // ---------------------------------------------------------------- rendering

  // "local · stories260K", "remote · cloud (gpt-x)".
  function sourceLabel(msg) {
    const s = msg.source;
    if (s && s.backend) {
      if (s.backend === 'local') return { text: 'local · ' + (s.model || msg.model), kind: 'local' };
      if (s.endpoint) return { text: 'remote · ' + s.endpoint + (s.model ? ' (' + s.model + ')' : ''), kind: 'remote' };
      return { text: 'remote · ' + (s.model || msg.model), kind: 'remote' };
    }
    return { text: (s && s.model) || msg.model || 'unknown', kind: '' };
  }

  // The router's account of an answer: its reason, and a notice when the
  // answer is not where the router wanted it (kept local, remote failed).
  function routeNotice(msg) {
    const s = msg.source;
    const r = s && s.route;
    if (!r) return null;
    if (r.fallback) {
      const f = r.fallback;
      const failure = f.failure || 'error';
      const where = f.endpoint || 'remote';
      if (s.backend === 'remote') {
        return { text: where + ' broke off (' + failure + ') — the answer may be incomplete', detail: f.message, kind: 'fallback' };
      }
      return { text: where + ' failed (' + failure + ') — answered locally', detail: f.message, kind: 'fallback' };
    }
    if (r.escalation_available && r.endpoint) {
      return {
        text: 'the router would ask ' + r.endpoint + '; the ' + (r.policy || 'ask') + ' policy kept it on this machine',
        detail: r.kept_local, kind: 'ask',
      };
    }
    if (r.kept_local) return { text: 'kept local: ' + r.kept_local, detail: '', kind: 'kept' };
    return null;
  }

  function isLastAnswer(msg) {
    const conv = current();
    return conv.messages[conv.messages.length - 1] === msg;
  }

  function renderRoute(msg, box) {
    box.textContent = '';
    const r = msg.source && msg.source.route;
    box.hidden = !r;
    if (!r) return;
    if (r.reason) {
      const reason = document.createElement('span');
      reason.className = 'route-reason';
      reason.textContent = 'router: ' + r.reason;
      reason.title = 'Why the router chose ' + (r.decision || 'this backend') + (r.policy ? ' (policy ' + r.policy + ')' : '');
      box.appendChild(reason);
    }
    const n = routeNotice(msg);
    if (n) {
      const notice = document.createElement('span');
      notice.className = 'route-notice ' + n.kind;
      notice.textContent = n.text;
      if (n.detail) notice.title = n.detail;
      box.appendChild(notice);
    }
    const conv = current();
    if (r.escalation_available && r.endpoint && streamState(msg) !== 'streaming' && !streams.has(conv.id) &&
        isLastAnswer(msg)) {
      const ask = document.createElement('button');
      ask.type = 'button';
      ask.className = 'btn ask-remote';
      ask.textContent = 'Ask ' + r.endpoint;
      ask.title = 'Send this conversation to the remote endpoint ' + r.endpoint + ' (it leaves this machine)';
      ask.addEventListener('click', () => askRemote(conv, msg, r.endpoint));
      box.appendChild(ask);
    }
  }

  function fmtRate(v) {
    return v >= 100 ? v.toFixed(0) : v.toFixed(1);
  }

  function renderMeta(msg, meta) {
    meta.textContent = '';
    const state = streamState(msg);
    if (state === 'streaming' && !msg.content) {
      const w = document.createElement('span');
      w.textContent = 'waiting for the model…';
      meta.appendChild(w);
      return;
    }
    if (msg.source || msg.model) {
      const b = sourceLabel(msg);
      const badge = document.createElement('span');
      badge.className = 'badge' + (b.kind ? ' ' + b.kind : '');
      badge.textContent = b.text;
      badge.title = 'Answered by ' + b.text;
      meta.appendChild(badge);
    }
    if (msg.tokens != null) {
      const t = document.createElement('span');
      t.className = 'tokens';
      t.textContent = msg.tokens + (msg.tokens === 1 ? ' token' : ' tokens');
      meta.appendChild(t);
    }
    if (msg.tps != null) {
      const r = document.createElement('span');
      r.className = 'tps';
      r.textContent = fmtRate(msg.tps) + ' tok/s';
      if (msg.ttft != null) r.title = 'first token after ' + Math.round(msg.ttft) + ' ms';
      meta.appendChild(r);
    }
    if (msg.stopped) {
      const s = document.createElement('span');
      s.className = 'stopped';
      s.textContent = 'stopped';
      meta.appendChild(s);
    } else if (msg.finish === 'length') {
      const s = document.createElement('span');
      s.textContent = 'length limit reached';
      meta.appendChild(s);
    }
  }

  function streamState(msg) {
    for (const s of streams.values()) if (s.msg === msg) return 'streaming';
    if (msg.error) return 'error';
    if (msg.stopped) return 'stopped';
    return 'done';
  }

  function messageElement(msg) {
    const el = document.createElement('div');
    el.className = 'msg ' + msg.role;
    el.dataset.role = msg.role;
    const role = document.createElement('div');
    role.className = 'role';
    role.textContent = msg.role === 'user' ? 'You' : 'Assistant';
    const content = document.createElement('div');
    content.className = 'content';
    el.append(role, content);
    if (msg.role === 'assistant') {
      const meta = document.createElement('div');
      meta.className = 'meta';
      const route = document.createElement('div');
      route.className = 'route';
      route.hidden = true;
      el.append(meta, route);
    }
    elOf.set(msg, el);
    updateMessage(msg);
    return el;
  }

  function updateMessage(msg) {
    const el = elOf.get(msg);
    if (!el) return;
    const content = el.querySelector('.content');
    if (msg.role === 'user') {
      content.textContent = msg.content;
      return;
    }
    const st = streamState(msg);
    el.dataset.state = st;
    el.classList.toggle('streaming', st === 'streaming');
    // Model output goes through the escaping renderer only.
    content.innerHTML = md.render(msg.content);
    renderMeta(msg, el.querySelector('.meta'));
    renderRoute(msg, el.querySelector('.route'));
    let err = el.querySelector('.error-box');
    if (msg.error) {
      if (!err) {
        err = document.createElement('div');
        err.className = 'error-box';
        el.appendChild(err);
      }
      err.textContent = msg.error;
    } else if (err) {
      err.remove();
    }
  }

  // Coalesce re-renders of a streaming message to one per animation frame.
  const pending = new Set();
  let frameRequested = false;
  function scheduleUpdate(msg) {
    pending.add(msg);
    if (frameRequested) return;
    frameRequested = true;
    requestAnimationFrame(() => {
      frameRequested = false;
      const stick = nearBottom();
      for (const m of pending) updateMessage(m);
      pending.clear();
      if (stick) scrollToBottom();
    });
  }

  function nearBottom() {
    const m = ui.messages;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }
  function scrollToBottom() {
    ui.messages.scrollTop = ui.messages.scrollHeight;
  }

  function renderMessages() {
    const conv = current();
    ui.messages.textContent = '';
    if (!conv.messages.length) {
      const empty = document.createElement('div');
      empty.className = 'empty';
      const h = document.createElement('h2');
      const p = document.createElement('p');
      const kind = conv.model ? kindOf(conv.model) : '';
      if (kind === 'router') {
        const remotes = models.filter((id) => kindOf(id) === 'remote');
        h.textContent = 'Chat, local first';
        p.textContent = 'The router answers with the model on this machine and sends what is beyond it to ' +
          (remotes.length ? remotes.join(', ') : 'a remote endpoint') +
          '. Each answer says where it came from and why. Conversations stay in this browser.';
      } else if (kind === 'remote') {
        h.textContent = 'Chat with a remote endpoint';
        p.textContent = 'Messages go to ' + conv.model + ', outside this machine. Conversations stay in this browser.';
      } else {
        h.textContent = 'Chat with a local model';
        p.textContent = conv.model
          ? 'Answers come from ' + conv.model + ', running on this machine. Conversations stay in this browser.'
          : 'Pick a model above. Conversations stay in this browser.';
      }
      empty.append(h, p);
      ui.messages.appendChild(empty);
      return;
    }
    for (const m of conv.messages) ui.messages.appendChild(messageElement(m));
    scrollToBottom();
  }

  function renderSidebar() {
    ui.convList.textContent = '';
    const list = state.conversations.slice().sort((a, b) => b.updated - a.updated);
    if (!list.length) {
      const p = document.createElement('p');
      p.className = 'side-empty';
      p.textContent = 'No conversations yet. They are kept in this browser only.';
      ui.convList.appendChild(p);
    }
    for (const c of list) {
      const row = document.createElement('div');
      row.className = 'conv' + (c.id === state.currentId ? ' active' : '');
      row.dataset.id = c.id;
      const open = document.createElement('button');
      open.type = 'button';
      open.className = 'conv-open';
      open.title = c.title || 'New chat';
      if (streams.has(c.id)) {
        const busy = document.createElement('span');
        busy.className = 'busy';
        busy.textContent = '●';
        busy.title = 'answering';
        open.appendChild(busy);
      }
      open.appendChild(document.createTextNode(c.title || 'New chat'));
      const del = document.createElement('button');
      del.type = 'button';
      del.className = 'conv-delete';
      del.textContent = '×';
      del.title = 'Delete this conversation';
      del.setAttribute('aria-label', 'Delete conversation ' + (c.title || ''));
      row.append(open, del);
      ui.convList.appendChild(row);
    }
  }

  function renderControls() {
    const conv = current();
    const busy = streams.has(conv.id);
    ui.stop.hidden = !busy;
    ui.send.hidden = busy;
    ui.send.disabled = !conv.model;
    const last = conv.messages[conv.messages.length - 1];
    ui.regenerate.hidden = busy || !last || !conv.messages.some((m) => m.role === 'user');
    ui.title.textContent = conv.title || 'New chat';
    document.title = (conv.title ? conv.title + ' — ' : '') + 'slim';
    if (document.activeElement !== ui.system) ui.system.value = conv.system;
    ui.toggleSystem.textContent = conv.system.trim() ? 'System prompt •' : 'System prompt';
  }

  function renderAll() {
    renderSidebar();
    renderModelPicker();
    renderMessages();
    renderControls();
  }

  // ---------------------------------------------------------------- streaming

  // Reads a text/event-stream body, calling onEvent(name, data) per event.
  // Returns true when the server sent `data: [DONE]`.
  async function readEvents(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buf = '';
    let data = [];
    let name = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf[nl] === '\r' && buf[nl + 1] === '\n' ? 2 : 1));
          if (line === '') {
            if (data.length) {
              const payload = data.join('\n');
              data = [];
              if (payload.trim() === '[DONE]') return true;
              onEvent(name, payload);
            }
            name = '';
          } else if (line.startsWith('data:')) {
            data.push(line.slice(5).replace(/^ /, ''));
          } else if (line.startsWith('event:')) {
            name = line.slice(6).trim();
          }
          // Comments (":") and other fields are ignored.
        }
      }
      if (data.length) {
        const payload = data.join('\n');
        if (payload.trim() === '[DONE]') return true;
        onEvent(name, payload);
      }
      return false;
    } finally {
      reader.cancel().catch(() => {});
    }
  }

  function sourceFromHeaders(headers) {
    const v = headers.get('X-Slim-Backend');
    if (!v) return null;
    try {
      const j = JSON.parse(v);
      if (j && typeof j === 'object') {
        return { backend: str(j.backend), model: str(j.model), endpoint: str(j.endpoint) };
      }
    } catch (e) { /* plain value */ }
    return { backend: v.trim(), model: headers.get('X-Slim-Model') || '', endpoint: '' };
  }

  function requestMessages(conv, upTo) {
    const out = [];
    if (conv.system.trim()) out.push({ role: 'system', content: conv.system });
    for (const m of conv.messages.slice(0, upTo)) {
      // Failed or empty answers are not part of the dialogue.
      if (m.role === 'assistant' && (m.error || !m.content)) continue;
      out.push({ role: m.role, content: m.content });
    }
    return out;
  }

  // Streams an answer to the conversation from `model` (default: the
  // conversation's model; "Ask cloud" names the endpoint for one answer).
  async function generate(conv, model) {
    model = model || conv.model;
    const msg = cleanMessage({ role: 'assistant', content: '', model });
    conv.messages.push(msg);
    const body = {
      model,
      messages: requestMessages(conv, conv.messages.length - 1),
      stream: true,
      stream_options: { include_usage: true },
    };
    const controller = new AbortController();
    streams.set(conv.id, { controller, msg });
    touch(conv);
    if (conv === current()) renderMessages();
    renderSidebar();
    renderControls();

    const t0 = performance.now();
    let tFirst = null;
    let tLast = null;
    let chunks = 0;
    let usage = null;
    let timings = null;
    let sawFinish = false;
    try {
      const res = await fetch('/v1/chat/completions', {
        method: 'POST',
        headers: apiHeaders(),
        body: JSON.stringify(body),
        signal: controller.signal,
      });
      if (!res.ok) throw await errorFromResponse(res);
      msg.source = sourceFromHeaders(res.headers);
      const done = await readEvents(res.body, (event, payload) => {
        let obj;
        try { obj = JSON.parse(payload); } catch (e) { return; }
        if (event === 'error' || obj.error) {
          const e = obj.error || obj;
          throw new Error(typeof e === 'string' ? e : (e.message || JSON.stringify(e)));
        }
        if (obj.x_slim && typeof obj.x_slim === 'object') {
          // Every chunk says which backend answers and, for a routed request,
          // why (x_slim.route); the last one may add a fallback notice.
          const x = obj.x_slim;
          const prev = msg.source || {};
          const next = cleanSource({
            backend: str(x.backend) || prev.backend || '',
            model: str(x.model) || str(obj.model) || prev.model || '',
            endpoint: str(x.endpoint) || (str(x.backend) ? '' : prev.endpoint || ''),
            route: x.route,
          });
          if (!next.route) next.route = prev.route || null;
          const changed = JSON.stringify(next) !== JSON.stringify(msg.source);
          msg.source = next;
          if (changed && conv === current()) scheduleUpdate(msg);
        } else if (!msg.source && typeof obj.model === 'string' && obj.model) {
          msg.source = { backend: '', model: obj.model, endpoint: '' };
        }
        if (obj.usage && typeof obj.usage === 'object') usage = obj.usage;
        // Server-measured decode speed, when the server sends one.
        if (obj.timings && typeof obj.timings === 'object') timings = obj.timings;
        if (obj.x_slim && typeof obj.x_slim === 'object') {
          const x = obj.x_slim;
          const rate = num(x.tokens_per_second) ?? num(x.timings && x.timings.predicted_per_second);
          if (rate !== null) timings = { predicted_per_second: rate };
        }
        const choice = Array.isArray(obj.choices) ? obj.choices[0] : null;
        if (choice) {
          const delta = choice.delta && choice.delta.content;
          if (typeof delta === 'string' && delta.length) {
            const now = performance.now();
            if (tFirst === null) tFirst = now;
            tLast = now;
            chunks++;
            msg.tokens = chunks;
            msg.content += delta;
            if (conv === current()) scheduleUpdate(msg);
          }
          if (choice.finish_reason) {
            msg.finish = String(choice.finish_reason);
            sawFinish = true;
          }
        }
      });
      if (!done && !sawFinish && !controller.signal.aborted) {
        throw new Error('the connection closed before the answer was complete');
      }
    } catch (e) {
      if (controller.signal.aborted) msg.stopped = true;
      else msg.error = e && e.message ? e.message : String(e);
    } finally {
      const tEnd = performance.now();
      const tokens = usage && num(usage.completion_tokens) != null ? usage.completion_tokens : chunks;
      msg.tokens = tokens > 0 ? tokens : (msg.error ? null : 0);
      if (timings && num(timings.predicted_per_second) != null) {
        msg.tps = timings.predicted_per_second;
      } else if (tokens > 1 && tFirst !== null && tLast - tFirst >= 250) {
        // Decode speed as seen here: tokens after the first over the time they took.
        msg.tps = (tokens - 1) / ((tLast - tFirst) / 1000);
      } else if (tokens > 0) {
        // Too short (or delivered in one burst) to time the decode alone:
        // count from the request, prompt processing included.
        msg.tps = tokens / (((tLast !== null ? tLast : tEnd) - t0) / 1000);
      }
      if (tFirst !== null) msg.ttft = tFirst - t0;
      streams.delete(conv.id);
      touch(conv);
      pending.delete(msg);
      if (conv === current()) {
        const stick = nearBottom();
        updateMessage(msg);
        if (stick) scrollToBottom();
      }
      renderSidebar();
      renderControls();
    }
  }

  // ---------------------------------------------------------------- actions

  function send() {
    const conv = current();
    const text = ui.input.value;
    if (!text.trim() || streams.has(conv.id)) return;
    if (!conv.model) {
      setStatus('no model selected', 'err');
      return;
    }
    conv.messages.push({ role: 'user', content: text });
    if (!conv.title) conv.title = text.trim().split('\n')[0].slice(0, 60);
    ui.input.value = '';
    autoGrow();
    localStorage.setItem(LAST_MODEL_KEY, conv.model);
    generate(conv);
  }

  // Answers the last message again: with the conversation's model, or with
  // `model` for this one answer.
  function regenerate(model) {
    const conv = current();
    if (streams.has(conv.id)) return;
    while (conv.messages.length && conv.messages[conv.messages.length - 1].role === 'assistant') {
      conv.messages.pop();
    }
    if (!conv.messages.length) return;
    renderMessages();
    generate(conv, typeof model === 'string' ? model : undefined);
  }

  // "Ask cloud": the router kept an answer here under the ask policy; the
  // user confirms, and the same conversation goes to that endpoint, whose
  // answer replaces the local one.
  function askRemote(conv, msg, endpoint) {
    if (conv !== current() || !isLastAnswer(msg)) return;
    regenerate(endpoint);
  }

  function stop() {
    const s = streams.get(current().id);
    if (s) s.controller.abort();
  }

  function switchTo(id) {
    if (draft && draft.id !== id && !draft.messages.length) draft = null;
    state.currentId = id;
    saveState();
    renderAll();
    closeSidebarIfNarrow();
    ui.input.focus();
  }

  function startNewChat() {
    const conv = current();
    if (!isSaved(conv) && !conv.messages.length) {
      closeSidebarIfNarrow();
      ui.input.focus();
      return;
    }
    draft = newConversation();
    state.currentId = draft.id;
    saveState();
    renderAll();
    closeSidebarIfNarrow();
    ui.input.focus();
  }

  function deleteConversation(id) {
    const s = streams.get(id);
    if (s) s.controller.abort();
    state.conversations = state.conversations.filter((c) => c.id !== id);
    if (state.currentId === id) {
      const next = state.conversations.slice().sort((a, b) => b.updated - a.updated)[0];
      state.currentId = next ? next.id : null;
    }
    saveState();
    renderAll();
  }

  function autoGrow() {
    ui.input.style.height = 'auto';
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, window.innerHeight * 0.4) + 'px';
  }

  // ---------------------------------------------------------------- wiring

  ui.composer.addEventListener('submit', (e) => { e.preventDefault(); send(); });
  ui.input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    }
  });
  ui.input.addEventListener('input', autoGrow);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && streams.has(current().id)) stop();
  });
  ui.stop.addEventListener('click', stop);
  ui.regenerate.addEventListener('click', () => regenerate());
  ui.newChat.addEventListener('click', startNewChat);

  ui.convList.addEventListener('click', (e) => {
    const row = e.target.closest('.conv');
    if (!row) return;
    if (e.target.closest('.conv-delete')) deleteConversation(row.dataset.id);
    else switchTo(row.dataset.id);
  });

  ui.model.addEventListener('change', () => {
    const conv = current();
    conv.model = ui.model.value;
    localStorage.setItem(LAST_MODEL_KEY, conv.model);
    if (isSaved(conv)) saveState();
    renderControls();
    if (!conv.messages.length) renderMessages();
  });
  ui.refreshModels.addEventListener('click', loadModels);

  ui.toggleSystem.addEventListener('click', () => {
    const open = ui.systemPanel.hidden;
    ui.systemPanel.hidden = !open;
    ui.toggleSystem.setAttribute('aria-expanded', String(open));
    if (open) ui.system.focus();
  });
  ui.system.addEventListener('input', () => {
    const conv = current();
    conv.system = ui.system.value;
    if (isSaved(conv)) saveState();
    ui.toggleSystem.textContent = conv.system.trim() ? 'System prompt •' : 'System prompt';
  });

  $('settings-form').addEventListener('submit', (e) => { e.preventDefault(); ui.apiKey.blur(); });
  ui.apiKey.value = localStorage.getItem(API_KEY_KEY) || '';
  ui.apiKey.addEventListener('change', () => {
    if (ui.apiKey.value) localStorage.setItem(API_KEY_KEY, ui.apiKey.value);
    else localStorage.removeItem(API_KEY_KEY);
    loadModels();
  });
  ui.clearAll.addEventListener('click', () => {
    if (!window.confirm('Delete all conversations kept in this browser?')) return;
    for (const s of streams.values()) s.controller.abort();
    state = { conversations: [], currentId: null };
    draft = null;
    saveState();
    renderAll();
  });

  // On a narrow screen the sidebar overlays the chat: close it after a choice.
  const narrow = window.matchMedia('(max-width: 700px)');
  function closeSidebarIfNarrow() {
    if (narrow.matches) ui.app.classList.add('sidebar-hidden');
  }
  ui.toggleSidebar.addEventListener('click', (e) => {
    e.stopPropagation();
    ui.app.classList.toggle('sidebar-hidden');
  });
  $('main').addEventListener('click', closeSidebarIfNarrow);
  closeSidebarIfNarrow();

  ui.messages.addEventListener('click', (e) => {
    const btn = e.target.closest('.copy-code');
    if (!btn) return;
    const code = btn.closest('.code-block').querySelector('code');
    const done = () => {
      btn.textContent = 'Copied';
      setTimeout(() => { btn.textContent = 'Copy'; }, 1200);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(code.textContent).then(done, () => {});
    } else {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
  });

  // Another tab changed the conversations: take them over unless we are streaming.
  window.addEventListener('storage', (e) => {
    if (e.key !== STORE_KEY || streams.size) return;
    state = loadState();
    renderAll();
  });

  renderAll();
  loadModels();
  ui.input.focus();
})();
