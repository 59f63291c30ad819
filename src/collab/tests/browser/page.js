// The browser side of the collaboration test (bundled by esbuild into
// page.bundle.js): two stock editors on `cnx serve`, each a y-websocket
// provider on its own content item.
//   - CodeMirror 6 + y-codemirror.next on the Y.Text the server materialises
//     (collab.text_root, `content` unless the URL names another: &root=NAME);
//   - ProseMirror (prosemirror-schema-basic) + y-prosemirror on the
//     Y.XmlFragment `prosemirror`.
// Query: ?ws=ws://HOST:PORT/v1/collab&token=T&name=N&color=#rrggbb&cm=ITEM&pm=ITEM
// The test drives the editors with real keyboard input and reads
// window.cnx.state(); nothing here edits the documents by itself.
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { EditorView as CodeMirrorView, keymap as cmKeymap } from '@codemirror/view'
import { EditorState as CodeMirrorState } from '@codemirror/state'
import { defaultKeymap } from '@codemirror/commands'
import { yCollab } from 'y-codemirror.next'
import { EditorState } from 'prosemirror-state'
import { EditorView } from 'prosemirror-view'
import { schema } from 'prosemirror-schema-basic'
import { keymap } from 'prosemirror-keymap'
import { baseKeymap, setBlockType, toggleMark } from 'prosemirror-commands'
import { ySyncPlugin, yCursorPlugin, yUndoPlugin, undo, redo } from 'y-prosemirror'

const q = new URLSearchParams(window.location.search)
const user = { name: q.get('name'), color: q.get('color'), colorLight: q.get('color') + '33' }

// Every message the server sends: the test reads the permission-denied
// answers (messageAuth) from here as well as from the provider's warning.
const authMessages = []
const openProvider = (room, doc) => {
  const provider = new WebsocketProvider(q.get('ws'), room, doc, {
    params: { token: q.get('token') },
    disableBc: true // all traffic goes through the server
  })
  provider.awareness.setLocalStateField('user', user)
  provider.on('status', ({ status }) => {
    if (status !== 'connected') return
    provider.ws.addEventListener('message', (event) => {
      const b = new Uint8Array(event.data)
      if (b[0] === 2 && b[1] === 0) {
        // messageAuth, permission denied: varstring reason
        let len = 0
        let shift = 0
        let i = 2
        for (; i < b.length; i++) {
          len |= (b[i] & 127) << shift
          shift += 7
          if (b[i] < 128) break
        }
        authMessages.push({ room, reason: new TextDecoder().decode(b.slice(i + 1, i + 1 + len)) })
      }
    })
  })
  return provider
}

const synced = (provider) =>
  new Promise((resolve) => {
    if (provider.synced) resolve()
    else provider.once('synced', () => resolve())
  })

// CodeMirror on the text root.
const cmDoc = new Y.Doc()
const ytext = cmDoc.getText(q.get('root') || 'content')
const cmProvider = openProvider(q.get('cm'), cmDoc)
const cmView = new CodeMirrorView({
  state: CodeMirrorState.create({
    doc: ytext.toString(),
    extensions: [cmKeymap.of(defaultKeymap), yCollab(ytext, cmProvider.awareness)]
  }),
  parent: document.getElementById('cm')
})

// ProseMirror on the XmlFragment `prosemirror`.
const pmDoc = new Y.Doc()
const fragment = pmDoc.getXmlFragment('prosemirror')
const pmProvider = openProvider(q.get('pm'), pmDoc)
const pmView = new EditorView(document.getElementById('pm'), {
  state: EditorState.create({
    schema,
    plugins: [
      ySyncPlugin(fragment),
      yCursorPlugin(pmProvider.awareness),
      yUndoPlugin(),
      keymap({
        'Mod-z': undo,
        'Mod-y': redo,
        'Mod-Shift-z': redo,
        'Mod-b': toggleMark(schema.marks.strong),
        'Shift-Ctrl-0': setBlockType(schema.nodes.paragraph),
        'Shift-Ctrl-1': setBlockType(schema.nodes.heading, { level: 1 })
      }),
      keymap(baseKeymap)
    ]
  })
})

const toBase64 = (bytes) => btoa(String.fromCharCode(...bytes))

// Remote carets and selections as the awareness states say, resolved to
// indexes: CodeMirror's in the text, ProseMirror's as relative positions only.
const remoteCursors = (provider, type) => {
  const out = []
  provider.awareness.getStates().forEach((state, clientId) => {
    if (clientId === provider.awareness.clientID || !state.user) return
    const c = state.cursor
    const resolve = (rel) => {
      if (!rel || !type) return null
      const abs = Y.createAbsolutePositionFromRelativePosition(Y.createRelativePositionFromJSON(rel), provider.doc)
      return abs && abs.type === type ? abs.index : null
    }
    out.push({ clientId, name: state.user.name, cursor: c != null, anchor: c ? resolve(c.anchor) : null, head: c ? resolve(c.head) : null })
  })
  return out
}

// Whether ProseMirror's selection is the one the browser shows: keys the
// browser handles itself (arrows, Home, End) move the DOM selection, which
// ProseMirror reads on the next selectionchange event.
const pmSelectionSettled = () => {
  const sel = document.getSelection()
  if (!sel || !sel.focusNode || !pmView.dom.contains(sel.focusNode)) return false
  try {
    const head = pmView.posAtDOM(sel.focusNode, sel.focusOffset)
    const anchor = pmView.posAtDOM(sel.anchorNode, sel.anchorOffset)
    return pmView.state.selection.head === head && pmView.state.selection.anchor === anchor
  } catch {
    return false
  }
}

window.cnx = {
  pmSelectionSettled,
  ready: Promise.all([synced(cmProvider), synced(pmProvider)]).then(() => true),
  authMessages,
  state: () => ({
    cm: cmView.state.doc.toString(),
    cmSelection: { anchor: cmView.state.selection.main.anchor, head: cmView.state.selection.main.head },
    text: ytext.toString(),
    pm: pmView.state.doc.toJSON(),
    pmSelection: { anchor: pmView.state.selection.anchor, head: pmView.state.selection.head },
    xml: fragment.toString(),
    cmStateVector: toBase64(Y.encodeStateVector(cmDoc)),
    pmStateVector: toBase64(Y.encodeStateVector(pmDoc)),
    connected: cmProvider.wsconnected && pmProvider.wsconnected,
    cmRemote: remoteCursors(cmProvider, ytext),
    pmRemote: remoteCursors(pmProvider, null),
    // What the editors render for the other users.
    cmCarets: [...document.querySelectorAll('#cm .cm-ySelectionCaret')].map((e) => e.textContent),
    cmSelections: document.querySelectorAll('#cm .cm-ySelection').length,
    pmCarets: [...document.querySelectorAll('#pm .ProseMirror-yjs-cursor')].map((e) => e.textContent)
  })
}
