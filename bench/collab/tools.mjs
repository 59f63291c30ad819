// Helpers of bench/collab/run.sh (run from the installed yjs peer directory).
//
//   node tools.mjs gen TRACE.json.gz N OUT.jsonl
//       the first N patches of an editing trace, each one Yjs transaction on
//       Y.Text "content" of one client; writes one base64 update per line.
//   node tools.mjs copy UPDATES.jsonl TENANT DOCUMENT OUT.tsv
//       the same updates as COPY rows for operations_log
//       (tenant_id, document_id, client_id, clock, update).
//   node tools.mjs leveldb-store UPDATES.jsonl DIR NAME
//       stores every update in a y-leveldb database (the persistence of the
//       reference server, YPERSISTENCE).
//   node tools.mjs leveldb-load DIR NAME
//       loads the document like the reference server does (getYDoc); prints
//       {"ms":..., "length":...}.
//   node tools.mjs fill --url U --rooms FILE [--token T] [--ops 200] [--parallel 8]
//       for every room (one per line): connect a y-websocket client, make
//       --ops typing edits, wait until they are echoed, disconnect.
//   node tools.mjs sync --url U --room R [--token T]
//       connects one client, prints {"ms": connect-to-synced, "length": text length}.
import fs from 'node:fs'
import zlib from 'node:zlib'
import * as Y from 'yjs'

process.setMaxListeners(0) // one exit listener per WebsocketProvider

const [cmd, ...rest] = process.argv.slice(2)
const opt = (name, def) => {
  const i = rest.indexOf(name)
  return i >= 0 && i + 1 < rest.length ? rest[i + 1] : def
}
const readUpdates = (file) => fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => new Uint8Array(Buffer.from(l, 'base64')))

if (cmd === 'gen') {
  const [tracePath, n, out] = rest
  const trace = JSON.parse(zlib.gunzipSync(fs.readFileSync(tracePath)).toString('utf8'))
  const doc = new Y.Doc()
  doc.clientID = 424242
  const text = doc.getText('content')
  const lines = []
  doc.on('update', (u) => lines.push(Buffer.from(u).toString('base64')))
  outer: for (const txn of trace.txns) {
    for (const [pos, del, ins] of txn.patches) {
      if (lines.length >= Number(n)) break outer
      doc.transact(() => {
        if (del > 0) text.delete(pos, del)
        if (ins) text.insert(pos, ins)
      })
    }
  }
  fs.writeFileSync(out, lines.join('\n') + '\n')
  console.log(JSON.stringify({ updates: lines.length, length: text.length }))
} else if (cmd === 'copy') {
  const [file, tenant, document, out] = rest
  const rows = readUpdates(file).map((u) => {
    const d = Y.decodeUpdate(u)
    const s = d.structs[0]
    const client = s ? s.id.client : 0
    const clock = s ? s.id.clock : 0
    return `${tenant}\t${document}\t${client}\t${clock}\t\\\\x${Buffer.from(u).toString('hex')}`
  })
  fs.writeFileSync(out, rows.join('\n') + '\n')
} else if (cmd === 'leveldb-store') {
  const { LeveldbPersistence } = await import('y-leveldb')
  const [file, dir, name] = rest
  const ldb = new LeveldbPersistence(dir)
  for (const u of readUpdates(file)) await ldb.storeUpdate(name, u)
  await ldb.destroy()
} else if (cmd === 'leveldb-load') {
  const { LeveldbPersistence } = await import('y-leveldb')
  const [dir, name] = rest
  const ldb = new LeveldbPersistence(dir)
  const t0 = performance.now()
  const doc = await ldb.getYDoc(name)
  const ms = performance.now() - t0
  console.log(JSON.stringify({ ms: +ms.toFixed(1), length: doc.getText('content').length }))
  await ldb.destroy()
} else if (cmd === 'fill' || cmd === 'sync') {
  const { WebsocketProvider } = await import('y-websocket')
  const WebSocket = (await import('ws')).default
  const url = opt('--url')
  const token = opt('--token', '')
  const params = token ? { token } : {}
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  const connect = async (room) => {
    const doc = new Y.Doc()
    const t0 = performance.now()
    const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params })
    provider.awareness.setLocalState(null)
    while (!provider.synced) {
      if (performance.now() - t0 > 120000) throw new Error(`timeout syncing ${room}`)
      await sleep(1)
    }
    return { doc, provider, ms: performance.now() - t0 }
  }
  if (cmd === 'sync') {
    const c = await connect(opt('--room'))
    console.log(JSON.stringify({ ms: +c.ms.toFixed(1), length: c.doc.getText('content').length }))
    c.provider.destroy()
    process.exit(0)
  }
  const rooms = fs.readFileSync(opt('--rooms'), 'utf8').trim().split('\n')
  const ops = Number(opt('--ops', 200))
  const parallel = Number(opt('--parallel', 8))
  const words = 'the quick brown fox jumps over a lazy dog while collaborative editors merge every keystroke'.split(' ')
  let next = 0
  const one = async (room) => {
    const c = await connect(room)
    const text = c.doc.getText('content')
    // Typing: words appended at a moving cursor, a few deletions.
    let cursor = 0
    for (let k = 0; k < ops; k++) {
      if (k % 10 === 9 && cursor > 2) {
        text.delete(cursor - 2, 2)
        cursor -= 2
      } else {
        const w = words[k % words.length] + ' '
        text.insert(cursor, w)
        cursor += w.length
      }
    }
    // Echo: a fresh state vector from the server must cover ours.
    const sv = Y.encodeStateVector(c.doc)
    const t0 = performance.now()
    for (;;) {
      const probe = new Y.Doc()
      const p = new WebsocketProvider(url, room, probe, { WebSocketPolyfill: WebSocket, disableBc: true, params })
      p.awareness.setLocalState(null)
      while (!p.synced) await sleep(1)
      const same = Buffer.compare(Buffer.from(Y.encodeStateVector(probe)), Buffer.from(sv)) === 0
      p.destroy()
      if (same) break
      if (performance.now() - t0 > 30000) throw new Error(`edits of ${room} not echoed`)
      await sleep(20)
    }
    c.provider.destroy()
  }
  const runners = Array.from({ length: parallel }, async () => {
    while (next < rooms.length) await one(rooms[next++])
  })
  await Promise.all(runners)
  console.log(JSON.stringify({ rooms: rooms.length, ops }))
  process.exit(0)
} else {
  console.error('usage: node tools.mjs gen|copy|leveldb-store|leveldb-load|fill|sync ...')
  process.exit(2)
}
