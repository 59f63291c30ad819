#!/usr/bin/env node
// `cnx crdt replay CASE.json` must print exactly the case's `expected` object
// (same keys, same values) for every golden case.
//   node replay_cli_test.mjs CNX_BINARY GOLDEN_DIR
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { isDeepStrictEqual } from 'node:util'

const [cnx, dir] = process.argv.slice(2)
let failed = 0
const files = fs.readdirSync(dir).filter(f => f.endsWith('.json') && f !== 'index.json' && f !== 'protocol_messages.json')
for (const f of files) {
  const expected = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')).expected
  const got = JSON.parse(execFileSync(cnx, ['crdt', 'replay', path.join(dir, f)], { encoding: 'utf8', maxBuffer: 1 << 28 }))
  const keys = new Set([...Object.keys(expected), ...Object.keys(got)])
  const bad = [...keys].filter(k => !isDeepStrictEqual(got[k], expected[k]))
  if (bad.length) { failed++; console.log(`FAIL ${f}: ${bad.join(', ')}`) }
}
console.log(`${files.length - failed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
