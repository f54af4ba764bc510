// Syntax highlighting for the claimgate policy language (grammar/claimgate.pest): a small
// CodeMirror stream tokenizer, no parser. The engine's `check` does the real parsing and its
// diagnostics are shown by the linter (main.ts).

import { HighlightStyle, StreamLanguage, type StringStream } from '@codemirror/language';
import { tags as t } from '@lezer/highlight';

interface State {
  /** Inside a `"""` string that continues on the next line. */
  inTriple: boolean;
  /** After a setting's `=` on this line: names are values (`provider = gitlab`). */
  afterEquals: boolean;
  /** Inside `[...]`: names are values (`algorithms = [RS256]`). */
  listDepth: number;
}

const BLOCKS = new Set(['provider', 'role', 'test', 'require', 'keys', 'metadata', 'token']);
const CONDITIONS = new Set([
  'not',
  'any',
  'all',
  'in',
  'glob',
  'matches',
  'contains',
  'words',
  'exists',
  'absent',
  'is',
  'message',
  'optional',
  'expect',
]);
const DECISIONS = new Set(['allow', 'deny', 'auto']);
const TYPES = new Set(['string', 'number', 'bool', 'list', 'object']);
const ATOMS = new Set(['true', 'false']);

function tokenTriple(stream: StringStream, state: State): string {
  while (!stream.eol()) {
    if (stream.match('"""')) {
      state.inTriple = false;
      return 'string';
    }
    stream.next();
  }
  return 'string';
}

export const claimgateLanguage = StreamLanguage.define<State>({
  name: 'claimgate',
  startState: () => ({ inTriple: false, afterEquals: false, listDepth: 0 }),
  copyState: (s) => ({ ...s }),
  token(stream, state) {
    if (state.inTriple) return tokenTriple(stream, state);
    if (stream.sol()) state.afterEquals = false;
    if (stream.eatSpace()) return null;

    const ch = stream.peek();
    if (ch === '#') {
      stream.skipToEnd();
      return 'comment';
    }
    if (stream.match('"""')) {
      state.inTriple = true;
      state.afterEquals = false;
      return tokenTriple(stream, state);
    }
    if (ch === '"') {
      stream.next();
      let escaped = false;
      while (!stream.eol()) {
        const c = stream.next();
        if (c === '"' && !escaped) break;
        escaped = c === '\\' && !escaped;
      }
      state.afterEquals = false;
      return 'string';
    }
    // Durations (`90s`, `1h30m`, `7d`) before plain numbers.
    if (stream.match(/^(?:\d+[dhms])+(?![A-Za-z0-9_-])/)) {
      state.afterEquals = false;
      return 'unit';
    }
    if (stream.match(/^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![A-Za-z0-9_-])/)) {
      state.afterEquals = false;
      return 'number';
    }
    if (stream.match(/^(?:==|!=|<=|>=|<|>|\+)/)) return 'operator';
    if (stream.match('=')) {
      state.afterEquals = true;
      return 'operator';
    }
    if (stream.match(/^[{}]/)) {
      state.afterEquals = false;
      state.listDepth = 0;
      return 'brace';
    }
    if (stream.match('[')) {
      state.listDepth += 1;
      return 'punctuation';
    }
    if (stream.match(']')) {
      state.listDepth = Math.max(0, state.listDepth - 1);
      if (state.listDepth === 0) state.afterEquals = false;
      return 'punctuation';
    }
    if (stream.match(',')) return 'punctuation';
    if (stream.match(/^[A-Za-z_][A-Za-z0-9_-]*/)) {
      const word = stream.current();
      const wasValue = state.afterEquals || state.listDepth > 0;
      if (state.listDepth === 0) state.afterEquals = false;
      if (word === 'claims' && (stream.peek() === '.' || stream.peek() === '[')) {
        // A claim path: `claims` then `.name`, `."quoted"` or `[N]` segments.
        stream.match(/^(?:\.(?:[A-Za-z_][A-Za-z0-9_-]*|"(?:[^"\\]|\\.)*")|\[\d+\])+/);
        return 'variableName.special';
      }
      if (word === 'now') return 'variableName.special';
      if (ATOMS.has(word)) return 'bool';
      if (wasValue) return 'atom';
      // A setting's name: followed by `=` (but not `==`).
      if (stream.match(/^\s*=(?!=)/, false)) return 'propertyName';
      if (BLOCKS.has(word)) return 'keyword';
      if (CONDITIONS.has(word)) return 'operatorKeyword';
      if (DECISIONS.has(word)) return 'keyword';
      if (TYPES.has(word)) return 'typeName';
      return 'variableName';
    }
    stream.next();
    return 'invalid';
  },
  languageData: {
    commentTokens: { line: '#' },
    closeBrackets: { brackets: ['(', '[', '{', '"'] },
  },
  tokenTable: {
    unit: t.unit,
    brace: t.brace,
  },
});

/** Colours with at least 4.5:1 contrast on the editor's white background. */
export const claimgateHighlight = HighlightStyle.define([
  { tag: t.comment, color: '#5c6370', fontStyle: 'italic' },
  { tag: t.keyword, color: '#8a2be2', fontWeight: '600' },
  { tag: t.operatorKeyword, color: '#a626a4' },
  { tag: t.string, color: '#1b7c3b' },
  { tag: [t.number, t.unit], color: '#a14f00' },
  { tag: t.bool, color: '#a14f00', fontWeight: '600' },
  { tag: t.atom, color: '#0b61a4' },
  { tag: t.typeName, color: '#0b61a4', fontStyle: 'italic' },
  { tag: t.propertyName, color: '#0f5e7a' },
  { tag: t.special(t.variableName), color: '#b3261e' },
  { tag: t.operator, color: '#4a4a4a' },
  { tag: t.invalid, color: '#ffffff', backgroundColor: '#b3261e' },
]);
