// Locks over the WebSocket (interop_test.sh, scenario locks). Users A (lock
// holder) and B (another editor) are both connected with real y-websocket
// clients; B also sends raw frames to see the server's answers.
//   node locks.mjs --url ws://HOST:PORT/v1/collab --api http://HOST:PORT --room ID --a TOKEN_A --b TOKEN_B
// Prints one JSON line per step; exit 0 only when every step passed.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import * as decoding from 'lib0/decoding'

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
rawEdit('raw after release ')  // builds on its change refused under the lock
step('a refused editor stays refused after the release', await waitFor(() => denied.length > 1 && denied[1].includes('refused before')), { denied })
raw.send(frame(0, 2, Y.encodeStateAsUpdate(rawDoc)))  // as a reconnect's sync step 2 would
step('its refused change does not come back', await waitFor(() => denied.length > 2) && !A.text.toString().includes('B while locked'), { text: A.text.toString() })

// 3. A finer lock is announced (with its anchor) and enforced on WebSocket
//    updates: B's changes inside the locked range are refused with messageAuth,
//    nothing of them is stored or relayed, B stays connected; changes outside
//    the range, and the holder's, go through.
const para = await rest('POST', '/v1/locks', args.a, { resourceType: 'content_item', resourceId: args.room, granularity: 'paragraph', context: { start: 0, end: 10 }, ttlSeconds: 120 })
step('paragraph lock acquired', para.status === 201 || para.status === 200, { status: para.status })
step('paragraph lock announced', await waitFor(() => locksSeen(B)?.[0]?.granularity === 'paragraph' && locksSeen(B)?.[0]?.context?.end === 10))
const anchor = locksSeen(B)[0].anchor
const at = (rel) => Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(rel), B.doc)?.index
step('the announcement carries the anchor of the range', anchor?.kind === 'yjs-relative-position' && at(anchor.start) === 0 && at(anchor.end) === 10, { anchor })
B.text.insert(B.text.length, ' B beside the paragraph lock.')
step('B edits outside the range apply', await waitFor(() => A.text.toString().includes('B beside the paragraph lock.')))
// Editors of B that record the server's messageAuth answers (y-websocket only logs them).
const editorOfB = () => {
  const c = client(args.b)
  c.denied = []
  c.provider.messageHandlers[2] = (_encoder, decoder) => {
    decoding.readVarUint(decoder)
    c.denied.push(decoding.readVarString(decoder))
  }
  return c
}
const B2 = editorOfB()
step('second editor of B synced', await waitFor(() => B2.provider.synced))
const before = A.text.toString()
B2.text.insert(3, 'B2 inside ')
step('B inside the range: refused with messageAuth', await waitFor(() => B2.denied.length > 0), { denied: B2.denied })
step('the refusal names the holder and the lock', B2.denied[0].includes('locked by user') && B2.denied[0].includes('paragraph lock') && B2.denied[0].includes('reload'), { denied: B2.denied[0] })
await sleep(300)
step('the refused change reached nobody', A.text.toString() === before && !B.text.toString().includes('B2 inside'), { text: A.text.toString() })
step('B still connected after the refusal', B2.provider.wsconnected)
B2.text.insert(B2.text.length, ' B2 after a refusal.')
step('a later change of the refused editor is refused too (it builds on the refused one)', await waitFor(() => B2.denied.length > 1 && B2.denied[1].includes('refused before')), { denied: B2.denied })
B2.provider.destroy()
const B3 = editorOfB()  // "reload": a fresh document
step('reloaded editor synced without the refused change', await waitFor(() => B3.provider.synced) && !B3.text.toString().includes('B2'), { text: B3.text.toString() })
B3.text.delete(5, 3)
step('B deleting inside the range: refused', await waitFor(() => B3.denied.length > 0), { denied: B3.denied })
await sleep(300)
step('the deletion reached nobody', A.text.toString() === before)
B3.provider.destroy()
const B4 = editorOfB()
step('another reloaded editor synced', await waitFor(() => B4.provider.synced))
A.text.insert(2, 'the holder ')
step('the holder edits inside and B sees it', await waitFor(() => B4.text.toString().startsWith('A the holder holds')), { text: B4.text.toString() })
B4.text.insert(B4.text.length, ' B4 after the holder.')
step('B outside the range after the holder typed', await waitFor(() => A.text.toString().endsWith(' B4 after the holder.')), { text: A.text.toString() })
B4.text.insert(13, 'X')  // inside the range, which the holder's typing made longer
step('the range follows the holder\'s typing', await waitFor(() => B4.denied.length > 0), { denied: B4.denied })
await sleep(300)
step('nothing of it stored: a fresh client agrees with A', await (async () => {
  const probe = client(args.a)
  const ok = await waitFor(() => probe.provider.synced)
  const same = probe.text.toString() === A.text.toString() && !probe.text.toString().includes('X')
  probe.provider.destroy()
  return ok && same
})(), { text: A.text.toString() })
B4.provider.destroy()
console.log(JSON.stringify({ text: A.text.toString(), lockId: para.body.id }))
A.provider.destroy()
B.provider.destroy()
raw.close()
process.exit(0)
