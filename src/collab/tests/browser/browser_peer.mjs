// Drives page.html in Debian's Chromium (puppeteer-core) against `cnx serve`.
// Each user is a separate browser context (its own Y.Docs); every edit is real
// keyboard input.
//   node browser_peer.mjs --api URL --cm ITEM --pm ITEM --profile DIR --a TOKEN --b TOKEN --v TOKEN --a-id UUID --b-id UUID
// The users type, the viewer's typing is refused, the REST body is
// materialised; then, with every page closed, the server is killed (-9) and
// restarted, and fresh pages must show the same documents (replayed from
// operations_log); then the server stops under open pages, which edit
// offline and merge when it is back. The server is restarted by the
// caller (browser_test.sh): this prints RESTART, STOP or START and waits for
// the line `done` on stdin.
// Prints `ok: ...` per check; exits 1 with `FAILED: ...` on the first that fails.
import http from 'node:http'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { isDeepStrictEqual } from 'node:util'
import puppeteer from 'puppeteer-core'

const args = {}
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1]
const here = path.dirname(new URL(import.meta.url).pathname)
const chromium = process.env.CNX_CHROMIUM || '/usr/bin/chromium'
const wsUrl = args.api.replace(/^http/, 'ws') + '/v1/collab'
const kWait = 20000 // the longest any condition is waited for

const fail = (msg) => {
  console.log(`FAILED: ${msg}`)
  process.exit(1)
}
const ok = (msg) => console.log(`ok: ${msg}`)
const show = (v) => JSON.stringify(v)

