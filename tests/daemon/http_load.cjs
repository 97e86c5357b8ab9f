// Throughput of the HTTP layer against kaizen_fake_server (no tensor work): keep-alive
// clients hammering /healthz, non-streaming and streaming chat for a few seconds each.
// usage: node http_load.cjs <kaizen_fake_server> [seconds=3] [clients=8]
'use strict';
const http = require('http');
const { spawn } = require('child_process');

const [bin, secs = '3', clients = '8'] = process.argv.slice(2);
const TOKEN = 'load-token';

function start() {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--config=/dev/null', '--listen=127.0.0.1:0', '--socket=',
                              `--api_key=${TOKEN}`, '--log_level=error',
                              '--limits.max_active_chats=64', '--limits.max_queued_chats=256'],
                        { stdio: ['ignore', 'pipe', 'inherit'],
                          env: { ...process.env, KAIZEN_FAKE_TOKEN_DELAY_MS: '0' } });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/tcp_port=(\d+)/);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (c) => reject(new Error(`server exited ${c}`)));
  });
}

function once(agent, port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, port, host: '127.0.0.1', method, path,
      headers: { Host: 'localhost', Authorization: `Bearer ${TOKEN}`,
                 'Content-Type': 'application/json' } }, (res) => {
      res.on('data', () => {});
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}

async function run(port, name, method, path, body) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Number(clients) });
  const deadline = Date.now() + Number(secs) * 1000;
  let n = 0, bad = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      const s = await once(agent, port, method, path, body);
      if (s === 200) n++; else bad++;
    }
  };
  const t0 = Date.now();
  await Promise.all(Array.from({ length: Number(clients) }, worker));
  const rate = n / ((Date.now() - t0) / 1000);
  console.log(`${name}: ${rate.toFixed(0)} req/s (${clients} keep-alive clients, ${bad} non-200)`);
  agent.destroy();
}

(async () => {
  const { child, port } = await start();
  const chat = (stream) => JSON.stringify({ model: 'kaizen', stream,
    messages: [{ role: 'user', content: 'one two three four five six seven eight' }] });
  try {
    await run(port, 'GET /healthz', 'GET', '/healthz');
    await run(port, 'POST /v1/chat/completions', 'POST', '/v1/chat/completions', chat(false));
    await run(port, 'POST /v1/chat/completions stream', 'POST', '/v1/chat/completions', chat(true));
  } finally {
    child.removeAllListeners('exit');
    child.kill('SIGTERM');
  }
})().catch((e) => { console.error(e); process.exit(1); });
