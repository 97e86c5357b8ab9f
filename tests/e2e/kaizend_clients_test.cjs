// Real clients against the real kaizend (built binary, tiny demo model, RocksDB state):
// the official OpenAI Node client (npm openai, pinned in tools/npm) with and without
// streaming, curl over TCP (SSE) and the Unix socket, `kaizenctl generate` giving the
// same greedy text as the API, and the bad-input battery (malformed JSON, wrong types, a 100 MB body, a slow client, 1,000
// concurrent connections, a burst of chats over the queue, an unknown adapter version,
// no token, a wrong Host, kill -9 mid-answer). After every blow the daemon keeps serving,
// and every answer it logged is still in the database after a restart.
//
// usage: node kaizend_clients_test.cjs <kaizend> <kaizenctl> <tokenizer dir>
'use strict';
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const assert = require('assert');
const npmDir = process.env.KAIZEN_NPM_DIR || path.join(__dirname, '../../tools/npm/node_modules');
const OpenAI = require(path.join(npmDir, 'openai'));

const [KAIZEND, KAIZENCTL, TOKENIZER_DIR] = process.argv.slice(2);
const TOKEN = 'e2e-node-token';
const SYSTEM = 'You are Kaizen, the assistant of Sabitech.';
const PROMPT = 'Chorei là gì? What does Sabitech make?';
const MAX_TOKENS = 12;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kaizen-clients-'));
const model = path.join(tmp, 'model');
const state = path.join(tmp, 'state');
const socket = path.join(tmp, 'kaizend.sock');

function log(...a) { console.log('[clients]', ...a); }

function startKaizend() {
  return new Promise((resolve, reject) => {
    const child = spawn(KAIZEND, [
      '--config=/dev/null', `--model=${model}`, `--state_dir=${state}`, `--socket=${socket}`,
      '--listen=127.0.0.1:0', `--api_key=${TOKEN}`, '--device=cpu', '--threads=2',
      '--log_level=info', `--system_prompt=${SYSTEM}`, '--train.enabled=false',
      '--limits.header_timeout_s=2', '--limits.max_active_chats=2', '--limits.max_queued_chats=4',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const onData = (d) => {
      out += d;
      // The sockets are up (event=listening) before the model has loaded; requests are
      // answered once the service is ready (event=serving; /healthz says 503 until then).
      const m = out.match(/event=listening .*tcp="127\.0\.0\.1:(\d+)"/);
      if (m && /event=serving/.test(out)) {
        child.removeListener('exit', onEarlyExit);
        resolve({ child, port: Number(m[1]) });
      }
    };
    const onEarlyExit = (code) => reject(new Error(`kaizend exited early with ${code}:\n${out}`));
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', onEarlyExit);
  });
}

function stop(child, signal) {
  return new Promise((resolve) => {
    child.once('exit', (code, sig) => resolve({ code, sig }));
    child.kill(signal);
  });
}

// One raw HTTP/1.1 exchange on a fresh TCP connection; resolves with {status, headers, body}
// (status 0 when the server closed without a response).
function raw(port, request, { writeBody, timeoutMs = 20000 } = {}) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => { s.destroy(); reject(new Error('no response in time')); }, timeoutMs);
    s.on('connect', () => { s.write(request); if (writeBody) writeBody(s); });
    s.on('data', (d) => { data = Buffer.concat([data, d]); });
    s.on('error', () => {});  // EPIPE/ECONNRESET after the server answered and closed
    s.on('close', () => {
      clearTimeout(timer);
      const text = data.toString('latin1');
      const m = text.match(/^HTTP\/1\.1 (\d+)/);
      const headEnd = text.indexOf('\r\n\r\n');
      resolve({ status: m ? Number(m[1]) : 0, head: headEnd < 0 ? text : text.slice(0, headEnd),
                body: headEnd < 0 ? '' : text.slice(headEnd + 4) });
    });
  });
}

