// Real, unmodified clients against `slim serve`: the official `openai` npm
// package and the `ollama` npm package (versions pinned in package-lock.json).
// Run through run.sh, which starts the server with stories260K and a
// synthetic model and sets SLIM_BASE_URL.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';

const base = process.env.SLIM_BASE_URL;
assert.ok(base && /^http:\/\/127\.0\.0\.1:\d+$/.test(base), 'SLIM_BASE_URL must be http://127.0.0.1:PORT (use run.sh)');
const modelFiles = (process.env.SLIM_MODEL_FILES || '').split(':').filter(Boolean);

const openai = new OpenAI({ baseURL: base + '/v1', apiKey: 'sk-local-test', maxRetries: 0, timeout: 60_000 });
const ollama = new Ollama({ host: base });
// The hybrid router's remote endpoint: another `slim serve` that run.sh starts
// and names `cloud` on the server under test.
const remoteBase = process.env.SLIM_REMOTE_URL;
const remoteModel = process.env.SLIM_REMOTE_MODEL;
const remoteName = process.env.SLIM_REMOTE_NAME || 'cloud';
const auditLog = process.env.SLIM_AUDIT_LOG;
assert.ok(remoteBase && /^http:\/\/127\.0\.0\.1:\d+$/.test(remoteBase), 'SLIM_REMOTE_URL must be http://127.0.0.1:PORT (use run.sh)');
assert.ok(remoteModel, 'SLIM_REMOTE_MODEL is the model the remote serves (use run.sh)');
const remote = new OpenAI({ baseURL: remoteBase + '/v1', apiKey: 'sk-remote-test', maxRetries: 0, timeout: 60_000 });
const T = { timeout: 120_000 };
const PROMPT = [{ role: 'user', content: 'Once upon a time there was a little girl. What did she do?' }];
const GREEDY = { temperature: 0, seed: 42 };

function cosine(a, b) {
  let dot = 0; let na = 0; let nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}
function assertVector(v, dim) {
  assert.ok(Array.isArray(v) || v instanceof Float32Array, 'embedding is an array');
  if (dim !== undefined) assert.equal(v.length, dim);
  assert.ok(v.length > 0);
  assert.ok(Array.from(v).every((x) => typeof x === 'number' && Number.isFinite(x)), 'finite numbers');
  assert.ok(Array.from(v).some((x) => x !== 0), 'not all zero');
}

// The model ids the server announces, read through the SDK itself. A hybrid
// server (run.sh starts one) lists the router `auto` and its remote endpoints
// after the local models; the per-model tests below are for the local ones.
const listed = [];
for await (const m of openai.models.list()) listed.push(m);
const isRouted = (m) => m.owned_by === 'slim-router' || m.owned_by === 'remote';
const localListed = listed.filter((m) => !isRouted(m));
const ids = localListed.map((m) => m.id);

describe('models', () => {
  test('openai: models.list() shows every --model the server was started with', T, async () => {
    assert.equal(localListed.length, modelFiles.length, `ids: ${ids.join(', ')}`);
    for (const m of listed) {
      assert.equal(typeof m.id, 'string');
      assert.ok(m.id.length > 0);
      assert.equal(m.object, 'model');
    }
    assert.equal(new Set(listed.map((m) => m.id)).size, listed.length, 'ids are unique');
    // Each served file is recognisable in the list.
    for (const f of modelFiles) {
      const stem = path.basename(f).replace(/\.gguf$/i, '');
      assert.ok(ids.some((id) => id.includes(stem) || stem.includes(id)), `${stem} in ${ids.join(', ')}`);
    }
  });

  test('openai: models.retrieve() returns one model', T, async () => {
    const m = await openai.models.retrieve(ids[0]);
    assert.equal(m.id, ids[0]);
    assert.equal(m.object, 'model');
  });

  test('ollama: list() shows the same models', T, async () => {
    const models = (await ollama.list()).models.filter((m) => !['router', 'remote'].includes(m.details?.format));
    assert.equal(models.length, ids.length);
    for (const m of models) {
      assert.equal(typeof m.name, 'string');
      const name = m.name.replace(/:latest$/, '');
      assert.ok(ids.includes(name) || ids.includes(m.name), `${m.name} in ${ids.join(', ')}`);
    }
  });

  test('unknown models are errors, not answers', T, async () => {
    await assert.rejects(
      openai.chat.completions.create({ model: 'no-such-model', messages: PROMPT, max_tokens: 4 }),
      (e) => e instanceof OpenAI.APIError && (e.status === 404 || e.status === 400));
    await assert.rejects(
      ollama.chat({ model: 'no-such-model', messages: PROMPT, options: { num_predict: 4 } }),
      (e) => e.status_code === 404 || e.status_code === 400);
  });
});

