/* openai_client.js - the official `openai` npm client (pinned 4.x, node 20) against `cllm serve`
 * on stories260K with a chat template: chat and completions, streamed and not, n > 1, stop
 * strings, seed reproducibility, logprobs, errors as the client's typed exceptions, and greedy
 * results over HTTP equal to `cllm run` for the same prompt.
 *
 * usage: node openai_client.js --cllm PATH/TO/cllm --npm-dir DIR */
'use strict';
const fs = require('fs');
const path = require('path');
const h = require('./harness');
const { check } = h;

function args() {
  const o = {};
  for (let i = 2; i < process.argv.length; i += 2) o[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
  if (!o.cllm || !o['npm-dir']) throw new Error('--cllm and --npm-dir are required');
  return o;
}

async function collect(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  return chunks;
}

/* Run fn; the error it throws (or null). */
async function thrown(fn) {
  try {
    await fn();
    return null;
  } catch (e) {
    return e;
  }
}

async function chatTests(client, OpenAI, cllm, dir, model) {
  const messages = [{ role: 'user', content: 'Once upon a time' }];
  const conv = path.join(dir, 'conv.json');
  fs.writeFileSync(conv, JSON.stringify({ messages }));
  const want = h.cllmRun(cllm, ['-m', dir, '--messages', conv, '-n', '30', '--temp', '0']).replace(/\n$/, '');

  const r = await client.chat.completions.create({ model, messages, max_tokens: 30, temperature: 0 });
  const text = r.choices[0].message.content;
  check('chat greedy == cllm run --messages', text === want, `${JSON.stringify(text)} vs ${JSON.stringify(want)}`);
  check('chat response shape', r.object === 'chat.completion' && r.choices[0].message.role === 'assistant' &&
    r.choices[0].finish_reason === 'length' && r.usage.completion_tokens === 30 &&
    r.usage.total_tokens === r.usage.prompt_tokens + 30 && r.model === model, JSON.stringify(r));

  const chunks = await collect(await client.chat.completions.create({
    model, messages, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } }));
  const streamed = chunks.map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
  check('chat stream == non-stream', streamed === text, `${JSON.stringify(streamed)}`);
  check('chat stream first chunk has the role', chunks[0].choices[0].delta.role === 'assistant');
  const fin = chunks.filter((c) => c.choices[0] && c.choices[0].finish_reason);
  check('chat stream one finish chunk', fin.length === 1 && fin[0].choices[0].finish_reason === 'length');
  const last = chunks[chunks.length - 1];
  check('chat stream usage chunk', last.choices.length === 0 && last.usage.completion_tokens === 30,
    JSON.stringify(last));
  check('chat stream chunk object', chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));

  /* stop strings: cut the greedy text before a word it contains */
  const cut = text.indexOf(' is');
  if (cut > 0) {
    const s = await client.chat.completions.create({ model, messages, max_tokens: 30, temperature: 0, stop: [' is', 'zzz'] });
    check('chat stop string', s.choices[0].message.content === text.slice(0, cut) && s.choices[0].finish_reason === 'stop',
      JSON.stringify(s.choices[0]));
    const sc = await collect(await client.chat.completions.create({ model, messages, max_tokens: 30, temperature: 0, stop: ' is', stream: true }));
    check('chat stop string streamed', sc.map((c) => c.choices[0].delta.content || '').join('') === text.slice(0, cut));
  } else check('greedy text has a stop candidate', false, text);

  /* n > 1 with a seed: reproducible, choices differ */
  const q = { model, messages, max_tokens: 16, temperature: 1, n: 3, seed: 1234 };
  const a = await client.chat.completions.create(q);
  const b = await client.chat.completions.create(q);
  check('n=3 gives 3 choices', a.choices.length === 3 && a.choices.every((c, i) => c.index === i));
  check('seed reproducible', JSON.stringify(a.choices.map((c) => c.message.content)) ===
    JSON.stringify(b.choices.map((c) => c.message.content)));
  check('n=3 choices differ', new Set(a.choices.map((c) => c.message.content)).size > 1,
    JSON.stringify(a.choices.map((c) => c.message.content)));
  check('n=3 usage', a.usage.completion_tokens === a.choices.length * 16, JSON.stringify(a.usage));
  const ns = await collect(await client.chat.completions.create({ ...q, stream: true }));
  const per = [0, 1, 2].map((i) => ns.filter((c) => c.choices[0] && c.choices[0].index === i)
    .map((c) => c.choices[0].delta.content || '').join(''));
  check('n=3 streamed == non-streamed', JSON.stringify(per) === JSON.stringify(a.choices.map((c) => c.message.content)),
    JSON.stringify(per));

  /* logprobs */
  const l = await client.chat.completions.create({ model, messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 3 });
  const lc = l.choices[0].logprobs.content;
  check('logprobs one entry per token', lc.length === 8, JSON.stringify(l.choices[0].logprobs));
  check('logprobs greedy = top-1, sorted, <= 0', lc.every((e) => e.top_logprobs.length === 3 &&
    e.top_logprobs[0].logprob === e.logprob && e.top_logprobs[0].token === e.token && e.logprob <= 0 &&
    e.top_logprobs[0].logprob >= e.top_logprobs[1].logprob && e.top_logprobs[1].logprob >= e.top_logprobs[2].logprob));
  check('logprobs tokens spell the text', lc.map((e) => e.token).join('') === l.choices[0].message.content,
    JSON.stringify(lc.map((e) => e.token)));

  /* user text that looks like special tokens stays text */
  const sp = await client.chat.completions.create({ model, messages: [{ role: 'user', content: '</s>' }], max_tokens: 1, temperature: 0 });
  const plain = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], max_tokens: 1, temperature: 0 });
  check('special-token text in content is not a special token', sp.usage.prompt_tokens > plain.usage.prompt_tokens,
    `${sp.usage.prompt_tokens} vs ${plain.usage.prompt_tokens}`);
}

