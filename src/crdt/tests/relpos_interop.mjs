#!/usr/bin/env node
// Relative positions against JavaScript Yjs: JS documents and cnx::crdt
// documents (through crdt_peer) edit concurrently; at synchronised states both
// sides create relative positions for the same indexes (root text "t" and a
// nested Y.Text at m["nested"], every assoc kind) — the encodings and JSON
// forms must be byte-identical — then every replica edits concurrently again,
// all updates are exchanged, and every position ever created (by either side)
// must resolve to the same index and type (or to null) on every replica.
//
//   node relpos_interop.mjs --peer-dir BUILD/peers/yjs --tool BUILD/src/crdt/crdt_peer
//        [--seed 1] [--rounds 8] [--ops 60] [--positions 40]
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import readline from 'node:readline'

const args = process.argv.slice(2)
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d }
const peerDir = path.resolve(opt('--peer-dir', '.'))
const tool = path.resolve(opt('--tool', 'crdt_peer'))
const rounds = Number(opt('--rounds', 8))
const nOps = Number(opt('--ops', 60))
const nPos = Number(opt('--positions', 40))
const require = createRequire(path.join(peerDir, 'package.json'))
const Y = require('yjs')

let rngState = Number(opt('--seed', 1))
const rand = () => { rngState = (rngState * 1103515245 + 12345) % 2147483648; return rngState / 2147483648 }
const ri = n => Math.floor(rand() * n)
const b64 = u => Buffer.from(u).toString('base64')
const unb64 = s => new Uint8Array(Buffer.from(s, 'base64'))

const child = spawn(tool, [], { stdio: ['pipe', 'pipe', 'inherit'] })
const lines = readline.createInterface({ input: child.stdout })
const waiting = []
lines.on('line', l => waiting.shift()(l))
const call = cmd => new Promise(resolve => { waiting.push(resolve); child.stdin.write(cmd + '\n') })

let failures = 0
let checks = 0
const check = (ok, msg) => { checks++; if (!ok) { failures++; if (failures < 20) console.error('FAIL', msg) } }

const pieces = ['a', 'b', 'xyz', 'é', '中文', '😀', ' ', '\n', 'hello']
const bounds = (t) => { const b = [0]; let u = 0; for (const op of t.toDelta()) { if (typeof op.insert !== 'string') { b.push(++u); continue } for (const ch of op.insert) { u += ch.length; b.push(u) } } return b }
const nestedOf = (doc) => { const n = doc.getMap('m').get('nested'); return n instanceof Y.Text ? n : null }
const jsEdit = (doc) => {
  const op = ri(100)
  const t = (op >= 80 && nestedOf(doc)) ? nestedOf(doc) : doc.getText('t')
  const b = bounds(t)
  if (op < 45 || (op >= 80 && op < 90)) {
    let s = ''; for (let i = 1 + ri(3); i > 0; i--) s += pieces[ri(pieces.length)]
    t.insert(b[ri(b.length)], s, ri(6) === 0 ? { bold: true } : undefined)
  } else if (op < 70 || op >= 90) {
    if (b.length < 2) return
    const i = ri(b.length - 1); const j = i + 1 + ri(Math.min(4, b.length - 1 - i))
    t.delete(b[i], b[j] - b[i])
  } else if (op < 76) {
    if (b.length < 2) return
    const i = ri(b.length - 1); const j = i + 1 + ri(b.length - 1 - i)
    t.format(b[i], b[j] - b[i], ri(2) ? { bold: true } : { bold: null })
  } else {
    doc.getMap('m').set('nested', new Y.Text('n' + ri(10)))
  }
}

const gc = opt('--gc', '1') !== '0'
const jsDocs = [0, 1].map(i => { const d = new Y.Doc({ gc }); d.clientID = 100 + i; d.getText('t'); d.getMap('m'); d.getArray('a'); d.getXmlFragment('x'); return d })
const cppIds = ['c0', 'c1']
for (const [i, id] of cppIds.entries()) await call(`new ${id} ${200 + i} ${gc ? 1 : 0}`)

const logs = [] // updates produced since the last sync, per replica: {from, u}
const syncAll = async () => {
  for (const d of jsDocs) logs.push(Y.encodeStateAsUpdate(d))
  for (const id of cppIds) { const s = JSON.parse(await call(`state ${id}`)); logs.push(unb64(s.update)) }
  const merged = Y.mergeUpdates(logs)
  logs.length = 0
  for (const d of jsDocs) Y.applyUpdate(d, merged)
  for (const id of cppIds) { const r = await call(`apply ${id} ${b64(merged)}`); check(r === 'ok', `apply ${r}`) }
  // Converged?
  const ref = JSON.stringify(jsDocs[0].getText('t').toDelta())
  for (const id of cppIds) {
    const s = JSON.parse(await call(`state ${id}`))
    check(b64(Y.encodeStateVector(jsDocs[0])) === s.sv, 'state vectors differ after sync')
    check(s.json.t.length !== undefined, 'text json')
  }
  check(JSON.stringify(jsDocs[1].getText('t').toDelta()) === ref, 'js replicas differ')
}
const editAll = async (n) => {
  for (let k = 0; k < n; k++) {
    for (const d of jsDocs) if (ri(2)) jsEdit(d)
    for (const id of cppIds) if (ri(2)) await call(`edit ${id} ${ri(1e9)}`)
  }
}

