// Hostile clients against one room: each must be closed with the expected
// code while the room keeps serving. Prints one JSON line; exit 0 on success.
//   node hostile.mjs --url ws://HOST:PORT/v1/collab --room ID --token T
import WebSocket from 'ws'

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (i % 2 === 0 ? a.concat([[v.replace(/^--/, ''), all[i + 1]]]) : a), []))
const target = `${args.url}/${args.room}?token=${encodeURIComponent(args.token)}`

const attack = (name, send, expected, url = target) => new Promise((resolve) => {
  const ws = new WebSocket(url)
  const timer = setTimeout(() => { ws.terminate(); resolve({ name, ok: false, got: 'timeout' }) }, 15000)
  ws.on('open', () => send(ws))
  ws.on('error', () => {})
  ws.on('close', (code) => { clearTimeout(timer); resolve({ name, ok: expected.includes(code), got: code }) })
})

const results = []
results.push(await attack('unknown-type', ws => ws.send(Buffer.from([9, 1, 2])), [4400]))
results.push(await attack('truncated', ws => ws.send(Buffer.from([0, 2, 50, 1])), [4400]))
results.push(await attack('corrupt-update', ws => ws.send(Buffer.from([0, 2, 6, 1, 1, 5, 0, 0xff, 0xff])), [4400]))
results.push(await attack('bad-state-vector', ws => ws.send(Buffer.from([0, 0, 3, 5, 1, 0x80])), [4400]))
results.push(await attack('text-frame', ws => ws.send('hello'), [4400]))
results.push(await attack('oversized', ws => ws.send(Buffer.alloc(6 * 1024 * 1024, 0)), [1009, 1006]))
results.push(await attack('bad-awareness', ws => ws.send(Buffer.from([1, 4, 1, 7, 0, 9])), [4400]))
results.push(await attack('flood', ws => { for (let i = 0; i < 30000; i++) ws.send(Buffer.from([3])) }, [1008]))
results.push(await attack('bad-token', () => {}, [4401], `${args.url}/${args.room}?token=cnxs_nope`))
results.push(await attack('no-token', () => {}, [4401], `${args.url}/${args.room}`))
results.push(await attack('unknown-document', () => {}, [4404], `${args.url}/00000000-0000-4000-8000-000000000000?token=${encodeURIComponent(args.token)}`))
const ok = results.every(r => r.ok)
console.log(JSON.stringify({ ok, results }))
process.exit(ok ? 0 : 1)
