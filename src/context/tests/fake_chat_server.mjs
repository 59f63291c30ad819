// A local server that implements the OpenAI chat completions API for the
// context module's tests, using only node's http module.
//
//   node fake_chat_server.mjs <port-file>
//
// Listens on 127.0.0.1 (a free port, written to <port-file>). Endpoints:
//   POST /v1/chat/completions  non-streaming and streaming (data: {...}\n\n ... data: [DONE]\n\n)
//   POST /control              {"failFirst": n, "failStatus": 429|500|..., "retryAfter": "1",
//                                "reply": "text", "usage": bool, "hold": bool, "status": 401}
//                              resets the request log
//   POST /release              lets a held stream continue after its first chunk
//   GET  /requests             [{"headers": {...}, "body": {...}}] received so far
//
// Behaviour: the first `failFirst` completion requests get `failStatus` (with
// Retry-After when set); `status` answers every request with that error
// status; the reply is `reply` split into words (one chunk per word when
// streaming); usage is prompt_tokens = 1000 + number of messages,
// completion_tokens = number of words, unless `usage` is false. With `hold`,
// a stream stops after its first chunk until /release.
import http from 'node:http';
import fs from 'node:fs';

let control = {};
let requests = [];
let completions = 0;
let release = null;

function readBody(req) {
  return new Promise((resolve) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (data += c));
    req.on('end', () => resolve(data));
  });
}

function json(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

const server = http.createServer(async (req, res) => {
  const raw = await readBody(req);
  if (req.method === 'POST' && req.url === '/control') {
    control = JSON.parse(raw || '{}');
    requests = [];
    completions = 0;
    return json(res, 200, { ok: true });
  }
  if (req.method === 'POST' && req.url === '/release') {
    if (release) release();
    release = null;
    return json(res, 200, { ok: true });
  }
  if (req.method === 'GET' && req.url === '/requests') return json(res, 200, requests);
  if (req.method !== 'POST' || req.url !== '/v1/chat/completions') {
    return json(res, 404, { error: { message: 'no such route', type: 'invalid_request_error' } });
  }
  let body;
  try {
    body = JSON.parse(raw);
  } catch {
    return json(res, 400, { error: { message: 'malformed JSON', type: 'invalid_request_error' } });
  }
  requests.push({ headers: req.headers, body });
  completions += 1;
  if (control.status) {
    return json(res, control.status, { error: { message: 'refused by the test', type: 'invalid_request_error' } });
  }
  if (completions <= (control.failFirst || 0)) {
    const headers = control.retryAfter !== undefined ? { 'Retry-After': String(control.retryAfter) } : {};
    return json(res, control.failStatus || 500, { error: { message: 'try again', type: 'server_error' } }, headers);
  }
  const reply = control.reply ?? 'Seven days of WAL are kept.';
  const words = reply.split(/(?<= )/);
  const usage = {
    prompt_tokens: 1000 + body.messages.length,
    completion_tokens: words.length,
    total_tokens: 1000 + body.messages.length + words.length,
  };
  const model = `${body.model}-served`;
  if (!body.stream) {
    const answer = {
      id: 'chatcmpl-test',
      object: 'chat.completion',
      created: 1,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }],
    };
    if (control.usage !== false) answer.usage = usage;
    return json(res, 200, answer);
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  const send = (obj) => res.write(`data: ${JSON.stringify(obj)}\n\n`);
  const chunk = (delta, finish = null) => ({
    id: 'chatcmpl-test',
    object: 'chat.completion.chunk',
    created: 1,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  send(chunk({ role: 'assistant', content: '' }));
  for (let i = 0; i < words.length; i++) {
    send(chunk({ content: words[i] }));
    if (i === 0 && control.hold) await new Promise((resolve) => (release = resolve));
  }
  send(chunk({}, 'stop'));
  const wantsUsage = body.stream_options && body.stream_options.include_usage;
  if (wantsUsage && control.usage !== false) {
    send({ id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 1, model, choices: [], usage });
  }
  res.write('data: [DONE]\n\n');
  res.end();
});

server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(process.argv[2], String(server.address().port));
});
process.on('SIGTERM', () => process.exit(0));
