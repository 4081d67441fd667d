// The web chat page served by `slim serve`, driven in headless Chromium
// (Debian's chromium) by playwright-core. Run through run.sh, which starts the
// server and sets SLIM_BASE_URL.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.SLIM_BASE_URL;
assert.ok(base && /^http:\/\/127\.0\.0\.1:\d+$/.test(base), 'SLIM_BASE_URL must be http://127.0.0.1:PORT (use run.sh)');
const artifacts = process.env.SLIM_ARTIFACT_DIR || path.resolve('build/artifacts');
const executablePath = process.env.SLIM_CHROMIUM || '/usr/bin/chromium';
const T = { timeout: 90_000 };
// The hybrid router: run.sh makes the server's remote endpoint `cloud` another
// slim serve (SLIM_REMOTE_URL), and starts two more hybrid servers for the
// page: one under --policy ask, one whose remote fails.
const remoteBase = process.env.SLIM_REMOTE_URL;
const remoteModel = process.env.SLIM_REMOTE_MODEL;
const remoteName = process.env.SLIM_REMOTE_NAME || 'cloud';
const askBase = process.env.SLIM_ASK_URL;
const fallbackBase = process.env.SLIM_FALLBACK_URL;
for (const [k, v] of Object.entries({ SLIM_REMOTE_URL: remoteBase, SLIM_ASK_URL: askBase, SLIM_FALLBACK_URL: fallbackBase })) {
  assert.ok(v && /^http:\/\/127\.0\.0\.1:\d+$/.test(v), `${k} must be http://127.0.0.1:PORT (use run.sh)`);
}
assert.ok(remoteModel, 'SLIM_REMOTE_MODEL (use run.sh)');
const STORY = 'Once there was a little girl who loved to play.';
const SQL = 'Write a SQL query that joins orders with customers on customer_id.';

let browser;
let context;
let page;
let cdp;
let profile;
let models = [];
let localModels = [];
const chatRequests = [];   // JSON bodies the page POSTed to /v1/chat/completions
const foreignRequests = []; // anything not sent to the server under test
const pageErrors = [];

function storiesModel() {
  return localModels.find((id) => /stories/i.test(id)) || localModels[0];
}
function syntheticModel() {
  return localModels.find((id) => /qwen/i.test(id)) || localModels[localModels.length - 1];
}

// Slow the page's downloads down so that a stream is observably a stream and
// a generation is still running when the test clicks Stop.
async function throttle(bytesPerSecond) {
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: bytesPerSecond, uploadThroughput: -1,
  });
}
async function unthrottle() {
  await throttle(-1);
}

const assistant = () => page.locator('#messages .msg.assistant').last();

async function waitAnswerState(states, timeout = 60_000) {
  await page.waitForFunction((want) => {
    const all = document.querySelectorAll('#messages .msg.assistant');
    const last = all[all.length - 1];
    return last && want.includes(last.dataset.state);
  }, states, { timeout });
  return assistant().getAttribute('data-state');
}

async function expectDone() {
  const state = await waitAnswerState(['done', 'error', 'stopped']);
  const error = state === 'error' ? await assistant().locator('.error-box').innerText() : '';
  assert.equal(state, 'done', `the answer ended as ${state} ${error}`);
}

async function send(text) {
  await page.fill('#input', text);
  await page.click('#send');
}

before(async () => {
  const res = await fetch(base + '/v1/models');
  assert.equal(res.status, 200);
  const listed = (await res.json()).data;
  models = listed.map((m) => m.id);
  localModels = listed.filter((m) => m.owned_by === 'slim').map((m) => m.id);
  assert.ok(localModels.length >= 2, 'run.sh serves two models');
  assert.ok(models.includes('auto') && models.includes(remoteName), 'run.sh starts a hybrid server');

  mkdirSync(artifacts, { recursive: true });
  profile = mkdtempSync(path.join(tmpdir(), 'slim-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
  });
  browser = context.browser();
  page = context.pages()[0] || await context.newPage();
  page.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(base + '/') && !url.startsWith('data:')) foreignRequests.push(url);
    if (r.method() === 'POST' && new URL(url).pathname === '/v1/chat/completions') {
      chatRequests.push(JSON.parse(r.postData()));
    }
  });
  page.on('pageerror', (e) => pageErrors.push(e.message));
  cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
});

