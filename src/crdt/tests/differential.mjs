#!/usr/bin/env node
// Live differential test: random concurrent edits on JavaScript Yjs documents
// and on cnx::crdt documents (through the crdt_peer tool), updates delivered
// both ways in random order; all replicas must converge to identical JSON and
// identical encoded state. Also compares mergeUpdates / diffUpdate bytes.
//
//   node differential.mjs --peer-dir BUILD/peers/yjs --tool BUILD/src/crdt/crdt_peer
//        [--seed 1] [--rounds 3] [--ops 400] [--yjs 3] [--cpp 2]
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import path from 'node:path'
import readline from 'node:readline'

const args = process.argv.slice(2)
const opt = (n, d) => { const i = args.indexOf(n); return i >= 0 ? args[i + 1] : d }
const peerDir = path.resolve(opt('--peer-dir', '.'))
const tool = path.resolve(opt('--tool', 'crdt_peer'))
const rounds = Number(opt('--rounds', 3))
const nOps = Number(opt('--ops', 400))
const nYjs = Number(opt('--yjs', 3))
const nCpp = Number(opt('--cpp', 2))
const seed0 = Number(opt('--seed', 1))
const require = createRequire(path.join(peerDir, 'package.json'))
const Y = require('yjs')

let rngState = 1
const rand = () => { rngState = (rngState * 1103515245 + 12345) % 2147483648; return rngState / 2147483648 }
const ri = n => Math.floor(rand() * n)
const b64 = u => Buffer.from(u).toString('base64')
const unb64 = s => new Uint8Array(Buffer.from(s, 'base64'))

// --- the C++ side
const child = spawn(tool, [], { stdio: ['pipe', 'pipe', 'inherit'] })
const lines = readline.createInterface({ input: child.stdout })
const waiting = []
lines.on('line', l => waiting.shift()(l))
const call = cmd => new Promise(resolve => { waiting.push(resolve); child.stdin.write(cmd + '\n') })

// --- canonical JSON
const norm = (v) => {
  if (v === undefined) return { $undefined: true }
  if (v === null || typeof v === 'boolean' || typeof v === 'string') return v
  if (typeof v === 'number') return Object.is(v, -0) ? { $number: '-0' } : v
  if (v instanceof Uint8Array) return { $binary: b64(v) }
  if (v instanceof Y.Text) return { $ytype: 'YText', value: v.toString() }
  if (v instanceof Y.Array) return { $ytype: 'YArray', value: v.toArray().map(norm) }
  if (v instanceof Y.Map) { const o = {}; for (const k of [...v.keys()].sort()) o[k] = norm(v.get(k)); return { $ytype: 'YMap', value: o } }
  if (Array.isArray(v)) return v.map(norm)
  const o = {}
  for (const k of Object.keys(v).sort()) o[k] = norm(v[k])
  return o
}
const canon = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x)) ? Object.fromEntries(Object.keys(x).sort().map(k2 => [k2, x[k2]])) : x)
const delta = (t) => t.toDelta().map(op => op.attributes ? { insert: norm(op.insert), attributes: norm(op.attributes) } : { insert: norm(op.insert) })
const xml = (n) => {
  if (n instanceof Y.XmlText) return { kind: 'text', delta: delta(n), attributes: norm(n.getAttributes()) }
  if (n instanceof Y.XmlElement) return { kind: 'element', nodeName: n.nodeName, attributes: norm(n.getAttributes()), children: n.toArray().map(xml) }
  return { kind: 'fragment', children: n.toArray().map(xml) }
}
const yjsState = (doc) => {
  const m = {}
  const ym = doc.getMap('m')
  for (const k of [...ym.keys()].sort()) m[k] = norm(ym.get(k))
  const t = doc.getText('t').toDelta().map(op => op.attributes ? { insert: norm(op.insert), attributes: norm(op.attributes) } : { insert: norm(op.insert) })
  return { t, m, a: doc.getArray('a').toArray().map(norm), x: xml(doc.getXmlFragment('x')) }
}

