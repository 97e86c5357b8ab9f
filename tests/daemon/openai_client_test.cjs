// The official OpenAI Node client (npm openai, pinned in tools/npm) against kaizend's HTTP
// layer: a non-streaming and a streaming completion, models.list, and error mapping.
// usage: node openai_client_test.cjs <kaizen_fake_server binary>
'use strict';
const { spawn } = require('child_process');
const path = require('path');
const assert = require('assert');
const npmDir = process.env.KAIZEN_NPM_DIR || path.join(__dirname, '../../tools/npm/node_modules');
const OpenAI = require(path.join(npmDir, 'openai'));

const TOKEN = 'node-test-token';

function startServer(bin) {
  return new Promise((resolve, reject) => {
    const sock = `/tmp/kaizen-node-${process.pid}.sock`;
    const child = spawn(bin, ['--config=/dev/null', '--listen=127.0.0.1:0', `--socket=${sock}`,
                              `--api_key=${TOKEN}`, '--log_level=warn'],
                        { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/tcp_port=(\d+)/);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`server exited early with ${code}`)));
  });
}

async function main() {
  const { child, port } = await startServer(process.argv[2]);
  try {
    const client = new OpenAI({ apiKey: TOKEN, baseURL: `http://localhost:${port}/v1`, maxRetries: 0 });

    const models = [];
    for await (const m of client.models.list()) models.push(m.id);
    assert.deepStrictEqual(models, ['base', 'kaizen', 'kaizen@v1', 'kaizen@v2']);

    const c = await client.chat.completions.create({
      model: 'kaizen',
      messages: [{ role: 'system', content: 'be kind' }, { role: 'user', content: 'hello from node' }],
      temperature: 0.7, max_tokens: 64, seed: 42,
    });
    assert.strictEqual(c.object, 'chat.completion');
    assert.match(c.id, /^msg_/);
    assert.strictEqual(c.choices[0].message.content, 'Echo: hello from node');
    assert.strictEqual(c.choices[0].finish_reason, 'stop');
    assert.strictEqual(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);

    const stream = await client.chat.completions.create({
      model: 'kaizen@v2', stream: true, stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'stream to node please' }],
    });
    let text = '', finish = null, usage = null, chunks = 0, id = null;
    for await (const chunk of stream) {
      chunks++;
      id = id || chunk.id;
      assert.strictEqual(chunk.id, id);
      if (chunk.usage) usage = chunk.usage;
      for (const ch of chunk.choices) {
        text += ch.delta.content || '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
    }
    assert.strictEqual(text, 'Echo: stream to node please');
    assert.strictEqual(finish, 'stop');
    assert.ok(chunks >= 5, `only ${chunks} chunks`);
    assert.strictEqual(usage.completion_tokens, 5);

    // The helper that accumulates a stream (uses the SSE parser end to end).
    const runner = client.beta.chat.completions.stream({
      model: 'kaizen', messages: [{ role: 'user', content: 'final answer' }],
    });
    const final = await runner.finalChatCompletion();
    assert.strictEqual(final.choices[0].message.content, 'Echo: final answer');

    // Errors surface as typed exceptions with the server's message.
    await assert.rejects(
      client.chat.completions.create({ model: 'kaizen@v404', messages: [{ role: 'user', content: 'x' }] }),
      (e) => e instanceof OpenAI.NotFoundError && /kaizen@v404/.test(e.message));
    await assert.rejects(
      client.chat.completions.create({ model: 'kaizen', messages: [], }),
      (e) => e instanceof OpenAI.BadRequestError && e.param === 'messages');
    const bad = new OpenAI({ apiKey: 'wrong', baseURL: `http://localhost:${port}/v1`, maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
    // An engine error mid-stream is raised by the client's SSE loop.
    await assert.rejects((async () => {
      const s = await client.chat.completions.create({
        model: 'kaizen', stream: true, messages: [{ role: 'user', content: '__error__' }] });
      for await (const _ of s) { /* drain */ }
    })(), /fake engine failed/);
    console.log('openai client test: ok');
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