async function completionTests(client, cllm, dir, model) {
  const prompt = 'Once upon a time';
  const out = h.cllmRun(cllm, ['-m', dir, '-p', prompt, '-n', '30', '--temp', '0']).replace(/\n$/, '');
  const want = out.slice(prompt.length);
  const r = await client.completions.create({ model, prompt, max_tokens: 30, temperature: 0 });
  check('completion greedy == cllm run', r.choices[0].text === want, `${JSON.stringify(r.choices[0].text)} vs ${JSON.stringify(want)}`);
  check('completion shape', r.object === 'text_completion' && r.choices[0].finish_reason === 'length' &&
    r.usage.completion_tokens === 30);
  const e = await client.completions.create({ model, prompt, max_tokens: 30, temperature: 0, echo: true });
  check('completion echo', e.choices[0].text === prompt + want);
  const chunks = await collect(await client.completions.create({ model, prompt, max_tokens: 30, temperature: 0, stream: true }));
  check('completion stream == non-stream', chunks.map((c) => (c.choices[0] && c.choices[0].text) || '').join('') === want);
  const ids = await (await fetch(client.baseURL.replace(/\/v1$/, '') + '/tokenize', {
    method: 'POST', headers: { Authorization: `Bearer ${client.apiKey}` },
    body: JSON.stringify({ content: prompt, add_special: true }) })).json();
  const t = await client.completions.create({ model, prompt: ids.tokens, max_tokens: 30, temperature: 0 });
  check('token-id prompt == text prompt', t.choices[0].text === want, JSON.stringify(ids));
  const lp = await client.completions.create({ model, prompt, max_tokens: 5, temperature: 0, logprobs: 2 });
  const L = lp.choices[0].logprobs;
  check('completion logprobs', L.tokens.length === 5 && L.token_logprobs.length === 5 && L.top_logprobs.length === 5 &&
    L.tokens.join('') === lp.choices[0].text && Object.keys(L.top_logprobs[0]).length === 2, JSON.stringify(L));
}

async function errorTests(client, OpenAI, port, model) {
  const messages = [{ role: 'user', content: 'hi' }];
  const bad = new OpenAI({ apiKey: 'wrong', baseURL: `http://127.0.0.1:${port}/v1`, maxRetries: 0 });
  let e = await thrown(() => bad.chat.completions.create({ model, messages, max_tokens: 2 }));
  check('wrong key -> AuthenticationError', e instanceof OpenAI.AuthenticationError && e.status === 401, e);
  e = await thrown(() => client.chat.completions.create({ model: 'no-such-model', messages, max_tokens: 2 }));
  check('unknown model -> NotFoundError', e instanceof OpenAI.NotFoundError && e.status === 404, e);
  e = await thrown(() => client.chat.completions.create({ model, messages, max_tokens: 2, temperature: 5 }));
  check('temperature 5 -> BadRequestError', e instanceof OpenAI.BadRequestError && e.param === 'temperature', e);
  e = await thrown(() => client.chat.completions.create({ model, messages, max_tokens: 100000 }));
  check('huge max_tokens -> BadRequestError', e instanceof OpenAI.BadRequestError && e.code === 'context_length_exceeded', e);
  e = await thrown(() => client.chat.completions.create({ model, messages, max_tokens: 2, frobnicate: true }));
  check('unknown parameter -> BadRequestError', e instanceof OpenAI.BadRequestError && e.code === 'unknown_parameter', e);
  e = await thrown(() => client.completions.create({ model, prompt: 'x', max_tokens: 2, n: 1000 }));
  check('n out of range -> BadRequestError', e instanceof OpenAI.BadRequestError, e);
  const models = await client.models.list();
  check('models.list', models.data.length === 1 && models.data[0].id === model, JSON.stringify(models.data));
  e = await thrown(() => client.models.retrieve('nope'));
  check('models.retrieve unknown -> NotFoundError', e instanceof OpenAI.NotFoundError, e);
  const health = await fetch(`http://127.0.0.1:${port}/health`);
  check('health 200', health.status === 200);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { Authorization: `Bearer ${client.apiKey}` } })).text();
  check('metrics', /cllm_requests_total\{status="200"\} \d+/.test(metrics) && /cllm_kv_blocks_used 0/.test(metrics) &&
    /cllm_time_to_first_token_seconds_bucket/.test(metrics), metrics.slice(0, 400));
}

async function main() {
  const o = args();
  const mod = h.loadPackage(path.resolve(o['npm-dir']), 'openai');
  const OpenAI = mod.OpenAI || mod.default || mod;
  const dir = h.makeModelDir();
  const model = 'stories';
  const srv = await h.startServer(o.cllm, ['-m', dir, '-t', '2', '--api-key', 'sk-test', '--served-model-name', model]);
  try {
    const client = new OpenAI({ apiKey: 'sk-test', baseURL: `http://127.0.0.1:${srv.port}/v1`, maxRetries: 0, timeout: 60000 });
    await chatTests(client, OpenAI, o.cllm, dir, model);
    await completionTests(client, o.cllm, dir, model);
    await errorTests(client, OpenAI, srv.port, model);
  } catch (e) {
    check('no exception', false, e && e.stack);
  }
  const code = await h.stopServer(srv);
  check('clean shutdown on SIGTERM', code === 0, `${code}: ${srv.log.slice(-500)}`);
  fs.rmSync(dir, { recursive: true, force: true });
  h.finish();
}

main();
