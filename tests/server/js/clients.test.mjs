// Real, unmodified clients against `slim serve`: the official `openai` npm
// package and the `ollama` npm package (versions pinned in package-lock.json).
// Run through run.sh, which starts the server with stories260K and a
// synthetic model and sets SLIM_BASE_URL.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import { Ollama } from 'ollama';

const base = process.env.SLIM_BASE_URL;
assert.ok(base && /^http:\/\/127\.0\.0\.1:\d+$/.test(base), 'SLIM_BASE_URL must be http://127.0.0.1:PORT (use run.sh)');
const modelFiles = (process.env.SLIM_MODEL_FILES || '').split(':').filter(Boolean);

const openai = new OpenAI({ baseURL: base + '/v1', apiKey: 'sk-local-test', maxRetries: 0, timeout: 60_000 });
const ollama = new Ollama({ host: base });
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

// The model ids the server announces, read through the SDK itself.
const listed = [];
for await (const m of openai.models.list()) listed.push(m);
const ids = listed.map((m) => m.id);

describe('models', () => {
  test('openai: models.list() shows every --model the server was started with', T, async () => {
    assert.equal(listed.length, modelFiles.length, `ids: ${ids.join(', ')}`);
    for (const m of listed) {
      assert.equal(typeof m.id, 'string');
      assert.ok(m.id.length > 0);
      assert.equal(m.object, 'model');
    }
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
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
    const { models } = await ollama.list();
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