for (const model of ids) {
  describe(`model ${model}`, () => {
    let chatText = null; // greedy answer of the non-streamed OpenAI chat, reused below

    test('openai: chat.completions.create', T, async () => {
      const r = await openai.chat.completions.create({ model, messages: PROMPT, max_tokens: 24, ...GREEDY });
      assert.equal(r.object, 'chat.completion');
      assert.equal(typeof r.id, 'string');
      assert.equal(r.model, model);
      assert.equal(r.choices.length, 1);
      const c = r.choices[0];
      assert.equal(c.index, 0);
      assert.equal(c.message.role, 'assistant');
      assert.equal(typeof c.message.content, 'string');
      assert.ok(c.message.content.length > 0, 'non-empty answer');
      assert.ok(['stop', 'length'].includes(c.finish_reason), c.finish_reason);
      assert.ok(r.usage.prompt_tokens > 0);
      assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 24, `${r.usage.completion_tokens}`);
      if (c.finish_reason === 'length') assert.equal(r.usage.completion_tokens, 24);
      assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
      chatText = c.message.content;

      // Greedy decoding is deterministic.
      const again = await openai.chat.completions.create({ model, messages: PROMPT, max_tokens: 24, ...GREEDY });
      assert.equal(again.choices[0].message.content, chatText);

      // max_tokens bounds the answer.
      const short = await openai.chat.completions.create({ model, messages: PROMPT, max_tokens: 3, ...GREEDY });
      assert.ok(short.usage.completion_tokens <= 3);
      // A cut answer may end inside a UTF-8 sequence; compare what is complete.
      const shortText = short.choices[0].message.content.replace(/\uFFFD+$/, '');
      assert.ok(chatText.startsWith(shortText), 'a shorter greedy answer is a prefix');
    });

    test('openai: streaming chat with usage', T, async () => {
      const stream = await openai.chat.completions.create({
        model, messages: PROMPT, max_tokens: 24, ...GREEDY, stream: true, stream_options: { include_usage: true },
      });
      let text = '';
      let chunks = 0;
      let finish = null;
      let usage = null;
      let role = null;
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'chat.completion.chunk');
        assert.equal(chunk.model, model);
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
          if (c.delta.role) role = c.delta.role;
          if (c.delta.content) { text += c.delta.content; chunks++; }
          if (c.finish_reason) finish = c.finish_reason;
        }
      }
      assert.equal(role, 'assistant');
      assert.ok(chunks >= 1);
      assert.ok(['stop', 'length'].includes(finish), String(finish));
      assert.ok(usage, 'a usage chunk was sent (stream_options.include_usage)');
      assert.ok(usage.completion_tokens >= chunks - 1 && usage.completion_tokens <= 24);
      if (chatText !== null) assert.equal(text, chatText, 'streamed and non-streamed greedy answers agree');
    });

    test('openai: aborting a stream leaves the server serving', T, async () => {
      const stream = await openai.chat.completions.create({
        model, messages: PROMPT, max_tokens: 1500, temperature: 0.8, stream: true,
      });
      let n = 0;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta?.content) n++;
        if (n >= 2) break; // breaking out of the loop aborts the request
      }
      const r = await openai.chat.completions.create({ model, messages: PROMPT, max_tokens: 4, ...GREEDY });
      assert.ok(r.choices[0].message.content.length > 0);
      const health = await fetch(base + '/health');
      assert.equal(health.status, 200);
    });

    test('openai: completions.create, plain and streamed', T, async () => {
      const prompt = 'Once upon a time, there was a';
      const r = await openai.completions.create({ model, prompt, max_tokens: 16, ...GREEDY });
      assert.equal(r.object, 'text_completion');
      assert.equal(r.model, model);
      assert.equal(r.choices.length, 1);
      assert.equal(typeof r.choices[0].text, 'string');
      assert.ok(r.choices[0].text.length > 0);
      assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
      assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 16);

      const stream = await openai.completions.create({ model, prompt, max_tokens: 16, ...GREEDY, stream: true });
      let text = '';
      for await (const chunk of stream) {
        assert.equal(chunk.object, 'text_completion');
        text += chunk.choices[0]?.text || '';
      }
      assert.equal(text, r.choices[0].text, 'streamed and plain greedy completions agree');
    });

    test('openai: embeddings, base64 (the SDK default) and float', T, async () => {
      const input = ['The cat sat on the mat.', 'A rocket flew to the moon.'];
      const b64 = await openai.embeddings.create({ model, input }); // SDK asks for base64 and decodes it
      assert.equal(b64.object, 'list');
      assert.equal(b64.data.length, 2);
      const dim = b64.data[0].embedding.length;
      b64.data.forEach((d, i) => {
        assert.equal(d.object, 'embedding');
        assert.equal(d.index, i);
        assertVector(d.embedding, dim);
      });
      assert.ok(b64.usage.prompt_tokens > 0);
      assert.ok(cosine(b64.data[0].embedding, b64.data[1].embedding) < 0.999999, 'different texts, different vectors');

      const flt = await openai.embeddings.create({ model, input, encoding_format: 'float' });
      assert.equal(flt.data.length, 2);
      for (let i = 0; i < 2; i++) {
        assertVector(flt.data[i].embedding, dim);
        assert.ok(cosine(flt.data[i].embedding, b64.data[i].embedding) > 0.9999, 'float and base64 agree');
      }
      const one = await openai.embeddings.create({ model, input: input[0], encoding_format: 'float' });
      assert.equal(one.data.length, 1);
      assert.ok(cosine(one.data[0].embedding, flt.data[0].embedding) > 0.9999, 'same text, same vector');
    });

    test('ollama: chat', T, async () => {
      const r = await ollama.chat({ model, messages: PROMPT, options: { num_predict: 24, ...GREEDY } });
      assert.equal(r.done, true);
      assert.equal(r.message.role, 'assistant');
      assert.equal(typeof r.message.content, 'string');
      assert.ok(r.message.content.length > 0);
      assert.ok(r.eval_count >= 1 && r.eval_count <= 24, String(r.eval_count));
      assert.ok(['stop', 'length'].includes(r.done_reason), String(r.done_reason));
      if (chatText !== null) assert.equal(r.message.content, chatText, 'Ollama and OpenAI APIs give the same greedy answer');
    });

    test('ollama: streaming chat', T, async () => {
      const plain = await ollama.chat({ model, messages: PROMPT, options: { num_predict: 24, ...GREEDY } });
      const stream = await ollama.chat({ model, messages: PROMPT, options: { num_predict: 24, ...GREEDY }, stream: true });
      let text = '';
      let parts = 0;
      let last = null;
      for await (const part of stream) {
        assert.equal(last?.done ?? false, false, 'nothing after done');
        text += part.message?.content || '';
        parts++;
        last = part;
      }
      assert.ok(parts >= 2, 'several parts');
      assert.equal(last.done, true);
      assert.ok(last.eval_count >= 1 && last.eval_count <= 24);
      assert.equal(text, plain.message.content, 'streamed and plain greedy answers agree');
    });

    test('ollama: generate, plain and streamed', T, async () => {
      const prompt = 'Once upon a time, there was a';
      const r = await ollama.generate({ model, prompt, raw: true, options: { num_predict: 16, ...GREEDY } });
      assert.equal(r.done, true);
      assert.equal(typeof r.response, 'string');
      assert.ok(r.response.length > 0);
      assert.ok(r.eval_count >= 1 && r.eval_count <= 16);
      let text = '';
      let last = null;
      for await (const part of await ollama.generate({ model, prompt, raw: true, stream: true, options: { num_predict: 16, ...GREEDY } })) {
        text += part.response || '';
        last = part;
      }
      assert.equal(last.done, true);
      assert.equal(text, r.response);
      // raw generate and the OpenAI completions endpoint both continue the bare prompt.
      const c = await openai.completions.create({ model, prompt, max_tokens: 16, ...GREEDY });
      assert.equal(r.response, c.choices[0].text);
    });

    test('ollama: embed', T, async () => {
      const input = ['The cat sat on the mat.', 'A rocket flew to the moon.'];
      const r = await ollama.embed({ model, input });
      assert.equal(r.embeddings.length, 2);
      const dim = r.embeddings[0].length;
      r.embeddings.forEach((e) => assertVector(e, dim));
      assert.ok(cosine(r.embeddings[0], r.embeddings[1]) < 0.999999);
      const o = await openai.embeddings.create({ model, input, encoding_format: 'float' });
      assert.equal(o.data[0].embedding.length, dim, 'same dimension as the OpenAI endpoint');
      for (let i = 0; i < 2; i++) {
        assert.ok(cosine(r.embeddings[i], o.data[i].embedding) > 0.9999, 'same direction as the OpenAI endpoint');
      }
    });
  });
}

