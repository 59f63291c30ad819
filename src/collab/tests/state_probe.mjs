// Connects one y-websocket client to a room, waits for sync, prints the
// document's state vector and canonical JSON (the interop client's form) as
// one JSON line. Run from a directory where yjs, y-websocket and ws resolve.
//   node state_probe.mjs --url ws://HOST:PORT/v1/collab --room ID --token T [--hold-ms N]
// With --hold-ms it announces a presence with a cursor and stays N ms.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? a.concat([[v.replace(/^--/, ''), all[i + 1]]]) : a), []))
const canon = (v) => {
  if (v instanceof Uint8Array) return { $binary: Buffer.from(v).toString('base64') }
  if (Array.isArray(v)) return v.map(canon)
  if (v && typeof v === 'object') {
    const o = {}
    for (const k of Object.keys(v).sort()) o[k] = canon(v[k])
    return o
  }
  return v
}
const doc = new Y.Doc()
const provider = new WebsocketProvider(args.url, args.room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params: { token: args.token } })
if (args['hold-ms']) {
  provider.awareness.setLocalState({ user: { name: 'probe' }, cursor: { anchor: { type: null, tname: 'text', item: null, assoc: 0 }, head: { type: null, tname: 'text', item: null, assoc: -1 } } })
} else {
  provider.awareness.setLocalState(null)
}
const t0 = Date.now()
const timer = setInterval(() => {
  if (provider.synced) {
    clearInterval(timer)
    const out = {
      sv: Buffer.from(Y.encodeStateVector(doc)).toString('base64'),
      json: JSON.stringify(canon({ text: doc.getText('text').toDelta(), map: doc.getMap('map').toJSON(), array: doc.getArray('array').toJSON() })),
      ms: Date.now() - t0
    }
    console.log(JSON.stringify(out))
    setTimeout(() => { provider.destroy(); process.exit(0) }, Number(args['hold-ms'] ?? 0))
  } else if (Date.now() - t0 > 20000) {
    console.log(JSON.stringify({ error: 'timeout waiting for sync' }))
    process.exit(1)
  }
}, 10)