after(async () => {
  if (context) await context.close();
  if (browser) await browser.close().catch(() => {});
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test('the page loads from the server and lists its models', T, async () => {
  const res = await page.goto(base + '/');
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-type'] || '', /text\/html/);
  assert.equal(await page.title(), 'slim');
  await page.waitForSelector('#server-status.ok');
  const options = await page.$$eval('#model option', (os) => os.map((o) => o.value));
  assert.deepEqual([...options].sort(), [...models].sort());
  assert.equal(await page.locator('.empty').count(), 1, 'a new chat shows the empty state');
  assert.equal(await page.locator('#conversations .conv').count(), 0);
});

test('sends a message and sees the answer streamed', T, async () => {
  const model = storiesModel();
  await page.selectOption('#model', model);
  await throttle(100_000);
  const responseSeen = page.waitForResponse((r) => new URL(r.url()).pathname === '/v1/chat/completions');
  await send('Tell me a story about a little dog.');

  await page.waitForSelector('#messages .msg.user');
  assert.equal(await page.locator('#messages .msg.user .content').innerText(), 'Tell me a story about a little dog.');
  // Text appears while the answer is still streaming, and the Stop button shows.
  const partial = await page.waitForFunction(() => {
    const all = document.querySelectorAll('#messages .msg.assistant');
    const last = all[all.length - 1];
    return last && last.dataset.state === 'streaming' && last.querySelector('.content').textContent.length > 0 &&
      last.querySelector('.content').textContent;
  }, null, { timeout: 60_000 });
  const partialText = await partial.jsonValue();
  assert.ok(await page.locator('#stop').isVisible(), 'Stop shows while streaming');
  assert.ok(await page.locator('#send').isHidden());

  const response = await responseSeen;
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-type'] || '', /text\/event-stream/);

  await expectDone();
  await unthrottle();
  const answer = await assistant().locator('.content').innerText();
  assert.ok(answer.length > partialText.length, 'the answer grew after the first streamed text');
  assert.ok(answer.trim().length > 0);

  // The request used the streaming OpenAI API with usage.
  const body = chatRequests.at(-1);
  assert.equal(body.model, model);
  assert.equal(body.stream, true);
  assert.deepEqual(body.stream_options, { include_usage: true });
  assert.deepEqual(body.messages, [{ role: 'user', content: 'Tell me a story about a little dog.' }]);

  // Badge says where the answer came from; tokens and tokens/s are shown.
  const badge = await assistant().locator('.meta .badge').innerText();
  assert.ok(badge.includes(model), `badge "${badge}" names the model ${model}`);
  const tokens = await assistant().locator('.meta .tokens').innerText();
  assert.match(tokens, /^\d+ tokens?$/);
  assert.ok(parseInt(tokens, 10) >= 1);
  const tps = await assistant().locator('.meta .tps').innerText();
  assert.match(tps, /^\d+(\.\d)? tok\/s$/);
  assert.ok(parseFloat(tps) > 0);

  assert.ok(await page.locator('#send').isVisible());
  assert.ok(await page.locator('#regenerate').isVisible());
  assert.equal(await page.locator('#conversations .conv').count(), 1);
  assert.match(await page.locator('#conversations .conv.active').innerText(), /Tell me a story/);
  await page.screenshot({ path: path.join(artifacts, 'web-chat-answer.png') });
});

test('stops a generation', T, async () => {
  await page.click('#new-chat');
  assert.equal(await page.locator('.empty').count(), 1);
  await page.selectOption('#model', syntheticModel());
  // A synthetic model rarely ends its gibberish early; still, retry if an
  // answer happens to complete before Stop could be clicked.
  let stoppedText = null;
  for (let attempt = 0; attempt < 3 && stoppedText === null; attempt++) {
    await throttle(2_000);
    if (attempt === 0) await send('Write a very long text.');
    else await page.click('#regenerate');
    await page.waitForFunction(() => {
      const all = document.querySelectorAll('#messages .msg.assistant');
      const last = all[all.length - 1];
      return last && (last.dataset.state !== 'streaming' || last.querySelector('.content').textContent.length > 0);
    }, null, { timeout: 60_000 });
    if (await assistant().getAttribute('data-state') !== 'streaming') continue;
    await page.click('#stop');
    const state = await waitAnswerState(['done', 'error', 'stopped']);
    await unthrottle();
    if (state === 'stopped') stoppedText = await assistant().locator('.content').innerText();
    else assert.equal(state, 'done', 'a generation either stops or completes');
  }
  await unthrottle();
  assert.notEqual(stoppedText, null, 'a generation was stopped');
  assert.equal(await assistant().locator('.meta .stopped').innerText(), 'stopped');
  assert.ok(await page.locator('#send').isVisible());
  assert.ok(await page.locator('#stop').isHidden());
  // Nothing arrives after Stop.
  await page.waitForTimeout(1000);
  assert.equal(await assistant().locator('.content').innerText(), stoppedText);
  await page.screenshot({ path: path.join(artifacts, 'web-chat-stopped.png') });

  // The server still answers in this conversation after the aborted stream.
  await send('Now a short one.');
  await expectDone();
  assert.equal(await page.locator('#messages .msg.user').count(), 2);
  const body = chatRequests.at(-1);
  assert.equal(body.model, syntheticModel());
  assert.equal(body.messages.at(-1).content, 'Now a short one.');
});

test('regenerates the last answer', T, async () => {
  const before = await page.locator('#messages .msg').count();
  const lastUser = await page.locator('#messages .msg.user').last().innerText();
  const requestsBefore = chatRequests.length;
  await page.click('#regenerate');
  await expectDone();
  assert.equal(chatRequests.length, requestsBefore + 1);
  const body = chatRequests.at(-1);
  assert.equal(body.messages.at(-1).role, 'user');
  assert.equal(body.messages.at(-1).content, 'Now a short one.');
  assert.ok(lastUser.includes('Now a short one.'));
  assert.equal(await page.locator('#messages .msg').count(), before, 'the answer was replaced, not added');
});

test('sends the conversation\'s system prompt', T, async () => {
  await page.click('#new-chat');
  await page.selectOption('#model', storiesModel());
  await page.click('#toggle-system');
  await page.fill('#system', 'You are a storyteller for children.');
  await send('Tell me about a cat.');
  await expectDone();
  const body = chatRequests.at(-1);
  assert.deepEqual(body.messages, [
    { role: 'system', content: 'You are a storyteller for children.' },
    { role: 'user', content: 'Tell me about a cat.' },
  ]);
  assert.equal(await page.locator('#toggle-system').innerText(), 'System prompt •');
});

test('switches between conversations and keeps them across a reload', T, async () => {
  const rows = page.locator('#conversations .conv');
  assert.equal(await rows.count(), 3);
  // Most recent first.
  assert.deepEqual((await rows.allInnerTexts()).map((t) => t.replace(/^●/, '').trim().slice(0, 16)),
    ['Tell me about a ', 'Write a very lon', 'Tell me a story ']);
  const open = async (title) => {
    await page.locator('#conversations .conv', { hasText: title }).locator('.conv-open').click();
    await page.waitForFunction((t) => document.querySelector('#conv-title').textContent === t, title);
    assert.equal(await page.locator('#conversations .conv.active .conv-open').innerText(), title);
  };

  await open('Tell me a story about a little dog.');
  assert.equal(await page.locator('#messages .msg.user').count(), 1);
  assert.equal(await page.locator('#messages .msg.user .content').innerText(), 'Tell me a story about a little dog.');
  assert.equal(await page.inputValue('#system'), '', 'the system prompt belongs to another conversation');
  assert.equal(await page.inputValue('#model'), storiesModel());

  await open('Write a very long text.');
  assert.equal(await page.locator('#messages .msg.user').count(), 2);
  assert.equal(await page.inputValue('#model'), syntheticModel());
  assert.equal(await page.inputValue('#system'), '');

  await page.reload();
  await page.waitForSelector('#server-status.ok');
  assert.equal(await page.locator('#conversations .conv').count(), 3);
  assert.equal(await page.locator('#conv-title').innerText(), 'Write a very long text.', 'the open conversation survives a reload');
  assert.equal(await page.locator('#messages .msg.assistant[data-state="stopped"]').count(), 1);
  assert.equal(await page.locator('#messages .msg.assistant .meta .stopped').count(), 1);

  await open('Tell me about a cat.');
  assert.equal(await page.inputValue('#system'), 'You are a storyteller for children.');

  await open('Tell me a story about a little dog.');
  assert.equal(await page.locator('#messages .msg.assistant[data-state="done"]').count(), 1);
  assert.ok((await page.locator('#messages .msg.assistant .meta .badge').innerText()).includes(storiesModel()));
  await page.screenshot({ path: path.join(artifacts, 'web-chat.png') });
});

test('model output cannot inject HTML into the page', T, async () => {
  const hostile = [
    'Look: <img src=x onerror="window.__pwned=1"> <script>window.__pwned=2</script>',
    '<iframe src="javascript:window.__pwned=3"></iframe>',
    '[click](javascript:window.__pwned=4) and [docs](https://example.com/?a=1&b=2)',
    '```html\n<b onclick="window.__pwned=5">code</b>\n```',
  ].join('\n\n');
  await page.evaluate((content) => {
    const s = JSON.parse(localStorage.getItem('slim.chat.v1'));
    s.conversations.push({
      id: 'hostile', title: 'hostile <b>title</b>', model: 'x', system: '', created: 1, updated: 1,
      messages: [{ role: 'user', content: '<img src=y onerror="window.__pwned=6">' },
        { role: 'assistant', content, model: '<i>m</i>' }],
    });
    s.currentId = 'hostile';
    localStorage.setItem('slim.chat.v1', JSON.stringify(s));
  }, hostile);
  await page.reload();
  await page.waitForFunction(() => document.querySelector('#conv-title').textContent.startsWith('hostile'));
  await page.waitForTimeout(300);
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator('#app img, #app script, #app iframe, #app i, #messages b').count(), 0);
  assert.equal(await page.locator('#conv-title').innerText(), 'hostile <b>title</b>');
  const hrefs = await page.$$eval('#messages a', (as) => as.map((a) => a.getAttribute('href')));
  assert.deepEqual(hrefs, ['https://example.com/?a=1&b=2']);
  const text = await assistant().locator('.content').innerText();
  assert.ok(text.includes('<script>window.__pwned=2</script>'), 'the markup is shown as text');
  assert.equal(await assistant().locator('pre code').innerText(), '<b onclick="window.__pwned=5">code</b>');
  // Delete it again from the sidebar.
  await page.locator('#conversations .conv.active .conv-delete').click();
  assert.equal(await page.locator('#conversations .conv').count(), 3);
});


// ---------------------------------------------------------------- the hybrid router

// The remote's count of answered chat requests (its /metrics).
async function remoteChats() {
  const text = await (await fetch(remoteBase + '/metrics')).text();
  const line = text.split('\n').find((l) => l.startsWith('slim_requests_total{route="/v1/chat/completions",status="200"} '));
  return line ? Number(line.split(' ').pop()) : 0;
}

// What the router says about the last user message of `messages` (it judges
// that one), asked of `server` directly.
async function routeOf(server, messages) {
  const r = await fetch(server + '/v1/chat/completions', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'auto', messages, max_tokens: 1 }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).x_slim.route;
}