// ---------------------------------------------------------------- the hybrid router

// A counter of a Prometheus text exposition (0 when absent).
async function metric(url, line) {
  const text = await (await fetch(url + '/metrics')).text();
  for (const l of text.split('\n')) {
    if (l.startsWith(line + ' ')) return Number(l.slice(line.length + 1));
  }
  return 0;
}
const REMOTE_CHAT_200 = 'slim_requests_total{route="/v1/chat/completions",status="200"}';
const ROUTED_REMOTE = 'slim_route_requests_total{outcome="remote"}';
const remoteChatsBefore = await metric(remoteBase, REMOTE_CHAT_200);
const routedRemoteBefore = await metric(base, ROUTED_REMOTE);
const remoteRequests = { escalated: 0, direct: 0 }; // what this file sent to the remote, by way
const escalatedIds = [];                           // ids of the escalated OpenAI answers

const STORY = [{ role: 'user', content: 'Once there was a little girl who loved to play.' }];
const SQL = [{ role: 'user', content: 'Write a SQL query that joins orders with customers on customer_id.' }];
const MATHS = [{ role: 'user', content: 'What is the integral of x^2 from 0 to 3? Show the steps.' }];

// What the remote model alone answers (asked directly, not through the router).
async function remoteAlone(messages, maxTokens) {
  remoteRequests.direct++;
  const r = await remote.chat.completions.create({ model: remoteModel, messages, max_tokens: maxTokens, ...GREEDY });
  assert.equal(r.x_slim?.backend, 'local', 'the remote server answered with its own model');
  return r.choices[0].message.content;
}

