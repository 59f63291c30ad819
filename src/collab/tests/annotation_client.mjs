// A real y-websocket client for the annotation test (annotations_test.sh).
// Connects to a room, waits for sync, optionally inserts text at an index and
// deletes a range, waits until the server echoed everything, then prints
// {"text", "resolved": [...]} where `resolved` are the indexes of the given
// base64 relative positions (Y.decodeRelativePosition +
// createAbsolutePositionFromRelativePosition) in the final document.
//   node annotation_client.mjs --url U --room ID --token T --root content
//        [--insert-at N --insert S] [--delete-at N --delete-len L] [--resolve B64,B64,...]
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? a.concat([[v.replace(/^--/, ''), all[i + 1]]]) : a), []))
const doc = new Y.Doc()
const provider = new WebsocketProvider(args.url, args.room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params: { token: args.token } })
provider.awareness.setLocalState(null)
const text = doc.getText(args.root ?? 'content')
const t0 = Date.now()
const fail = (m) => { console.log(JSON.stringify({ error: m })); process.exit(1) }
await new Promise(resolve => { const iv = setInterval(() => { if (provider.synced) { clearInterval(iv); resolve() } else if (Date.now() - t0 > 20000) fail('timeout waiting for sync') }, 20) })
if (args['insert-at'] !== undefined) text.insert(Number(args['insert-at']), args.insert)
if (args['delete-at'] !== undefined) text.delete(Number(args['delete-at']), Number(args['delete-len']))
// The server echoes every accepted update once it is durable: a second client
// seeing our state vector means the edit is stored.
const sv = Buffer.from(Y.encodeStateVector(doc)).toString('base64')
const check = new Y.Doc()
const t1 = Date.now()
while (true) {
  const p = new WebsocketProvider(args.url, args.room, check, { WebSocketPolyfill: WebSocket, disableBc: true, params: { token: args.token } })
  p.awareness.setLocalState(null)
  await new Promise(resolve => { const iv = setInterval(() => { if (p.synced) { clearInterval(iv); resolve() } }, 20) })
  p.destroy()
  if (Buffer.from(Y.encodeStateVector(check)).toString('base64') === sv) break
  if (Date.now() - t1 > 20000) fail('edit not stored')
  await new Promise(resolve => setTimeout(resolve, 100))
}
const resolved = (args.resolve ? args.resolve.split(',') : []).map(b => {
  const abs = Y.createAbsolutePositionFromRelativePosition(Y.decodeRelativePosition(new Uint8Array(Buffer.from(b, 'base64'))), doc, false)
  return abs === null ? null : abs.index
})
console.log(JSON.stringify({ text: text.toString(), resolved }))
provider.destroy()
process.exit(0)