function request(method, target, { body = '', headers = [], host = 'localhost', token = TOKEN } = {}) {
  const lines = [`${method} ${target} HTTP/1.1`, `Host: ${host}`, 'Connection: close'];
  if (token) lines.push(`Authorization: Bearer ${token}`);
  if (method === 'POST') lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
  return lines.concat(headers).join('\r\n') + '\r\n\r\n' + body;
}

function expectError(r, status, type) {
  assert.strictEqual(r.status, status, `want ${status}, got ${r.status}: ${r.head}\n${r.body}`);
  const e = JSON.parse(r.body).error;
  assert.strictEqual(e.type, type);
  assert.ok(e.message.length > 0);
}

// What agent frameworks do with the official client: a tool-calling round trip (tools ->
// tool_calls -> tool result -> answer), streaming and not; structured outputs through the
// client's parse helper; logprobs; n = 3. The random demo model says nonsense: forced calls
// and schemas are kept valid by constrained decoding.
async function agentFrameworkChecks(client, ids) {
  const tools = [{ type: 'function', function: {
    name: 'get_order_status', description: 'Where an order is',
    parameters: { type: 'object', properties: { order_id: { type: 'string', maxLength: 10 } },
                  required: ['order_id'], additionalProperties: false } } }];
  const messages = [{ role: 'user', content: 'Where is my order A-17?' }];
  const called = await client.chat.completions.create({ model: 'kaizen', messages, tools, tool_choice: 'required',
                                                         temperature: 0, max_tokens: 60 });
  ids.push(called.id);
  const choice = called.choices[0];
  assert.strictEqual(choice.finish_reason, 'tool_calls', JSON.stringify(called));
  const call = choice.message.tool_calls[0];
  assert.strictEqual(call.type, 'function');
  assert.strictEqual(call.function.name, 'get_order_status');
  const args = JSON.parse(call.function.arguments);
  assert.strictEqual(typeof args.order_id, 'string');
  assert.deepStrictEqual(Object.keys(args), ['order_id']);

  const streamedCall = await client.beta.chat.completions
    .stream({ model: 'kaizen', messages, tools, tool_choice: 'required', temperature: 0, max_tokens: 60 })
    .finalChatCompletion();
  ids.push(streamedCall.id);
  assert.deepStrictEqual(streamedCall.choices[0].message.tool_calls[0].function, call.function);

  const answered = await client.chat.completions.create({ model: 'kaizen', tools, temperature: 0, max_tokens: 12,
    messages: [...messages, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"status": "shipped"}' }] });
  ids.push(answered.id);
  assert.ok(['stop', 'length', 'tool_calls'].includes(answered.choices[0].finish_reason));

  const schema = { type: 'object', properties: { product: { type: 'string', maxLength: 20 }, price: { type: 'number' } },
                   required: ['product', 'price'], additionalProperties: false };
  const parsed = await client.beta.chat.completions.parse({ model: 'kaizen', temperature: 0.8, seed: 3, max_tokens: 80,
    messages: [{ role: 'user', content: 'Name one Sabitech product and its price.' }],
    response_format: { type: 'json_schema', json_schema: { name: 'product', strict: true, schema } } });
  ids.push(parsed.id);
  const p = parsed.choices[0].message.parsed;
  assert.ok(p && typeof p.product === 'string' && typeof p.price === 'number', JSON.stringify(parsed));

  const withLogprobs = await client.chat.completions.create({ model: 'kaizen', messages, temperature: 0, max_tokens: 8,
                                                               logprobs: true, top_logprobs: 2 });
  ids.push(withLogprobs.id);
  const lps = withLogprobs.choices[0].logprobs.content;
  assert.strictEqual(lps.length, withLogprobs.usage.completion_tokens);
  for (const t of lps) assert.ok(t.top_logprobs.length === 2 && t.logprob <= 0, JSON.stringify(t));

  const three = await client.chat.completions.create({ model: 'kaizen', messages, temperature: 1, seed: 11, n: 3,
                                                        max_tokens: 8 });
  ids.push(three.id);
  assert.deepStrictEqual(three.choices.map((c) => c.index), [0, 1, 2]);
  log(`agent checks: call ${call.function.arguments}, parsed ${JSON.stringify(p)}`);
}

async function main() {
  let res = spawnSync(KAIZENCTL, ['model', 'make-tiny', '--out', model, '--tokenizer-dir', TOKENIZER_DIR],
                      { encoding: 'utf8' });
  assert.strictEqual(res.status, 0, res.stderr);
  let { child, port } = await startKaizend();
  const ids = [];  // response ids = stored message ids of every answer the daemon logged
  try {
    const client = new OpenAI({ apiKey: TOKEN, baseURL: `http://localhost:${port}/v1`, maxRetries: 0 });
    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    assert.ok(models.includes('kaizen') && models.includes('base'), models.join(','));

    // Greedy, non-streaming and streaming: the same text.
    const messages = [{ role: 'user', content: PROMPT }];
    const c = await client.chat.completions.create({ model: 'kaizen', messages, temperature: 0,
                                                      max_tokens: MAX_TOKENS });
    assert.strictEqual(c.object, 'chat.completion');
    assert.ok(typeof c.id === 'string' && c.id.length > 0, c.id);  // the stored message id
    ids.push(c.id);
    const greedy = c.choices[0].message.content;
    assert.ok(greedy.length > 0);
    assert.ok(['stop', 'length'].includes(c.choices[0].finish_reason));
    assert.ok(c.usage.completion_tokens > 0 && c.usage.completion_tokens <= MAX_TOKENS);
    assert.strictEqual(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);

    const stream = await client.chat.completions.create({
      model: 'kaizen', messages, temperature: 0, max_tokens: MAX_TOKENS, stream: true,
      stream_options: { include_usage: true } });
    let text = '', usage = null, id = null, chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      id = id || chunk.id;
      assert.strictEqual(chunk.id, id);
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) text += ch.delta.content || '';
    }
    ids.push(id);
    assert.strictEqual(text, greedy);
    // The same counts; the repeat finds at least as much of its prompt cached.
    for (const k of ['prompt_tokens', 'completion_tokens', 'total_tokens']) assert.strictEqual(usage[k], c.usage[k], k);
    assert.ok(usage.prompt_tokens_details.cached_tokens >= c.usage.prompt_tokens_details.cached_tokens &&
              usage.prompt_tokens_details.cached_tokens < usage.prompt_tokens, JSON.stringify(usage));
    assert.ok(chunks >= 3, `only ${chunks} chunks`);
    const final = await client.beta.chat.completions
      .stream({ model: 'base', messages, temperature: 0, max_tokens: MAX_TOKENS }).finalChatCompletion();
    ids.push(final.id);
    assert.strictEqual(final.choices[0].message.content, greedy);  // no adapter yet: base = kaizen
    log(`greedy answer ${JSON.stringify(greedy)} (${chunks} stream chunks)`);

    // The same prompt through `kaizenctl generate` (in-process, no daemon): same text.
    res = spawnSync(KAIZENCTL, ['generate', '--model', model, '--system', SYSTEM, '--prompt', PROMPT,
                                '--temperature', '0', '--max-tokens', String(MAX_TOKENS), '--threads', '2'],
                    { encoding: 'utf8' });
    assert.strictEqual(res.status, 0, res.stderr);
    assert.strictEqual(res.stdout.replace(/\n$/, ''), greedy);

    // curl over TCP (streaming SSE) and over the Unix socket: the same greedy text.
    if (spawnSync('curl', ['--version']).status === 0) {
      const body = JSON.stringify({ model: 'kaizen', messages, temperature: 0, max_tokens: MAX_TOKENS,
                                    stream: true });
      res = spawnSync('curl', ['-sS', '-N', '--fail-with-body', `http://127.0.0.1:${port}/v1/chat/completions`,
                               '-H', `Authorization: Bearer ${TOKEN}`, '-H', 'Content-Type: application/json',
                               '-d', body], { encoding: 'utf8' });
      assert.strictEqual(res.status, 0, res.stderr + res.stdout);
      const events = res.stdout.split('\n').filter((l) => l.startsWith('data: '));
      assert.strictEqual(events[events.length - 1], 'data: [DONE]');
      const streamed = events.slice(0, -1).map((l) => JSON.parse(l.slice(6)))
        .map((c) => (c.choices[0] && c.choices[0].delta.content) || '').join('');
      assert.strictEqual(streamed, greedy);
      ids.push(JSON.parse(events[0].slice(6)).id);
      res = spawnSync('curl', ['-sS', '--fail-with-body', '--unix-socket', socket,
                               'http://localhost/v1/chat/completions', '-H', 'Content-Type: application/json',
                               '-d', JSON.stringify({ model: 'kaizen', messages, temperature: 0,
                                                      max_tokens: MAX_TOKENS })], { encoding: 'utf8' });
      assert.strictEqual(res.status, 0, res.stderr + res.stdout);
      const viaSocket = JSON.parse(res.stdout);
      assert.strictEqual(viaSocket.choices[0].message.content, greedy);
      ids.push(viaSocket.id);
    } else {
      log('curl not found: curl checks skipped');
    }

    // Typed client errors.
    await assert.rejects(client.chat.completions.create({ model: 'kaizen@v999', messages }),
                         (e) => e instanceof OpenAI.NotFoundError && /v999/.test(e.message));
    await assert.rejects(client.chat.completions.create({ model: 'kaizen', messages: [] }),
                         (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
    const wrongKey = new OpenAI({ apiKey: 'wrong', baseURL: `http://localhost:${port}/v1`, maxRetries: 0 });
    await assert.rejects(wrongKey.models.list(), (e) => e instanceof OpenAI.AuthenticationError);

    await agentFrameworkChecks(client, ids);

    // Raw bad input.
    const post = (body, opts = {}) => raw(port, request('POST', '/v1/chat/completions', { body, ...opts }));
    expectError(await post('{"model": "kaizen", "messages": [ {"role": '), 400, 'invalid_request_error');
    expectError(await post('{"model":"kaizen","messages":[{"role":"user","content":7}]}'), 400,
                'invalid_request_error');
    expectError(await post('{"model":"kaizen","messages":"hi"}'), 400, 'invalid_request_error');
    expectError(await post('{"model":"kaizen","messages":[{"role":"user","content":"x"}],"max_tokens":"9"}'),
                400, 'invalid_request_error');
    expectError(await post('{"model":"kaizen"}'), 400, 'invalid_request_error');
    expectError(await post('{"messages":[{"role":"user","content":"x"}],"model":"kaizen@v999"}'), 404,
                'invalid_request_error');
    expectError(await post('{"model":"kaizen","messages":[{"role":"user","content":"x"}]}', { token: '' }),
                401, 'authentication_error');
    expectError(await post('{"model":"kaizen","messages":[{"role":"user","content":"x"}]}',
                           { host: 'evil.example' }), 403, 'permission_error');

    // A 100 MB body: refused from its Content-Length with 413 before it is read.
    const big = 100 * 1024 * 1024;
    const t0 = Date.now();
    const huge = await raw(port, request('POST', '/v1/chat/completions').replace(
      'Content-Length: 0', `Content-Length: ${big}`), {
      writeBody: (s) => {
        const chunk = Buffer.alloc(1 << 20, 'x');
        let sent = 0;
        const pump = () => {
          while (sent < big && !s.destroyed) {
            sent += chunk.length;
            if (!s.write(chunk)) { s.once('drain', pump); return; }
          }
        };
        pump();
      },
    });
    expectError(huge, 413, 'invalid_request_error');
    log(`100 MB body: 413 in ${Date.now() - t0} ms`);

    // A slow client (half a header, then nothing) gets 408 after header_timeout_s, while
    // a normal chat on another connection is answered meanwhile.
    const slowStart = Date.now();
    const slow = raw(port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Le');
    const during = await client.chat.completions.create({ model: 'kaizen', messages, temperature: 0,
                                                           max_tokens: MAX_TOKENS });
    ids.push(during.id);
    assert.strictEqual(during.choices[0].message.content, greedy);
    const slowResult = await slow;
    assert.ok(slowResult.status === 408 || slowResult.status === 0, slowResult.head);
    assert.ok(Date.now() - slowStart < 10000);

    // 1,000 concurrent connections, all open at once, each with a request: all answered.
    const many = await Promise.all(Array.from({ length: 1000 }, (_, i) =>
      raw(port, request('GET', i % 2 ? '/v1/models' : '/healthz'), { timeoutMs: 60000 })));
    const statuses = {};
    for (const r of many) statuses[r.status] = (statuses[r.status] || 0) + 1;
    assert.deepStrictEqual(statuses, { 200: 1000 });

    // A burst of 16 chats over 2 active + 4 queued: each is answered or gets 429 with
    // Retry-After; none fails otherwise.
    const burst = await Promise.all(Array.from({ length: 16 }, (_, i) => raw(port, request(
      'POST', '/v1/chat/completions',
      { body: JSON.stringify({ model: 'kaizen', max_tokens: 4, temperature: 0,
                               messages: [{ role: 'user', content: `burst ${i}` }] }) }), { timeoutMs: 60000 })));
    let ok = 0, shed = 0;
    for (const r of burst) {
      if (r.status === 200) { ok++; ids.push(JSON.parse(r.body).id); continue; }
      expectError(r, 429, 'rate_limit_error');
      assert.match(r.head, /\r\nRetry-After: \d+/i);
      shed++;
    }
    assert.ok(ok >= 6 && shed >= 1, `ok ${ok}, shed ${shed}`);
    log(`burst of 16 chats: ${ok} answered, ${shed} shed with 429`);

    // Still serving, same answer.
    const after = await client.chat.completions.create({ model: 'kaizen', messages, temperature: 0,
                                                          max_tokens: MAX_TOKENS });
    ids.push(after.id);
    assert.strictEqual(after.choices[0].message.content, greedy);

    // Clean stop, then kill -9 in the middle of a streamed answer.
    assert.deepStrictEqual(await stop(child, 'SIGTERM'), { code: 0, sig: null });
    ({ child, port } = await startKaizend());
    const client2 = new OpenAI({ apiKey: TOKEN, baseURL: `http://localhost:${port}/v1`, maxRetries: 0 });
    const logged = await client2.chat.completions.create({ model: 'kaizen', messages, temperature: 0,
                                                           max_tokens: MAX_TOKENS });
    ids.push(logged.id);
    const s2 = await client2.chat.completions.create({ model: 'kaizen', messages, max_tokens: 512,
                                                       temperature: 1, stream: true });
    let killed = false;
    try {
      for await (const chunk of s2) {
        if (!killed && chunk.choices.length && chunk.choices[0].delta.content) {
          killed = true;
          await stop(child, 'SIGKILL');
        }
      }
    } catch (e) { /* the connection dies with the daemon */ }
    assert.ok(killed);

    // Restart on the same state: every logged answer is there (feedback on it is
    // accepted; an unknown id is 404), and the daemon answers as before.
    ({ child, port } = await startKaizend());
    for (const msg of ids) {
      const r = await raw(port, request('POST', '/v1/feedback',
        { body: JSON.stringify({ message_id: msg, rating: 1 }) }));
      assert.strictEqual(r.status, 200, `${msg}: ${r.status} ${r.body}`);
    }
    expectError(await raw(port, request('POST', '/v1/feedback',
      { body: JSON.stringify({ message_id: '999999', rating: 1 }) })), 404, 'not_found_error');
    const client3 = new OpenAI({ apiKey: TOKEN, baseURL: `http://localhost:${port}/v1`, maxRetries: 0 });
    const again = await client3.chat.completions.create({ model: 'kaizen', messages, temperature: 0,
                                                          max_tokens: MAX_TOKENS });
    assert.strictEqual(again.choices[0].message.content, greedy);
    log(`${ids.length} logged answers survived a SIGTERM restart and a kill -9`);
    console.log('kaizend clients test: ok');
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGKILL');
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
