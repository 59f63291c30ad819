// A y-websocket client edits a document while a REST PATCH changes its body
// (interop_test.sh, scenario rest). It connects, checks the REST-written text
// arrived, inserts "LIVE " at the start, prints "ready" and keeps typing at
// the end of the first line until it sees the text --expect (the REST
// change); then prints {"text": ...} and exits 0. Exit 1 on timeout.
//   node rest_merge.mjs --url ws://HOST:PORT/v1/collab --room ID --token T --initial TEXT|--initial-file F --expect TEXT
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import fs from 'node:fs'

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? a.concat([[v.replace(/^--/, ''), all[i + 1]]]) : a), []))
if (args['initial-file']) args.initial = fs.readFileSync(args['initial-file'], 'utf8')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const doc = new Y.Doc()
const provider = new WebsocketProvider(args.url, args.room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params: { token: args.token } })
provider.awareness.setLocalState(null)
const text = doc.getText('content')
const fail = (why) => { console.log(JSON.stringify({ error: why, text: text.toString() })); process.exit(1) }
const t0 = Date.now()
while (!provider.synced || text.toString() !== args.initial) {
  if (Date.now() - t0 > 20000) fail('the REST-written text did not arrive')
  await sleep(10)
}
text.insert(0, 'LIVE ')
await sleep(300)
console.log('ready')
let typed = 0
while (!text.toString().includes(args.expect)) {
  if (Date.now() - t0 > 40000) fail('the REST change did not arrive')
  if (typed < 40) {
    const eol = text.toString().indexOf('\n')
    text.insert(eol, String(typed % 10))
    typed++
  }
  await sleep(25)
}
// A few more keystrokes after the REST change arrived.
for (let i = 0; i < 5; i++) {
  text.insert(text.toString().indexOf('\n'), 'z')
  await sleep(25)
}
await sleep(500)
console.log(JSON.stringify({ text: text.toString(), typed: typed + 5 }))
provider.destroy()
process.exit(0)