// A page of its own (own origin, own localStorage) on one of the other servers.
const otherPages = [];
async function openPage(server) {
  const p = await context.newPage();
  const o = { page: p, server, chats: [], foreign: [], errors: [] };
  p.on('request', (r) => {
    const url = r.url();
    if (!url.startsWith(server + '/') && !url.startsWith('data:')) o.foreign.push(url);
    if (r.method() === 'POST' && new URL(url).pathname === '/v1/chat/completions') o.chats.push(JSON.parse(r.postData()));
  });
  p.on('pageerror', (e) => o.errors.push(e.message));
  otherPages.push(o);
  const res = await p.goto(server + '/');
  assert.equal(res.status(), 200);
  await p.waitForSelector('#server-status.ok');
  return o;
}

async function answerDone(p) {
  await p.waitForFunction(() => {
    const all = document.querySelectorAll('#messages .msg.assistant');
    const last = all[all.length - 1];
    return last && ['done', 'error', 'stopped'].includes(last.dataset.state);
  }, null, { timeout: 60_000 });
  const last = p.locator('#messages .msg.assistant').last();
  const state = await last.getAttribute('data-state');
  const error = state === 'error' ? await last.locator('.error-box').innerText() : '';
  assert.equal(state, 'done', `the answer ended as ${state} ${error}`);
  return last;
}

