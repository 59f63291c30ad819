// Locks over the WebSocket (interop_test.sh, scenario locks). Users A (lock
// holder) and B (another editor) are both connected with real y-websocket
// clients; B also sends raw frames to see the server's answers.
//   node locks.mjs --url ws://HOST:PORT/v1/collab --api http://HOST:PORT --room ID --a TOKEN_A --b TOKEN_B
// Prints one JSON line per step; exit 0 only when every step passed.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? a.concat([[v.replace(/^--/, ''), all[i + 1]]]) : a), []))
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const step = (name, ok, extra = {}) => {
  console.log(JSON.stringify({ step: name, ok, ...extra }))
  if (!ok) process.exit(1)
}
const waitFor = async (pred, ms = 8000) => {
  const t0 = Date.now()
  while (!pred()) {
    if (Date.now() - t0 > ms) return false
    await sleep(20)
  }
  return true
}
const rest = async (method, path, token, body) => {
  const res = await fetch(args.api + path, {
    method,
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, 'If-Match': '*' },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : null }
}
const client = (token) => {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(args.url, args.room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params: { token } })
  provider.awareness.setLocalState({ user: { name: token.slice(0, 6) } })
  return { doc, provider, text: doc.getText('content') }
}
const locksSeen = (c) => c.provider.awareness.getStates().get(0)?.locks ?? null

// Raw connection of B: its updates and the server's messageAuth answers.
const varUint = (n) => { const out = []; while (n > 127) { out.push(0x80 | (n & 127)); n >>>= 7 } out.push(n); return out }
const frame = (type, sub, data) => Buffer.from([type, sub, ...varUint(data.length), ...data])
const raw = new WebSocket(`${args.url}/${args.room}?token=${encodeURIComponent(args.b)}`)
const rawDoc = new Y.Doc()
const denied = []
let rawStep2 = 0
let rawClosed = false
raw.on('message', (data) => {
  const b = new Uint8Array(data)
  if (b[0] === 2 && b[1] === 0) denied.push(Buffer.from(b.slice(3)).toString())
  if (b[0] === 0 && b[1] === 1) rawStep2++
})
raw.on('close', () => { rawClosed = true })
const rawEdit = (s) => {
  const before = Y.encodeStateVector(rawDoc)
  rawDoc.getText('content').insert(0, s)
  raw.send(frame(0, 2, Y.encodeStateAsUpdate(rawDoc, before)))
}

const A = client(args.a)
const B = client(args.b)
step('connected', await waitFor(() => A.provider.synced && B.provider.synced && raw.readyState === 1))

// 1. A takes a document lock: B sees it announced and becomes read-only.
const lock = await rest('POST', '/v1/locks', args.a, { resourceType: 'content_item', resourceId: args.room, granularity: 'document', ttlSeconds: 120 })
step('document lock acquired', lock.status === 201 || lock.status === 200, { status: lock.status })
step('lock announced to B', await waitFor(() => locksSeen(B)?.[0]?.granularity === 'document'), { locks: locksSeen(B) })
rawEdit('B while locked ')
step('B refused with messageAuth', await waitFor(() => denied.length > 0), { denied })
step('B refusal names the lock', /locked by user/.test(denied[0]))
raw.send(frame(0, 0, Y.encodeStateVector(rawDoc)))
step('B still connected and answered', await waitFor(() => rawStep2 > 0 && !rawClosed))
A.text.insert(0, 'A holds the lock. ')
step('A writes and B receives it', await waitFor(() => B.text.toString().includes('A holds the lock.')))
await sleep(300)
step('B change not applied anywhere', !A.text.toString().includes('B while locked'), { text: A.text.toString() })
const patch = await rest('PATCH', `/v1/content/${args.room}`, args.b, { body: 'B overwrites' })
step('B REST write refused 409', patch.status === 409 && patch.body?.type?.includes('lock-conflict'), { status: patch.status, type: patch.body?.type })

// 2. A releases: the announcement is withdrawn and B writes again.
const del = await rest('DELETE', `/v1/locks/${lock.body.id}`, args.a)
step('lock released', del.status === 204 || del.status === 200, { status: del.status })
step('release announced to B', await waitFor(() => locksSeen(B) === null))
B.text.insert(B.text.length, ' B after release.')
step('B writes again and A receives it', await waitFor(() => A.text.toString().includes('B after release.')))

// 3. A finer lock is announced but does not make the WebSocket read-only.
const para = await rest('POST', '/v1/locks', args.a, { resourceType: 'content_item', resourceId: args.room, granularity: 'paragraph', context: { start: 0, end: 10 }, ttlSeconds: 120 })
step('paragraph lock acquired', para.status === 201 || para.status === 200, { status: para.status })
step('paragraph lock announced', await waitFor(() => locksSeen(B)?.[0]?.granularity === 'paragraph' && locksSeen(B)?.[0]?.context?.end === 10))
B.text.insert(B.text.length, ' B beside the paragraph lock.')
step('B edits over the WebSocket still apply', await waitFor(() => A.text.toString().includes('B beside the paragraph lock.')))
console.log(JSON.stringify({ text: A.text.toString(), lockId: para.body.id }))
A.provider.destroy()
B.provider.destroy()
raw.close()
process.exit(0)
