// A viewer's update must be refused with a messageAuth frame while the
// connection stays up and keeps receiving. Prints one JSON line; exit 0 on success.
//   node viewer.mjs --url ws://HOST:PORT/v1/collab --room ID --token VIEWER_TOKEN
import * as Y from 'yjs'
import WebSocket from 'ws'

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? a.concat([[v.replace(/^--/, ''), all[i + 1]]]) : a), []))
const ws = new WebSocket(`${args.url}/${args.room}?token=${encodeURIComponent(args.token)}`)
const doc = new Y.Doc()
const update = Y.encodeStateAsUpdate((() => { const d = new Y.Doc(); d.getText('text').insert(0, 'viewer was here'); return d })())
const varUint = (n) => { const out = []; while (n > 127) { out.push(0x80 | (n & 127)); n >>>= 7 } out.push(n); return out }
const frame = (type, sub, data) => Buffer.from([type, sub, ...varUint(data.length), ...data])
let denied = null
let gotStep1 = false
let gotStep2 = false
ws.on('open', () => ws.send(frame(0, 0, Y.encodeStateVector(doc))))
ws.on('message', (data) => {
  const b = new Uint8Array(data)
  if (b[0] === 0 && b[1] === 0 && !gotStep1) { gotStep1 = true; ws.send(frame(0, 2, update)) }
  if (b[0] === 0 && b[1] === 1) gotStep2 = true
  if (b[0] === 2 && b[1] === 0) denied = Buffer.from(b.slice(3)).toString()
})
let closed = false
ws.on('close', () => { closed = true })
setTimeout(() => {
  // still up: a fresh step 1 is still answered
  gotStep2 = false
  if (!closed) ws.send(frame(0, 0, Y.encodeStateVector(doc)))
  setTimeout(() => {
    const ok = denied !== null && !closed && gotStep2
    console.log(JSON.stringify({ ok, denied, closed, answered: gotStep2 }))
    ws.close()
    process.exit(ok ? 0 : 1)
  }, 1000)
}, 1500)