async function sendOn(p, text) {
  await p.fill('#input', text);
  await p.click('#send');
}

test('the model picker offers the router, the local models and the remote endpoint; auto is the default', T, async () => {
  await page.evaluate(() => localStorage.removeItem('slim.lastModel'));
  await page.reload();
  await page.waitForSelector('#server-status.ok');
  await page.click('#new-chat');
  assert.equal(await page.locator('.empty').count(), 1);
  const groups = await page.$$eval('#model optgroup', (gs) => gs.map((g) => ({
    label: g.label, options: [...g.querySelectorAll('option')].map((o) => [o.value, o.textContent]),
  })));
  assert.deepEqual(groups, [
    { label: 'Router', options: [['auto', 'auto (router)']] },
    { label: 'Local models', options: localModels.map((id) => [id, id]) },
    { label: 'Remote endpoints', options: [[remoteName, remoteName + ' (remote)']] },
  ]);
  assert.equal(await page.inputValue('#model'), 'auto', 'a new chat on a hybrid server starts with the router');
  assert.match(await page.locator('.empty').innerText(), new RegExp(`sends what is beyond it to ${remoteName}`));
  assert.match(await page.locator('#server-status').innerText(), new RegExp(`remote: ${remoteName}`));
});

test('auto: the badge says a story was answered locally and a SQL query by cloud, and why', T, async () => {
  await page.selectOption('#model', 'auto');
  const before = await remoteChats();
  await send(STORY);
  const local = assistant();
  await expectDone();
  assert.equal(await remoteChats(), before, 'the story did not reach the remote');
  assert.equal(chatRequests.at(-1).model, 'auto');
  assert.equal(await local.locator('.meta .badge').innerText(), `local · ${storiesModel()}`);
  assert.match(await local.locator('.meta .badge').getAttribute('class'), /\blocal\b/);
  const storyRoute = await routeOf(base, [{ role: 'user', content: STORY }]);
  assert.equal(storyRoute.decision, 'local');
  assert.equal(await local.locator('.route .route-reason').innerText(), 'router: ' + storyRoute.reason);
  assert.equal(await local.locator('.route .route-notice').count(), 0);
  assert.equal(await local.locator('.ask-remote').count(), 0);

  await send(SQL);
  await expectDone();
  assert.equal(await remoteChats(), before + 1, 'the SQL prompt reached the remote, once');
  const body = chatRequests.at(-1);
  assert.equal(body.model, 'auto');
  assert.equal(body.messages.length, 3, 'the whole conversation went');
  assert.deepEqual(body.messages.at(-1), { role: 'user', content: SQL });
  const remote = assistant();
  assert.equal(await remote.locator('.meta .badge').innerText(), `remote · ${remoteName} (${remoteModel})`);
  assert.match(await remote.locator('.meta .badge').getAttribute('class'), /\bremote\b/);
  assert.match(await remote.locator('.meta .tokens').innerText(), /^\d+ tokens?$/);
  const sqlRoute = await routeOf(base, body.messages);
  assert.equal(sqlRoute.decision, 'remote');
  assert.equal(await remote.locator('.route .route-reason').innerText(), 'router: ' + sqlRoute.reason);
  assert.equal(await remote.locator('.route .route-notice').count(), 0);
  // The first answer keeps its own badge.
  assert.equal(await page.locator('#messages .msg.assistant').first().locator('.meta .badge').innerText(),
    `local · ${storiesModel()}`);
  await page.screenshot({ path: path.join(artifacts, 'web-chat-router.png') });

  // Where each answer came from is kept with the conversation.
  await page.reload();
  await page.waitForSelector('#server-status.ok');
  assert.deepEqual(await page.locator('#messages .msg.assistant .meta .badge').allInnerTexts(),
    [`local · ${storiesModel()}`, `remote · ${remoteName} (${remoteModel})`]);
  assert.deepEqual(await page.locator('#messages .msg.assistant .route-reason').allInnerTexts(),
    ['router: ' + storyRoute.reason, 'router: ' + sqlRoute.reason]);
});