// Resolves a position on a JS doc as "INDEX TYPE" / "null", in crdt_peer's form.
const jsResolve = (doc, bytes) => {
  const abs = Y.createAbsolutePositionFromRelativePosition(Y.decodeRelativePosition(bytes), doc, false)
  if (abs === null) return 'null'
  const t = abs.type
  const name = t._item === null ? [...doc.share.entries()].find(([, v]) => v === t)[0] : `${t._item.id.client}:${t._item.id.clock}`
  return `${abs.index} ${name}`
}

const positions = [] // {b64, what}
const stats = { created: 0, resolvedNonNull: 0, resolvedNull: 0, fromJson: 0 }
for (let round = 0; round < rounds; round++) {
  await editAll(nOps)
  await syncAll()
  // Create positions on both sides at the same synchronised state.
  for (let k = 0; k < nPos; k++) {
    const which = ri(4) === 0 ? 'nested' : 't'
    const t = which === 'nested' ? nestedOf(jsDocs[0]) : jsDocs[0].getText('t')
    const len = t ? t.length : 0
    const index = ri(len + 3) // sometimes past the end
    const assoc = [0, -1, 1, -3, 5][ri(5)]
    const cpp = await call(`relpos ${cppIds[ri(2)]} ${which} ${index} ${assoc}`)
    if (!t) { check(cpp === '-', `nested missing on one side only: ${cpp}`); continue }
    const rp = Y.createRelativePositionFromTypeIndex(t, index, assoc)
    const jsBytes = b64(Y.encodeRelativePosition(rp))
    const jsJson = JSON.stringify(Y.relativePositionToJSON(rp))
    const [cppBytes, cppJson] = [cpp.slice(0, cpp.indexOf(' ')), cpp.slice(cpp.indexOf(' ') + 1)]
    check(cppBytes === jsBytes, `encoding ${which} ${index} ${assoc}: js ${jsBytes} cpp ${cppBytes}`)
    check(cppJson === jsJson, `json ${which} ${index} ${assoc}: js ${jsJson} cpp ${cppJson}`)
    // decode / JSON round trips across the implementations
    const decodedJson = JSON.stringify(Y.relativePositionToJSON(Y.decodeRelativePosition(unb64(jsBytes))))
    check(await call(`rpjson ${jsBytes}`) === decodedJson, `decode of js bytes ${jsBytes}`)
    const back = await call(`rpfromjson ${jsJson}`)
    check(back === jsBytes, `from json ${jsJson}: ${back}`)
    stats.fromJson++
    // The same index resolves back where it was made, on both sides.
    const here = jsResolve(jsDocs[0], unb64(jsBytes))
    check(await call(`resolve ${cppIds[0]} ${jsBytes}`) === here, `resolve at creation ${jsJson}`)
    positions.push({ b64: jsBytes, what: `${which}@${index}/${assoc} round ${round}` })
    stats.created++
  }
  // Concurrent edits after the positions were taken, then exchange everything.
  await editAll(nOps)
  await syncAll()
  for (const p of positions) {
    const js = jsResolve(jsDocs[0], unb64(p.b64))
    check(jsResolve(jsDocs[1], unb64(p.b64)) === js, `js replicas resolve ${p.what} differently`)
    for (const id of cppIds) {
      const c = await call(`resolve ${id} ${p.b64}`)
      check(c === js, `resolve ${p.what} on ${id}: js ${js} cpp ${c}`)
    }
    if (js === 'null') stats.resolvedNull++; else stats.resolvedNonNull++
  }
}
// Hand-made positions: every kind, -0 and large assoc, missing assoc.
for (const rp of [new Y.RelativePosition(null, 't', null, -0), new Y.RelativePosition(createIdSafe(7, 9), null, null, 123456789),
  new Y.RelativePosition(null, null, createIdSafe(4294967295, 2 ** 40), -64)]) {
  const bytes = b64(Y.encodeRelativePosition(rp))
  check(await call(`rpjson ${bytes}`) === JSON.stringify(Y.relativePositionToJSON(rp)), `hand-made ${bytes}`)
}
check((await call(`rpjson ${b64(new Uint8Array([1, 1, 0x74]))}`)) === JSON.stringify(Y.relativePositionToJSON(Y.decodeRelativePosition(new Uint8Array([1, 1, 0x74])))), 'missing assoc')
function createIdSafe (client, clock) { return Y.createID(client, clock) }

child.stdin.end()
console.log(JSON.stringify({ checks, failures, ...stats }))
if (failures > 0 || stats.created === 0 || stats.resolvedNonNull === 0) process.exit(1)
