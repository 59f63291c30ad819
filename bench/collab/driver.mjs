// Client workload of the collaboration benchmark: real y-websocket clients
// (WebsocketProvider + Y.Doc) in one room, spread over worker processes.
// Run from a directory where yjs, y-websocket and ws resolve (the installed peer).
//
//   node driver.mjs --url ws://HOST:PORT[/path] --room ID [--token T] [--clients 50] [--procs 2]
//        [--rate 200] [--seconds 5] [--warmup 1] [--burst 100]
//
// Phase 1 (latency): every client inserts a marker into the shared Y.Text at
// a fixed total rate (--rate updates/s over all clients) for --seconds; every
// other client records the time from the sender's insert to its own
// observation of the update (broadcast latency); the first --warmup seconds
// run at the same rate unrecorded (connections, caches and JIT settle). Markers are read from what
// each remote transaction added (struct store, by client and clock range),
// so a server that merges several updates into one message is measured the
// same way as one that relays each.
// Phase 2 (throughput): every client inserts --burst markers as fast as its
// event loop allows; the clock runs until every client has observed every
// other client's markers. updates/s = clients * burst / elapsed.
// Phase 3 (server throughput, --light-burst N, after the real clients left):
// the same number of fresh connections, each a protocol-level client that
// sends N precomputed Yjs updates (its own Y.Doc's inserts, encoded before
// the clock starts) as fast as its event loop allows and reads what it
// receives only as far as each update's client/clock ranges
// (Y.parseUpdateMeta), without integrating it. The clock runs until every
// connection has received every other connection's last clock. The same
// light clients against both servers take the clients' integration work out
// of the figure: what is left is the server's (receive, apply, persist,
// fan out) and the kernel's.
// Prints one JSON line with all phases.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'

const argv = process.argv.slice(2)
const opt = (name, def) => {
  const i = argv.indexOf(name)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : def
}
const now = () => performance.timeOrigin + performance.now()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

if (argv.includes('--worker')) {
  await worker()
} else {
  await coordinator()
}

function percentile (sorted, p) {
  if (sorted.length === 0) return null
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return +sorted[i].toFixed(3)
}