test('ask policy: the answer stays local with a notice, and "Ask cloud" resends the conversation there', T, async () => {
  const o = await openPage(askBase);
  const p = o.page;
  assert.equal(await p.inputValue('#model'), 'auto', 'a fresh browser starts with the router');
  const before = await remoteChats();
  await sendOn(p, SQL);
  let answer = await answerDone(p);
  assert.equal(await remoteChats(), before, 'nothing left before the user confirmed');
  assert.equal(await answer.locator('.meta .badge').innerText(), `local · ${storiesModel()}`);
  const notice = answer.locator('.route .route-notice');
  assert.equal(await notice.innerText(), `the router would ask ${remoteName}; the ask policy kept it on this machine`);
  assert.match(await notice.getAttribute('title'), /ask policy/);
  const ask = answer.locator('.route .ask-remote');
  assert.equal(await ask.innerText(), `Ask ${remoteName}`);
  await p.screenshot({ path: path.join(artifacts, 'web-chat-ask.png') });

  await ask.click();
  answer = await answerDone(p);
  assert.equal(await remoteChats(), before + 1, 'the confirmed request reached the remote, once');
  assert.equal(o.chats.length, 2);
  assert.equal(o.chats[1].model, remoteName, 'the resend names the endpoint');
  assert.deepEqual(o.chats[1].messages, o.chats[0].messages, 'the same conversation');
  assert.equal(await p.locator('#messages .msg.assistant').count(), 1, 'the remote answer replaced the local one');
  assert.equal(await answer.locator('.meta .badge').innerText(), `remote · ${remoteName} (${remoteModel})`);
  assert.match(await answer.locator('.route .route-reason').innerText(), new RegExp(`named the endpoint '${remoteName}'`));
  assert.equal(await answer.locator('.route .route-notice').count(), 0);
  assert.equal(await answer.locator('.ask-remote').count(), 0);
  assert.equal(await p.inputValue('#model'), 'auto', 'the conversation stays with the router');
});