// --- random edits on a yjs document (same op mix as crdt_peer)
// Offsets never fall inside a surrogate pair: JavaScript Yjs itself does not
// converge when a pair gets split next to concurrent formatting (protocol notes).
const pieces = ['a', 'b', 'xyz', 'é', '中文', '😀', ' ', '\n', 'hello']
// UTF-16 offsets of code point boundaries; embeds count one unit.
const bounds = (t) => { const b = [0]; let u = 0; for (const op of t.toDelta()) { if (typeof op.insert !== 'string') { b.push(++u); continue } for (const ch of op.insert) { u += ch.length; b.push(u) } } return b }
const randValue = () => {
  switch (ri(8)) {
    case 0: return ri(2001) - 1000
    case 1: return ri(2) ? 0.5 : 1e10 + 0.25
    case 2: return 's' + ri(100) + (ri(3) === 0 ? 'é😀' : '')
    case 3: return ri(2) === 1
    case 4: return null
    case 5: return { x: [1, 'y'], n: ri(50) }
    case 6: return new Uint8Array([1, 2, 255])
    default: return [ri(7), null]
  }
}
const yjsEdit = (doc) => {
  const t = doc.getText('t'); const m = doc.getMap('m'); const a = doc.getArray('a')
  const op = ri(100)
  const b = bounds(t)
  doc.transact(() => {
    if (op < 35) {
      let s = ''; for (let i = 1 + ri(3); i > 0; i--) s += pieces[ri(pieces.length)]
      if (ri(5) === 0) t.insert(b[ri(b.length)], s, { bold: true }); else t.insert(b[ri(b.length)], s)
    } else if (op < 55) {
      if (b.length < 2) return
      const i = ri(b.length - 1); const j = i + 1 + ri(Math.min(4, b.length - 1 - i))
      t.delete(b[i], b[j] - b[i])
    } else if (op < 57) {
      t.insertEmbed(b[ri(b.length)], { image: 'i' + ri(5) }, ri(2) ? { bold: true } : {})
    } else if (op < 63) {
      if (b.length < 2) return
      const i = ri(b.length - 1); const j = i + 1 + ri(b.length - 1 - i)
      const attrs = [{ bold: true }, { bold: null }, { color: ri(2) ? '#f00' : '#0f0' }][ri(3)]
      t.format(b[i], b[j] - b[i], attrs)
    } else if (op < 76) {
      m.set('k' + ri(6), randValue())
    } else if (op < 79) {
      const sub = new Y.Text(); m.set('nested', sub); sub.insert(0, 'n' + ri(10))
    } else if (op < 83) {
      m.delete('k' + ri(6))
    } else if (op < 94) {
      const vals = []; for (let i = 1 + ri(3); i > 0; i--) vals.push(randValue())
      a.insert(ri(a.length + 1), vals)
    } else if (op < 97) {
      if (a.length === 0) return
      const i = ri(a.length); a.delete(i, 1 + ri(Math.min(3, a.length - i)))
    } else {
      xmlEdit(doc.getXmlFragment('x'))
    }
  })
}
const xmlEdit = (x) => {
  const els = x.toArray().filter(n => n instanceof Y.XmlElement)
  const k = ri(5)
  if (k === 0 || els.length === 0) {
    const el = new Y.XmlElement(['p', 'h1', 'li'][ri(3)])
    x.insert(ri(x.length + 1), [el])
    const xt = new Y.XmlText(); el.insert(0, [xt]); xt.insert(0, 'x' + ri(100))
  } else if (k === 1) {
    els[ri(els.length)].setAttribute('a' + ri(3), 'v' + ri(10))
  } else if (k === 2) {
    const el = els[ri(els.length)]; const kids = el.toArray()
    const xt = kids.find(n => n instanceof Y.XmlText)
    if (xt) { const p = ri(xt.length + 1); ri(2) ? xt.insert(p, 'y' + ri(9), ri(2) ? { bold: true } : undefined) : (xt.length && xt.format(0, 1 + ri(xt.length), { italic: ri(2) ? true : null })) }
  } else if (k === 3) {
    x.delete(ri(x.length), 1)
  } else {
    const el = els[ri(els.length)]; if (el.length) el.delete(0, 1)
  }
}

const fail = (msg) => { console.log(JSON.stringify({ ok: false, error: msg })); child.kill(); process.exit(1) }