async function coordinator () {
  const clients = Number(opt('--clients', 50))
  const procs = Math.max(1, Math.min(clients, Number(opt('--procs', 2))))
  const rate = Number(opt('--rate', 200))
  const seconds = Number(opt('--seconds', 5))
  const warmup = Number(opt('--warmup', 0))
  const burst = Number(opt('--burst', 100))
  const lightBurst = Number(opt('--light-burst', 0))
  const workers = []
  for (let k = 0; k < procs; k++) {
    const from = Math.floor((k * clients) / procs)
    const to = Math.floor(((k + 1) * clients) / procs)
    const w = fork(fileURLToPath(import.meta.url), [...argv, '--worker', '--from', String(from), '--to', String(to)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    workers.push(w)
  }
  const inbox = workers.map(() => [])
  const waiters = workers.map(() => [])
  workers.forEach((w, i) => {
    w.on('message', (m) => { const q = waiters[i].shift(); if (q) q(m); else inbox[i].push(m) })
    w.on('exit', (code) => { if (code !== 0) { console.error(`worker ${i} exited with ${code}`); process.exit(1) } })
  })
  const next = (i) => inbox[i].length ? Promise.resolve(inbox[i].shift()) : new Promise((resolve) => waiters[i].push(resolve))
  const all = () => Promise.all(workers.map((_, i) => next(i)))
  const send = (m) => workers.forEach((w) => w.send(m))
  const tConnect = now()
  const ready = await all()
  const connectMs = now() - tConnect
  if (ready.some((r) => r.error)) { console.error(JSON.stringify(ready)); process.exit(1) }

  // Phase 1: fixed rate.
  send({ phase: 'latency', perClientIntervalMs: (1000 * clients) / rate, seconds, warmup, clients, startAt: now() + 100 })
  const lat = await all()
  const latencies = lat.flatMap((r) => r.latencies).sort((a, b) => a - b)
  const sent1 = lat.reduce((a, r) => a + r.sent, 0)
  const warm1 = lat.reduce((a, r) => a + r.warm, 0)

  // Phase 2: as fast as possible.
  const goAt = now() + 200
  send({ phase: 'burst', burst, clients, goAt })
  const bur = await all()
  const doneAt = Math.max(...bur.map((r) => r.doneAt))
  const elapsedMs = doneAt - goAt
  const latencies2 = bur.flatMap((r) => r.latencies).sort((a, b) => a - b)
  send({ phase: 'stop' })
  const fin = await all()
  const lengths = new Set(fin.flatMap((r) => r.lengths))
  let light = null
  if (lightBurst > 0) {
    send({ phase: 'light-connect', burst: lightBurst, clients })
    const ready = await all()
    if (ready.some((r) => r.error)) { console.error(JSON.stringify(ready)); process.exit(1) }
    const goAt = now() + 200
    send({ phase: 'light', goAt })
    const res = await all()
    const elapsedMs = Math.max(...res.map((r) => r.doneAt)) - goAt
    const frames = res.reduce((a, r) => a + r.frames, 0)
    light = {
      updates: clients * lightBurst,
      elapsedMs: +elapsedMs.toFixed(1),
      updatesPerSec: +((clients * lightBurst * 1000) / elapsedMs).toFixed(1),
      framesPerClient: +(frames / clients).toFixed(1),
      complete: res.every((r) => r.ok)
    }
  }
  send({ phase: 'exit' })
  console.log(JSON.stringify({
    clients,
    procs,
    connectMs: +connectMs.toFixed(1),
    fixedRate: { offeredPerSec: rate, seconds, warmupSeconds: warmup, warmupSent: warm1, sent: sent1, observations: latencies.length, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), maxMs: percentile(latencies, 100) },
    burst: { updates: clients * burst, elapsedMs: +elapsedMs.toFixed(1), updatesPerSec: +((clients * burst * 1000) / elapsedMs).toFixed(1), deliveredPerSec: +((clients * burst * (clients - 1) * 1000) / elapsedMs).toFixed(1), p50Ms: percentile(latencies2, 50), p99Ms: percentile(latencies2, 99) },
    ...(light ? { lightBurst: light } : {}),
    converged: lengths.size === 1 && (!light || light.complete)
  }))
  process.exit(lengths.size === 1 && (!light || light.complete) ? 0 : 1)
}

async function worker () {
  const Y = await import('yjs')
  const { WebsocketProvider } = await import('y-websocket')
  const WebSocket = (await import('ws')).default
  const url = opt('--url')
  const room = opt('--room')
  const token = opt('--token', '')
  const from = Number(opt('--from'))
  const to = Number(opt('--to'))
  const params = token ? { token } : {}
  let recording = null // latencies of the current phase
  let recordFrom = 0 // ... of markers sent from this time on
  const marker = /(\d+)@(\d+\.\d{3})\|/g
  const cs = []
  for (let i = from; i < to; i++) {
    const doc = new Y.Doc()
    const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WebSocket, disableBc: true, params, maxBackoffTime: 1000 })
    provider.awareness.setLocalState({ user: { name: `bench-${i}` } })
    const text = doc.getText('content')
    const c = { i, doc, provider, text, seen: 0, sent: 0 }
    // The markers this transaction inserted, read from the struct store by
    // client and clock range (what the transaction added): robust to a
    // server that merges several updates into one message, where a marker
    // can be split by another inserted in the same transaction (a delta
    // would then show it in pieces).
    text.observe((ev) => {
      if (ev.transaction.local) return
      const t = now()
      const before = ev.transaction.beforeState
      for (const [client, after] of ev.transaction.afterState) {
        const from = before.get(client) || 0
        if (after <= from) continue
        const structs = doc.store.clients.get(client)
        let s = ''
        for (let k = Y.findIndexSS(structs, from); k < structs.length && structs[k].id.clock < after; k++) {
          const content = structs[k].content
          if (content instanceof Y.ContentString && !structs[k].deleted) s += content.str
        }
        for (const m of s.matchAll(marker)) {
          if (Number(m[1]) === i) continue
          c.seen++
          if (recording && Number(m[2]) >= recordFrom) recording.push(t - Number(m[2]))
        }
      }
    })
    cs.push(c)
  }
  const t0 = Date.now()
  while (!cs.every((c) => c.provider.synced)) {
    if (Date.now() - t0 > 60000) { process.send({ error: 'timeout waiting for sync' }); await sleep(100); process.exit(1) }
    await sleep(5)
  }
  process.send({ ready: true })
  let rnd = 0x9e3779b9 ^ from
  const random = () => { rnd ^= rnd << 13; rnd ^= rnd >>> 17; rnd ^= rnd << 5; return (rnd >>> 0) / 4294967296 }
  const insert = (c, at = now()) => {
    const pos = Math.floor(random() * (c.text.length + 1))
    c.text.insert(pos, `${c.i}@${at.toFixed(3)}|`)
    c.sent++
  }
  // Light clients (phase 3): client ids and texts follow from the index, so
  // every worker knows every client's final clock.
  let light = null
  const lightId = (k) => 0x40000000 + k
  const lightMarker = (k, r) => `L${k}#${r}|`
  const connectLight = async (burst, clients) => {
    const encoding = await import('lib0/encoding')
    const decoding = await import('lib0/decoding')
    const finalClock = []
    for (let k = 0; k < clients; k++) {
      let n = 0
      for (let r = 0; r < burst; r++) n += lightMarker(k, r).length
      finalClock.push(n)
    }
    const ls = []
    for (let i = from; i < to; i++) {
      const doc = new Y.Doc()
      doc.clientID = lightId(i)
      const updates = []
      doc.on('update', (u) => updates.push(u))
      const text = doc.getText('content')
      let seed = 0x2545f491 ^ i
      for (let r = 0; r < burst; r++) {
        seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5
        text.insert(((seed >>> 0) % (text.length + 1)), lightMarker(i, r))
      }
      const frames = updates.map((u) => {
        const e = encoding.createEncoder()
        encoding.writeVarUint(e, 0) // messageSync
        encoding.writeVarUint(e, 2) // messageYjsUpdate
        encoding.writeVarUint8Array(e, u)
        return encoding.toUint8Array(e)
      })
      const qs = token ? `?token=${encodeURIComponent(token)}` : ''
      const ws = new WebSocket(`${url}/${room}${qs}`)
      ws.binaryType = 'arraybuffer'
      const seen = new Map()
      const l = { ws, frames, received: 0, missing: clients - 1, doneAt: 0 }
      ws.on('message', (data) => {
        const d = decoding.createDecoder(new Uint8Array(data))
        if (decoding.readVarUint(d) !== 0) return
        const type = decoding.readVarUint(d)
        if (type !== 1 && type !== 2) return
        l.received++
        for (const [client, clock] of Y.parseUpdateMeta(decoding.readVarUint8Array(d)).to) {
          const k = client - lightId(0)
          if (k < 0 || k >= clients || k === i) continue
          const before = seen.get(client) || 0
          if (before < finalClock[k] && clock >= finalClock[k]) {
            if (--l.missing === 0) l.doneAt = now()
          }
          if (clock > before) seen.set(client, clock)
        }
      })
      await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject) })
      ls.push(l)
    }
    return ls
  }
  const waitSeen = async (expected, timeoutMs) => {
    const start = Date.now()
    while (!cs.every((c) => c.seen >= expected(c))) {
      if (Date.now() - start > timeoutMs) return false
      await sleep(1)
    }
    return true
  }
  process.on('message', async (m) => {
    if (m.phase === 'latency') {
      while (now() < m.startAt) await sleep(1)
      recording = []
      const start = m.startAt
      recordFrom = start + m.warmup * 1000
      const end = recordFrom + m.seconds * 1000
      // Staggered start: client i sends at start + offset(i) + k * interval.
      const offsets = cs.map((c) => (c.i / m.clients) * m.perClientIntervalMs)
      const count = cs.map(() => 0)
      let warm = 0 // sent during the warm-up
      const base = cs.map((c) => c.seen)
      while (now() < end) {
        const t = now()
        cs.forEach((c, k) => {
          while (start + offsets[k] + count[k] * m.perClientIntervalMs <= t) {
            const at = +now().toFixed(3) // as written into the marker
            if (at < recordFrom) warm++
            insert(c, at)
            count[k]++
          }
        })
        await sleep(1)
      }
      const sent = count.reduce((a, b) => a + b, 0) - warm
      // Let the tail drain (the totals of the other workers are not known here).
      await sleep(1500)
      const latencies = recording
      recording = null
      process.send({ sent, warm, latencies, seen: cs.reduce((a, c, k) => a + c.seen - base[k], 0) })
    } else if (m.phase === 'burst') {
      const base = cs.map((c) => c.seen)
      while (now() < m.goAt) await sleep(1)
      recording = []
      for (let r = 0; r < m.burst; r++) {
        for (const c of cs) insert(c)
        await new Promise((resolve) => setImmediate(resolve))
      }
      const others = m.burst * (m.clients - 1)
      const ok = await waitSeen((c) => base[cs.indexOf(c)] + others, 120000)
      const doneAt = now()
      const latencies = recording
      recording = null
      process.send({ doneAt, latencies, ok })
    } else if (m.phase === 'stop') {
      await sleep(500)
      const lengths = cs.map((c) => c.text.length)
      cs.forEach((c) => c.provider.destroy())
      process.send({ lengths })
    } else if (m.phase === 'light-connect') {
      try {
        light = await connectLight(m.burst, m.clients)
        process.send({ ready: true })
      } catch (e) {
        process.send({ error: String(e) })
      }
    } else if (m.phase === 'light') {
      while (now() < m.goAt) await sleep(1)
      const burst = light[0].frames.length
      for (let r = 0; r < burst; r++) {
        for (const l of light) l.ws.send(l.frames[r])
        await new Promise((resolve) => setImmediate(resolve))
      }
      const start = Date.now()
      while (!light.every((l) => l.missing === 0) && Date.now() - start < 120000) await sleep(1)
      const doneAt = Math.max(...light.map((l) => l.doneAt || now()))
      process.send({ doneAt, ok: light.every((l) => l.missing === 0), frames: light.reduce((a, l) => a + l.received, 0) })
      light.forEach((l) => l.ws.close())
    } else if (m.phase === 'exit') {
      await sleep(100)
      process.exit(0)
    }
  })
}