test('a failing remote: the local answer says the remote failed', T, async () => {
  const o = await openPage(fallbackBase);
  const p = o.page;
  await p.selectOption('#model', 'auto');
  await sendOn(p, SQL);
  const answer = await answerDone(p);
  assert.equal(await answer.locator('.meta .badge').innerText(), `local · ${storiesModel()}`);
  const notice = answer.locator('.route .route-notice.fallback');
  assert.equal(await notice.innerText(), `${remoteName} failed (http 404) — answered locally`);
  assert.ok((await notice.getAttribute('title')).length > 0, 'the failure message is at hand');
  assert.ok(await notice.isVisible());
  assert.equal(await answer.locator('.ask-remote').count(), 0);
  await p.screenshot({ path: path.join(artifacts, 'web-chat-fallback.png') });
});

test('without a router the picker is a plain list and defaults to the first local model', T, async () => {
  const o = otherPages.at(-1);
  const p = o.page;
  // This server's list as a server without a remote endpoint would give it.
  await p.route('**/v1/models', (route) => route.fulfill({
    contentType: 'application/json',
    body: JSON.stringify({ object: 'list', data: localModels.map((id) => ({ id, object: 'model', owned_by: 'slim' })) }),
  }));
  await p.evaluate(() => localStorage.removeItem('slim.lastModel'));
  await p.click('#new-chat');
  await p.click('#refresh-models');
  await p.waitForFunction((n) => document.querySelectorAll('#model option').length === n, localModels.length);
  assert.equal(await p.locator('#model optgroup').count(), 0);
  assert.equal(await p.inputValue('#model'), localModels[0]);
  assert.match(await p.locator('.empty').innerText(), /running on this machine/);
  await p.unroute('**/v1/models');
});

test('the page used only the server it came from and raised no errors', T, async () => {
  assert.deepEqual(foreignRequests, []);
  assert.deepEqual(pageErrors, []);
  assert.equal(otherPages.length, 2);
  for (const o of otherPages) {
    assert.deepEqual(o.foreign, [], o.server);
    assert.deepEqual(o.errors, [], o.server);
  }
});