const runRound = async (round) => {
  rngState = seed0 * 1000 + round
  const peers = []
  for (let i = 0; i < nYjs; i++) {
    const doc = new Y.Doc({ gc: round % 2 === 0 }); doc.clientID = 1000 + round * 100 + i
    doc.on('afterTransaction', tr => { tr._needFormattingCleanup = false })
    const out = []
    doc.on('update', (u, origin) => { if (origin !== 'remote') out.push(u) })
    peers.push({ kind: 'yjs', doc, out, inbox: [] })
  }
  for (let i = 0; i < nCpp; i++) {
    const id = `r${round}c${i}`
    const client = 2000 + round * 100 + i
    if (await call(`new ${id} ${client} ${round % 2 === 0 ? 1 : 0}`) !== 'ok') fail('new failed')
    peers.push({ kind: 'cpp', id, inbox: [] })
  }
  const all = []
  const deliver = async (p, u) => {
    if (p.kind === 'yjs') Y.applyUpdate(p.doc, u, 'remote')
    else { const r = await call(`apply ${p.id} ${b64(u)}`); if (r !== 'ok') fail(`apply on C++: ${r}`) }
  }
  for (let step = 0; step < nOps; step++) {
    const src = peers[ri(peers.length)]
    let u = null
    if (src.kind === 'yjs') {
      yjsEdit(src.doc)
      if (src.out.length) u = src.out.length === 1 ? src.out[0] : Y.mergeUpdates(src.out)
      src.out.length = 0
    } else {
      const r = await call(`edit ${src.id} ${ri(1e9)}`)
      if (r.startsWith('err')) fail(r)
      if (r !== '-') u = unb64(r)
    }
    if (u) {
      all.push(u)
      for (const p of peers) if (p !== src) p.inbox.push(u)
    }
    // deliver a few pending updates in random order (out of order on purpose)
    for (let k = ri(3); k > 0; k--) {
      const p = peers[ri(peers.length)]
      if (p.inbox.length) await deliver(p, p.inbox.splice(ri(p.inbox.length), 1)[0])
    }
    // occasionally a sync step 2 from a random peer to another (state-vector diff)
    if (ri(40) === 0) {
      const a = peers[ri(peers.length)]; const b = peers[ri(peers.length)]
      if (a !== b) {
        const sv = b.kind === 'yjs' ? Y.encodeStateVector(b.doc) : unb64(JSON.parse(await call(`state ${b.id}`)).sv)
        const d = a.kind === 'yjs' ? Y.encodeStateAsUpdate(a.doc, sv) : unb64(await call(`diff ${a.id} ${b64(sv)}`))
        await deliver(b, d)
      }
    }
  }
  for (const p of peers) while (p.inbox.length) await deliver(p, p.inbox.splice(ri(p.inbox.length), 1)[0])
  const states = []
  for (const p of peers) {
    if (p.kind === 'yjs') states.push({ json: canon(yjsState(p.doc)), xml: p.doc.getXmlFragment('x').toString(), sv: b64(Y.encodeStateVector(p.doc)), update: b64(Y.encodeStateAsUpdate(p.doc)) })
    else { const s = JSON.parse(await call(`state ${p.id}`)); states.push({ json: canon(s.json), xml: s.xmlString, sv: s.sv, update: s.update }) }
  }
  for (let i = 1; i < states.length; i++) {
    if (states[i].json !== states[0].json) fail(`round ${round}: JSON differs between peer 0 (${peers[0].kind}) and peer ${i} (${peers[i].kind})\n${states[0].json}\n${states[i].json}`)
    if (states[i].xml !== states[0].xml) fail(`round ${round}: XML string differs (peer ${i})\n${states[0].xml}\n${states[i].xml}`)
    if (states[i].sv !== states[0].sv) fail(`round ${round}: state vector differs (peer ${i})`)
    if (states[i].update !== states[0].update) fail(`round ${round}: encoded state differs between peer 0 (${peers[0].kind}) and peer ${i} (${peers[i].kind})`)
  }
  // update algebra without a document, on the same inputs
  const merged = b64(Y.mergeUpdates(all))
  const ours = await call(`merge ${all.map(b64).join(' ')}`)
  if (ours !== merged) fail(`round ${round}: mergeUpdates bytes differ`)
  const half = new Y.Doc({ gc: round % 2 === 0 }); for (const u of all.slice(0, all.length >> 1)) Y.applyUpdate(half, u)
  const sv = Y.encodeStateVector(half)
  const full = Y.encodeStateAsUpdate(peers[0].doc)
  if (await call(`diffupdate ${b64(full)} ${b64(sv)}`) !== b64(Y.diffUpdate(full, sv))) fail(`round ${round}: diffUpdate bytes differ`)
  return { updates: all.length, textLength: peers[0].doc.getText('t').length }
}

const t0 = Date.now()
const results = []
for (let r = 0; r < rounds; r++) results.push(await runRound(r))
child.stdin.write('quit\n')
child.stdin.end()
console.log(JSON.stringify({ ok: true, rounds, ops: nOps, yjs: nYjs, cpp: nCpp, results, ms: Date.now() - t0 }))
process.exit(0)