function assertLocalRoute(x, what) {
  assert.equal(x?.backend, 'local', `${what}: x_slim ${JSON.stringify(x)}`);
  assert.equal(x.model, ids[0], `${what}: the router answers locally with the default (first) model`);
  assert.equal(x.endpoint, undefined);
  assert.equal(x.route?.decision, 'local', `${what}: route ${JSON.stringify(x.route)}`);
  assert.equal(x.route.policy, 'auto');
  assert.equal(typeof x.route.reason, 'string');
  assert.ok(x.route.reason.length > 0);
  assert.ok(x.route.signals.prompt_tokens > 0);
  assert.equal(typeof x.route.signals.nll_mean, 'number');
  assert.equal(x.route.kept_local, undefined, 'nothing kept it local against the signals');
  assert.equal(x.route.fallback, undefined, 'no remote failed');
}
function assertRemoteRoute(x, what) {
  assert.equal(x?.backend, 'remote', `${what}: x_slim ${JSON.stringify(x)}`);
  assert.equal(x.endpoint, remoteName);
  assert.equal(x.model, remoteModel);
  assert.equal(x.route?.decision, 'remote', `${what}: route ${JSON.stringify(x.route)}`);
  assert.equal(x.route.policy, 'auto');
  assert.ok(x.route.reason.length > 0);
  assert.ok(x.route.signals.prompt_tokens > 0);
  assert.equal(x.route.fallback, undefined, 'the remote did not fail');
}