// Polls fn until it returns a truthy value; fails with the last value seen.
const waitFor = async (what, fn, timeout = kWait) => {
  const end = Date.now() + timeout
  let last
  for (;;) {
    last = await fn()
    if (last && last.ok !== false) return last
    if (Date.now() > end) fail(`${what}: not reached within ${timeout} ms; last: ${show(last)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const rest = async (method, p, token) => {
  const r = await fetch(args.api + p, { method, headers: { Authorization: `Bearer ${token}` } })
  const text = await r.text()
  if (r.status !== 200) fail(`${method} ${p}: ${r.status} ${text}`)
  return JSON.parse(text)
}
// The REST view of a content item's text: its current version's chunks.
const restBody = async (item, token) => {
  const chunks = (await rest('GET', `/v1/content/${item}/chunks`, token)).items
  return chunks.sort((a, b) => a.chunkIndex - b.chunkIndex).map((c) => c.content).join('')
}

// The page and its bundle, served from here on a port of its own: the page's
// origin differs from the server's, as an application's would.
const serveStatic = () =>
  new Promise((resolve) => {
    const types = { '.html': 'text/html', '.js': 'text/javascript' }
    const server = http.createServer((req, res) => {
      const name = new URL(req.url, 'http://x').pathname.slice(1)
      if (name !== 'page.html' && name !== 'page.bundle.js') {
        res.writeHead(404).end()
        return
      }
      res.writeHead(200, { 'Content-Type': types[path.extname(name)] })
      fs.createReadStream(path.join(here, name)).pipe(res)
    })
    server.listen(0, '127.0.0.1', () => resolve(server))
  })

const launch = async () => {
  if (!fs.existsSync(chromium)) fail(`${chromium} missing: run scripts/bootstrap.sh (installs Debian's chromium)`)
  return puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: args.profile, // in the test's work directory, removed with it
    // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start.
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check']
  })
}

// One user's page in a browser context of its own.
const open = async (browser, pagePort, token, name, color) => {
  const context = await browser.createBrowserContext()
  const page = await context.newPage()
  // Every page behaves as the focused window of its user (editors publish
  // their cursor only while focused, and headless pages share one focus).
  const cdp = await page.createCDPSession()
  await cdp.send('Emulation.setFocusEmulationEnabled', { enabled: true })
  page.warnings = []
  page.on('console', (m) => {
    if (m.type() === 'warn' || m.type() === 'error') page.warnings.push(m.text())
  })
  page.on('pageerror', (e) => page.warnings.push(`pageerror: ${e.message}`))
  const q = new URLSearchParams({ ws: wsUrl, token, name, color, cm: args.cm, pm: args.pm })
  await page.goto(`http://127.0.0.1:${pagePort}/page.html?${q}`)
  await page.waitForFunction(() => window.cnx !== undefined)
  await page.evaluate(() => window.cnx.ready)
  page.userName = name
  return page
}
const state = (page) => page.evaluate(() => window.cnx.state())

// Keyboard helpers: real key events in the focused editor.
const press = async (page, key, times = 1, modifiers = '') => {
  const held = modifiers.split('+').filter(Boolean)
  for (const m of held) await page.keyboard.down(m)
  for (let i = 0; i < times; i++) await page.keyboard.press(key)
  for (const m of held.reverse()) await page.keyboard.up(m)
}
const focus = async (page, selector) => {
  await page.click(selector)
  await page.waitForFunction((s) => document.activeElement && document.activeElement.closest(s) !== null, {}, selector)
}
// Caret moves in ProseMirror with keys the browser handles itself (arrows,
// Home, End): the browser moves the DOM caret and ProseMirror reads it on the
// next selectionchange event. A remote change or caret that y-prosemirror
// draws in between puts the DOM caret back where ProseMirror last read it, a
// race no person typing is fast enough to hit. So a move starts from an
// absolute place (Ctrl+Home / Ctrl+End), waits until ProseMirror has read
// the caret, and is made again (at most 3 times) when it landed elsewhere;
// keys acting on the selection (Enter, Mod-b) come after that.
const pmSelection = (page) => page.evaluate(() => [window.cnx.pmSelectionSettled(), window.cnx.state().pmSelection])
const pmMove = async (page, keys, head, anchor = head) => {
  for (let attempt = 1; ; attempt++) {
    await keys()
    const s = await waitFor("ProseMirror reads the browser's caret", async () => {
      const [settled, sel] = await pmSelection(page)
      return settled ? sel : { ok: false, sel }
    })
    if (s.head === head && s.anchor === anchor) return
    if (attempt === 3) fail(`ProseMirror's selection is ${show(s)} after ${attempt} tries, expected ${show({ anchor, head })}`)
  }
}
// Positions in a ProseMirror document of text blocks (JSON): where block i's
// text starts, and the end of the last block's text.
const pmBlockStart = (doc, i) => doc.content.slice(0, i).reduce((n, b) => n + 2 + (b.content || []).reduce((m, t) => m + t.text.length, 0), 0) + 1
const pmEnd = (doc) => pmBlockStart(doc, doc.content.length) - 2
const kCm = '#cm .cm-content'
const kPm = '#pm .ProseMirror'

const converged = async (what, pages, predicate) =>
  waitFor(what, async () => {
    const states = await Promise.all(pages.map(state))
    const same = states.every((s) => s.cm === states[0].cm && s.text === s.cm && isDeepStrictEqual(s.pm, states[0].pm) &&
      s.cmStateVector === states[0].cmStateVector && s.pmStateVector === states[0].pmStateVector)
    return same && predicate(states[0]) ? states[0] : { ok: false, states: states.map((s) => ({ cm: s.cm, pm: s.pm })) }
  })

// ProseMirror JSON of paragraphs: each an array of [text, marks...] runs.
const pmDoc = (...paragraphs) => ({
  type: 'doc',
  content: paragraphs.map((runs) => {
    const p = { type: 'paragraph' }
    if (runs.length > 0) {
      p.content = runs.map(([text, ...marks]) => (marks.length ? { type: 'text', marks: marks.map((m) => ({ type: m })), text } : { type: 'text', text }))
    }
    return p
  })
})

async function editPhase (browser, pagePort) {
  const a = await open(browser, pagePort, args.a, 'Alice', '#30bced')
  const b = await open(browser, pagePort, args.b, 'Bob', '#ee6352')
  ok('two browser contexts synced with both documents')

  // --- CodeMirror: typing, concurrent edits with a selection replaced and deletions.
  await focus(a, kCm)
  await a.keyboard.type('alpha beta gamma\n')
  await converged('B sees what A typed', [a, b], (s) => s.cm === 'alpha beta gamma\n')
  await focus(b, kCm)
  await press(b, 'End', 1, 'Control')
  await Promise.all([
    (async () => {
      await press(a, 'Home', 1, 'Control')
      await press(a, 'End')
      await press(a, 'ArrowLeft', 5, 'Shift') // selects "gamma"
      await a.keyboard.type('delta')
    })(),
    (async () => {
      // Outside the BMP too: Y.Text counts UTF-16 units, the REST body is UTF-8.
      await b.keyboard.type('second line — café 😀😀')
      await press(b, 'Backspace') // one emoji: two UTF-16 units
      await b.keyboard.type(' by B')
      await press(b, 'Backspace', 3)
    })()
  ])
  const kText1 = 'alpha beta delta\nsecond line — café 😀 b'
  await converged('CodeMirror pages converge after concurrent typing', [a, b], (s) => s.cm === kText1)
  ok(`CodeMirror text converged: ${show(kText1)}`)

  // --- Remote cursors: A selects "beta"; B sees the selection and A's caret, A sees B's caret.
  await press(a, 'Home', 1, 'Control')
  await press(a, 'ArrowRight', 6)
  await press(a, 'ArrowRight', 4, 'Shift')
  const seen = await waitFor('B sees A\'s selection of "beta" (awareness and y-codemirror decorations)', async () => {
    const s = await state(b)
    const alice = s.cmRemote.find((r) => r.name === 'Alice')
    return alice && alice.anchor === 6 && alice.head === 10 && s.cmCarets.some((t) => t.includes('Alice')) && s.cmSelections > 0
      ? s
      : { ok: false, remote: s.cmRemote, carets: s.cmCarets, selections: s.cmSelections }
  })
  ok(`B shows A's caret ${show(seen.cmCarets)} and selection, awareness ${show(seen.cmRemote)}`)
  await waitFor('A sees B\'s caret at the end of the text', async () => {
    const s = await state(a)
    const bob = s.cmRemote.find((r) => r.name === 'Bob')
    return bob && bob.head === kText1.length && s.cmCarets.some((t) => t.includes('Bob')) ? s : { ok: false, remote: s.cmRemote, carets: s.cmCarets }
  })
  ok("A shows B's caret")

  // --- Presence over REST lists both users, with A's selection.
  const presence = await waitFor('GET /v1/content/{id}/presence lists A and B', async () => {
    const r = await rest('GET', `/v1/content/${args.cm}/presence`, args.a)
    const ids = r.items.map((i) => i.userId)
    const mine = r.items.find((i) => i.userId === args['a-id'])
    return ids.includes(args['a-id']) && ids.includes(args['b-id']) && mine.selection && 'anchor' in mine.selection ? r : { ok: false, r }
  })
  ok(`presence: ${presence.items.length} items, A's selection recorded`)

  // --- ProseMirror: bold, a paragraph split, concurrent typing in two paragraphs.
  // Caret moves go through pmMove (above); concurrency is in the typing and
  // in the commands (Mod-b on a selection, a heading).
  await focus(a, kPm)
  await a.keyboard.type('First paragraph.Second starts with ')
  await press(a, 'b', 1, 'Control')
  await a.keyboard.type('bold words')
  await press(a, 'b', 1, 'Control')
  await a.keyboard.type(' and a plain tail.')
  await pmMove(a, async () => {
    await press(a, 'Home', 1, 'Control')
    await press(a, 'ArrowRight', 'First paragraph.'.length)
  }, 1 + 'First paragraph.'.length)
  await press(a, 'Enter') // splits the paragraph
  const kPm1 = pmDoc([['First paragraph.']], [['Second starts with '], ['bold words', 'strong'], [' and a plain tail.']])
  await converged('B sees A\'s ProseMirror paragraphs', [a, b], (s) => isDeepStrictEqual(s.pm, kPm1))
  ok('ProseMirror bold text and paragraph split reached B')
  await pmMove(a, async () => {
    await press(a, 'Home', 1, 'Control')
    await press(a, 'End')
  }, 1 + 'First paragraph.'.length)
  await focus(b, kPm)
  await pmMove(b, () => press(b, 'End', 1, 'Control'), pmEnd(kPm1))
  await press(b, 'Enter')
  await Promise.all([a.keyboard.type(' More from A.'), b.keyboard.type('Third, by Bob')])
  const kPm2a = pmDoc([['First paragraph. More from A.']], [['Second starts with '], ['bold words', 'strong'], [' and a plain tail.']],
    [['Third, by Bob']])
  await converged('ProseMirror pages converge after concurrent typing', [a, b], (s) => isDeepStrictEqual(s.pm, kPm2a))
  await pmMove(b, async () => {
    await press(b, 'End', 1, 'Control')
    await press(b, 'ArrowLeft', 'by Bob'.length, 'Shift')
  }, pmEnd(kPm2a) - 'by Bob'.length, pmEnd(kPm2a))
  await press(b, 'b', 1, 'Control')
  const kPm2 = pmDoc([['First paragraph. More from A.']], [['Second starts with '], ['bold words', 'strong'], [' and a plain tail.']],
    [['Third, '], ['by Bob', 'strong']])
  await converged('ProseMirror pages converge after B bolds a selection', [a, b], (s) => isDeepStrictEqual(s.pm, kPm2))
  ok('ProseMirror documents converged (3 paragraphs, 2 bold runs)')

  // Block attributes and formatting of existing text: A makes the first
  // paragraph a heading while B bolds "plain"; then A unbolds "words".
  const p2 = pmBlockStart(kPm2, 1)
  const toSecond = async (page, offset, selected) => {
    await press(page, 'Home', 1, 'Control')
    await press(page, 'ArrowDown')
    await press(page, 'Home')
    await press(page, 'ArrowRight', offset)
    await press(page, 'ArrowRight', selected, 'Shift')
  }
  await pmMove(a, () => press(a, 'Home', 1, 'Control'), 1)
  const plain = 'Second starts with bold words and a '.length
  await pmMove(b, () => toSecond(b, plain, 5), p2 + plain + 5, p2 + plain)
  await Promise.all([press(a, '1', 1, 'Shift+Control'), press(b, 'b', 1, 'Control')])
  const kPm3a = pmDoc([['First paragraph. More from A.']], [['Second starts with '], ['bold words', 'strong'], [' and a '], ['plain', 'strong'], [' tail.']],
    [['Third, '], ['by Bob', 'strong']])
  kPm3a.content[0] = { type: 'heading', attrs: { level: 1 }, content: kPm3a.content[0].content }
  await converged('ProseMirror pages converge after a heading and a bold selection at once', [a, b], (s) => isDeepStrictEqual(s.pm, kPm3a))
  const words = 'Second starts with bold '.length
  await pmMove(a, () => toSecond(a, words, 5), p2 + words + 5, p2 + words)
  await press(a, 'b', 1, 'Control')
  const kPm3 = pmDoc([['First paragraph. More from A.']], [['Second starts with '], ['bold ', 'strong'], ['words and a '], ['plain', 'strong'], [' tail.']],
    [['Third, '], ['by Bob', 'strong']])
  kPm3.content[0] = { type: 'heading', attrs: { level: 1 }, content: kPm3.content[0].content }
  await converged('ProseMirror pages converge after A unbolds a word', [a, b], (s) => isDeepStrictEqual(s.pm, kPm3))
  ok('a heading (element attribute), bold added to and removed from existing text converged')
  await waitFor('B shows A\'s ProseMirror caret', async () => {
    const s = await state(b)
    return s.pmCarets.some((t) => t.includes('Alice')) ? s : { ok: false, carets: s.pmCarets, remote: s.pmRemote }
  })
  ok("B shows A's ProseMirror caret")
  await waitFor('the ProseMirror document\'s presence lists A and B with their carets', async () => {
    const r = await rest('GET', `/v1/content/${args.pm}/presence`, args.b)
    const of = (id) => r.items.find((i) => i.userId === id)
    const both = [args['a-id'], args['b-id']].map(of)
    return both.every((i) => i && i.selection && 'anchor' in i.selection) ? r : { ok: false, r }
  })
  ok('presence of the ProseMirror document lists both')

  // --- A viewer's page: receives everything, its typing is refused and reaches nobody.
  if (args.v) {
    const v = await open(browser, pagePort, args.v, 'Vera', '#6eeb83')
    const vs = await state(v)
    if (vs.cm !== kText1 || !isDeepStrictEqual(vs.pm, kPm3)) fail(`the viewer's page does not show the documents: ${show(vs)}`)
    await focus(v, kCm)
    await press(v, 'End', 1, 'Control')
    await v.keyboard.type(' VIEWER')
    await focus(v, kPm)
    await press(v, 'End', 1, 'Control')
    await v.keyboard.type(' VIEWER')
    const denied = await waitFor('the viewer is told permission denied for both documents', async () => {
      const m = await v.evaluate(() => window.cnx.authMessages)
      const rooms = new Set(m.filter((x) => x.reason.includes('read-only: your project role is viewer')).map((x) => x.room))
      return rooms.has(args.cm) && rooms.has(args.pm) ? m : { ok: false, m }
    })
    ok(`the viewer's updates were refused: ${show(denied[0].reason)}`)
    if (!v.warnings.some((w) => w.includes('Permission denied') && w.includes('read-only: your project role is viewer'))) {
      fail(`y-websocket did not report the refusal: ${show(v.warnings)}`)
    }
    ok("y-websocket reported it (console: 'Permission denied ... read-only: your project role is viewer')")
    // A writes after the refusal; once that reached B and the viewer, the
    // viewer's earlier update would have arrived first if it had been relayed.
    await focus(a, kCm)
    await press(a, 'End', 1, 'Control')
    await a.keyboard.type(' ok')
    const kText2 = kText1 + ' ok'
    await converged('A and B converge after the viewer typed', [a, b], (s) => s.cm === kText2)
    await waitFor('the viewer still receives A\'s edits', async () => {
      const s = await state(v)
      return s.connected && s.cm.includes(' ok') ? s : { ok: false, cm: s.cm, connected: s.connected }
    })
    const [sa, sb] = [await state(a), await state(b)]
    if ([sa.cm, sb.cm, sa.xml, sb.xml].some((t) => t.includes('VIEWER'))) fail(`the viewer's typing reached others: ${show([sa.cm, sb.xml])}`)
    if (!isDeepStrictEqual(sa.pm, kPm3)) fail(`A's ProseMirror document changed: ${show(sa.pm)}`)
    ok("the viewer's typing reached neither A nor B; the viewer stays connected and receives")
    // Closing the viewer's browser context closes its sockets: the server
    // tells the others its awareness states are gone.
    await waitFor('A sees the viewer in awareness', async () => {
      const s = await state(a)
      return s.cmRemote.some((r) => r.name === 'Vera') ? s : { ok: false, remote: s.cmRemote }
    })
    await v.browserContext().close()
    await waitFor('the viewer\'s awareness state is removed on A and B', async () => {
      const states = await Promise.all([a, b].map(state))
      return states.every((s) => !s.cmRemote.some((r) => r.name === 'Vera') && !s.pmRemote.some((r) => r.name === 'Vera'))
        ? states
        : { ok: false, remote: states.map((s) => [s.cmRemote, s.pmRemote]) }
    })
    ok("the viewer's awareness states were removed when its page closed")
  }

  // --- Materialisation: the REST body becomes the CodeMirror text.
  const final = await state(a)
  const body = await waitFor('the REST body equals the CodeMirror text (materialisation)', async () => {
    const t = await restBody(args.cm, args.a)
    return t === final.cm ? { t } : { ok: false, t }
  })
  ok(`materialised body: ${show(body.t)}`)
  for (const p of [a, b]) {
    const errors = p.warnings.filter((w) => !w.includes('Permission denied'))
    if (errors.length > 0) fail(`${p.userName}'s page logged: ${show(errors)}`)
  }
  // Closed before the restart: only the server can bring the documents back.
  await a.browserContext().close()
  await b.browserContext().close()
  return { cm: final.cm, pm: final.pm, xml: final.xml }
}

async function reloadPhase (browser, pagePort, saved) {
  const c = await open(browser, pagePort, args.a, 'Alice', '#30bced')
  const s = await state(c)
  if (s.cm !== saved.cm) fail(`after the restart CodeMirror shows ${show(s.cm)}, expected ${show(saved.cm)}`)
  if (!isDeepStrictEqual(s.pm, saved.pm)) fail(`after the restart ProseMirror shows ${show(s.pm)}, expected ${show(saved.pm)}`)
  if (s.xml !== saved.xml) fail(`after the restart the XmlFragment is ${s.xml}, expected ${saved.xml}`)
  ok(`a fresh page after the restart shows the same CodeMirror text and ProseMirror document (${show(s.xml)})`)
  if ((await restBody(args.cm, args.a)) !== saved.cm) fail('the REST body changed over the restart')
  ok('the REST body is unchanged')

  // Both editors keep working after the restart: a bold edit, a split, converging.
  const d = await open(browser, pagePort, args.b, 'Bob', '#ee6352')
  await focus(c, kPm)
  await pmMove(c, async () => {
    await press(c, 'Home', 1, 'Control')
    await press(c, 'End')
  }, pmBlockStart(saved.pm, 1) - 2)
  await press(c, 'Enter')
  await press(c, 'b', 1, 'Control')
  await c.keyboard.type('Bold after restart')
  await press(c, 'b', 1, 'Control')
  await focus(d, kCm)
  await press(d, 'End', 1, 'Control')
  await d.keyboard.type('!')
  const pm = structuredClone(saved.pm)
  pm.content.splice(1, 0, { type: 'paragraph', content: [{ type: 'text', marks: [{ type: 'strong' }], text: 'Bold after restart' }] })
  await converged('pages converge after the restart', [c, d], (t) => t.cm === saved.cm + '!' && isDeepStrictEqual(t.pm, pm))
  ok('edits after the restart converge (a new bold paragraph, CodeMirror typing)')

  // Undo and redo (y-prosemirror's UndoManager): deleted items come back as
  // new ones. How many steps the typing took depends on its pace, so the keys
  // are pressed until the document is back where it was.
  const pressUntil = async (page, what, key, modifiers, target) => {
    for (let i = 0; i < 40; i++) {
      if (isDeepStrictEqual((await state(page)).pm, target)) return
      await press(page, key, 1, modifiers)
    }
    fail(`${what}: ${show((await state(page)).pm)}`)
  }
  await pressUntil(c, 'undo does not bring the document back', 'z', 'Control', saved.pm)
  await converged('pages converge after undo', [c, d], (t) => isDeepStrictEqual(t.pm, saved.pm))
  await pressUntil(c, 'redo does not bring the paragraph back', 'z', 'Control+Shift', pm)
  await converged('pages converge after redo', [c, d], (t) => isDeepStrictEqual(t.pm, pm))
  ok('undo and redo of the bold paragraph converge')
  for (const p of [c, d]) {
    if (p.warnings.length > 0) fail(`${p.userName}'s page logged: ${show(p.warnings)}`)
  }
  return { c, d, cm: saved.cm + '!', pm }
}

// Pages stay open while the server stops: they edit offline, reconnect to the
// restarted server on their own (y-websocket's backoff) and converge.
async function offlinePhase (browser, pagePort, { c, d, cm, pm }) {
  await control('STOP')
  await waitFor('the pages notice the server is gone', async () => {
    const states = await Promise.all([c, d].map(state))
    return states.every((s) => !s.connected) ? states : { ok: false }
  })
  // Conflicting edits, concurrent for sure: A appends to the last line of
  // the text that B deletes, and deletes the last paragraph that B types into.
  await focus(c, kCm)
  await press(c, 'End', 1, 'Control')
  await c.keyboard.type(' offline A')
  await focus(c, kPm)
  const last = pm.content.length - 1
  await pmMove(c, async () => {
    await press(c, 'End', 1, 'Control')
    await press(c, 'Home', 1, 'Shift')
  }, pmBlockStart(pm, last), pmEnd(pm))
  await press(c, 'Backspace') // the paragraph's text
  await press(c, 'Backspace') // the empty paragraph
  await focus(d, kCm)
  await press(d, 'End', 1, 'Control')
  await press(d, 'Home', 1, 'Shift')
  await press(d, 'Backspace')
  await focus(d, kPm)
  await pmMove(d, () => press(d, 'Home', 1, 'Control'), 1)
  await d.keyboard.type('Offline: ')
  await pmMove(d, async () => {
    await press(d, 'End', 1, 'Control')
    await press(d, 'Home')
  }, pmBlockStart(pm, last) + 'Offline: '.length)
  await d.keyboard.type('offline B ')
  await control('START')
  // The text: B's deletion and A's insertion after the deleted characters.
  const cm2 = cm.slice(0, cm.lastIndexOf('\n') + 1) + ' offline A'
  // The fragment: B's typing went into the paragraph A deleted, and is deleted with it.
  const pm2 = structuredClone(pm)
  pm2.content.pop()
  pm2.content[0].content[0].text = 'Offline: ' + pm2.content[0].content[0].text
  await converged('the pages reconnect and converge with their offline edits', [c, d], (t) => t.cm === cm2 && isDeepStrictEqual(t.pm, pm2))
  ok('conflicting offline edits of both pages merged after the reconnect (typing into a paragraph deleted meanwhile is deleted with it)')
  const e = await open(browser, pagePort, args.b, 'Bob', '#ee6352')
  await converged('a fresh page shows the merged documents', [c, d, e], (t) => t.cm === cm2 && isDeepStrictEqual(t.pm, pm2))
  await waitFor('the REST body includes the offline edit', async () => {
    const t = await restBody(args.cm, args.a)
    return t === cm2 ? { t } : { ok: false, t }
  })
  ok('a fresh page and the REST body show them')

  // A REST body write of the live document (docs/collab.md, "REST writes of
  // a live document") reaches the open editors as a remote change.
  const cm3 = 'Written over REST.\n' + cm2.replace('alpha', 'ALPHA')
  const r = await fetch(`${args.api}/v1/content/${args.cm}`, {
    method: 'PATCH',
    headers: { Authorization: `Bearer ${args.a}`, 'Content-Type': 'application/json', 'If-Match': '*' },
    body: JSON.stringify({ body: cm3 })
  })
  if (r.status !== 200) fail(`PATCH of the body: ${r.status} ${await r.text()}`)
  await converged('the open editors show the REST write', [c, d, e], (t) => t.cm === cm3 && isDeepStrictEqual(t.pm, pm2))
  ok('a REST body write reached the open CodeMirror editors')
  for (const p of [c, d, e]) {
    // Chromium logs each failed reconnect while the server was down.
    const other = p.warnings.filter((w) => !/WebSocket connection to .* failed/.test(w))
    if (other.length > 0) fail(`${p.userName}'s page logged: ${show(other)}`)
    await p.browserContext().close()
  }

  // Replayed from operations_log once more: the updates that typed into the
  // deleted paragraph, in the order the server received them.
  await control('RESTART')
  const f = await open(browser, pagePort, args.a, 'Alice', '#30bced')
  const s = await state(f)
  if (s.cm !== cm3 || !isDeepStrictEqual(s.pm, pm2)) fail(`after the second restart a fresh page shows ${show([s.cm, s.pm])}`)
  ok('after a second kill -9 and restart a fresh page shows the same documents')
}

// The server is stopped and started by browser_test.sh: a command line on
// stdout, answered with one line on stdin once done.
const input = readline.createInterface({ input: process.stdin })
const answers = input[Symbol.asyncIterator]()
const control = async (command) => {
  console.log(command)
  const answer = await answers.next()
  if (answer.done || answer.value !== 'done') fail(`${command}: browser_test.sh answered ${show(answer.value)}`)
}

const browser = await launch()
const pages = await serveStatic()
const port = pages.address().port
const timer = setTimeout(() => fail('the run did not finish within 110 s'), 110000)
try {
  const saved = await editPhase(browser, port)
  await control('RESTART')
  const open2 = await reloadPhase(browser, port, saved)
  await offlinePhase(browser, port, open2)
} catch (e) {
  fail(e.stack || String(e))
} finally {
  clearTimeout(timer)
}
await browser.close()
pages.close()
console.log('PASS browser')
process.exit(0)