describe('hybrid router (model auto)', () => {
  test('openai and ollama list auto and the remote endpoint after the local models', T, async () => {
    assert.deepEqual(listed.map((m) => m.id), [...ids, 'auto', remoteName]);
    assert.deepEqual(listed.slice(-2).map((m) => m.owned_by), ['slim-router', 'remote']);
    const auto = await openai.models.retrieve('auto');
    assert.equal(auto.owned_by, 'slim-router');
    const { models } = await ollama.list();
    assert.deepEqual(models.map((m) => m.name.replace(/:latest$/, '')), [...ids, 'auto', remoteName]);
    assert.deepEqual(models.slice(-2).map((m) => m.details.format), ['router', 'remote']);
  });

  test('openai: a story prompt stays local', T, async () => {
    const { data: r, response } = await openai.chat.completions
      .create({ model: 'auto', messages: STORY, max_tokens: 24, ...GREEDY }).withResponse();
    assert.equal(response.headers.get('x-slim-backend'), 'local');
    assertLocalRoute(r.x_slim, 'auto, story');
    assert.equal(r.model, ids[0]);
    assert.ok(r.choices[0].message.content.length > 0);
    // The same answer as the local model asked by name, which has no route.
    const direct = await openai.chat.completions.create({ model: ids[0], messages: STORY, max_tokens: 24, ...GREEDY });
    assert.equal(r.choices[0].message.content, direct.choices[0].message.content);
    assert.deepEqual(direct.x_slim, { backend: 'local', model: ids[0] });
  });

  test('openai: a story prompt stays local, streamed', T, async () => {
    const { data: stream, response } = await openai.chat.completions
      .create({ model: 'auto', messages: STORY, max_tokens: 24, ...GREEDY, stream: true }).withResponse();
    assert.equal(response.headers.get('x-slim-backend'), 'local');
    let n = 0;
    for await (const chunk of stream) {
      assertLocalRoute(chunk.x_slim, `chunk ${n}`);
      n++;
    }
    assert.ok(n >= 2);
  });

  let sqlRemote = null; // the remote model's own greedy answer to SQL

  test('openai: a SQL prompt goes to cloud and is the remote model\'s own answer', T, async () => {
    const { data: r, response } = await openai.chat.completions
      .create({ model: 'auto', messages: SQL, max_tokens: 24, ...GREEDY }).withResponse();
    assert.equal(response.headers.get('x-slim-backend'), 'remote');
    assertRemoteRoute(r.x_slim, 'auto, SQL');
    remoteRequests.escalated++;
    escalatedIds.push(r.id);
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, remoteName);
    assert.ok(r.usage.completion_tokens >= 1 && r.usage.completion_tokens <= 24);
    sqlRemote = await remoteAlone(SQL, 24);
    assert.ok(sqlRemote.length > 0);
    assert.equal(r.choices[0].message.content, sqlRemote, 'the routed answer is the remote model\'s');
    // ... and not what a local model would have said (the comparison tells them apart).
    for (const id of ids) {
      const local = await openai.chat.completions.create({ model: id, messages: SQL, max_tokens: 24, ...GREEDY });
      assert.notEqual(local.choices[0].message.content, sqlRemote, `${id} answers differently`);
    }
  });

  test('openai: a SQL prompt goes to cloud, streamed; every chunk says so', T, async () => {
    const { data: stream, response } = await openai.chat.completions.create({
      model: 'auto', messages: SQL, max_tokens: 24, ...GREEDY, stream: true, stream_options: { include_usage: true },
    }).withResponse();
    assert.equal(response.headers.get('x-slim-backend'), 'remote');
    assert.match(response.headers.get('content-type'), /text\/event-stream/);
    remoteRequests.escalated++;
    let text = '';
    let chunks = 0;
    let usage = null;
    let finish = null;
    const chunkIds = new Set();
    for await (const chunk of stream) {
      assertRemoteRoute(chunk.x_slim, `chunk ${chunks}`);
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.model, remoteName);
      chunkIds.add(chunk.id);
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices) {
        if (c.delta.content) text += c.delta.content;
        if (c.finish_reason) finish = c.finish_reason;
      }
      chunks++;
    }
    assert.ok(chunks >= 3, `${chunks} chunks`);
    assert.equal(chunkIds.size, 1, 'one id for the whole stream');
    escalatedIds.push([...chunkIds][0]);
    assert.ok(['stop', 'length'].includes(finish), String(finish));
    assert.ok(usage && usage.completion_tokens >= 1 && usage.completion_tokens <= 24, 'usage passed on');
    const alone = sqlRemote ?? await remoteAlone(SQL, 24);
    assert.equal(text, alone, 'the streamed answer is the remote model\'s');
  });

  test('openai: naming the endpoint sends the request there', T, async () => {
    const { data: r, response } = await openai.chat.completions
      .create({ model: remoteName, messages: STORY, max_tokens: 12, ...GREEDY }).withResponse();
    assert.equal(response.headers.get('x-slim-backend'), 'remote');
    remoteRequests.escalated++;
    escalatedIds.push(r.id);
    assert.equal(r.x_slim.backend, 'remote');
    assert.equal(r.x_slim.endpoint, remoteName);
    assert.equal(r.x_slim.route.decision, 'remote');
    assert.equal(r.choices[0].message.content, await remoteAlone(STORY, 12));
  });

  test('ollama: auto chat, plain and streamed, says which backend answered', T, async () => {
    const options = { num_predict: 16, ...GREEDY };
    // Maths goes to cloud.
    const r = await ollama.chat({ model: 'auto', messages: MATHS, options });
    remoteRequests.escalated++;
    assertRemoteRoute(r.x_slim, 'ollama, maths');
    assert.equal(r.done, true);
    assert.equal(r.model, remoteName);
    const alone = await remoteAlone(MATHS, 16);
    assert.equal(r.message.content, alone, 'the routed answer is the remote model\'s');
    let text = '';
    let last = null;
    for await (const part of await ollama.chat({ model: 'auto', messages: MATHS, options, stream: true })) {
      assert.equal(last?.done ?? false, false, 'nothing after done');
      text += part.message?.content || '';
      last = part;
    }
    remoteRequests.escalated++;
    assert.equal(last.done, true);
    assertRemoteRoute(last.x_slim, 'ollama stream, maths');
    assert.equal(text, alone);

    // A story stays local.
    const s = await ollama.chat({ model: 'auto', messages: STORY, options });
    assertLocalRoute(s.x_slim, 'ollama, story');
    assert.equal(s.model, ids[0]);
    let storyText = '';
    last = null;
    for await (const part of await ollama.chat({ model: 'auto', messages: STORY, options, stream: true })) {
      storyText += part.message?.content || '';
      last = part;
    }
    assert.equal(last.done, true);
    assertLocalRoute(last.x_slim, 'ollama stream, story');
    assert.equal(storyText, s.message.content);
  });

  test('the remote received exactly the escalated requests, and the audit log has each', T, async () => {
    assert.equal(remoteRequests.escalated, 5, 'the five escalations above ran');
    const received = await metric(remoteBase, REMOTE_CHAT_200) - remoteChatsBefore;
    assert.equal(received, remoteRequests.escalated + remoteRequests.direct,
      `the remote counted ${received} chat requests; ${remoteRequests.escalated} escalated + ${remoteRequests.direct} asked directly`);
    assert.equal(await metric(base, ROUTED_REMOTE) - routedRemoteBefore, remoteRequests.escalated);
    if (auditLog) {
      const entries = readFileSync(auditLog, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
      assert.equal(entries.length, remoteRequests.escalated, 'one audit entry per escalation');
      for (const e of entries) {
        assert.equal(e.endpoint, remoteName);
        assert.equal(e.model, remoteModel);
        assert.equal(e.url, remoteBase + '/v1/chat/completions');
        assert.ok(e.bytes_sent > 0);
      }
      const audited = new Set(entries.map((e) => e.request_id));
      for (const id of escalatedIds) assert.ok(audited.has(id), `the answer ${id} is in the audit log`);
      assert.deepEqual(entries.filter((e) => e.decision === 'explicit').length, 1, 'one request named the endpoint');
    }
  });
});
