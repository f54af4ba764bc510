// The two CodeMirror editors: the policy (claimgate highlighting, the engine's diagnostics, marks
// for the failing condition and for the condition a trace line points at) and the claims (JSON).

import { closeBrackets, closeBracketsKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { json, jsonParseLinter } from '@codemirror/lang-json';
import { bracketMatching, foldGutter, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { lintGutter, linter, lintKeymap, setDiagnostics, type Diagnostic as CmDiagnostic } from '@codemirror/lint';
import { highlightSelectionMatches, searchKeymap } from '@codemirror/search';
import { EditorSelection, EditorState, StateEffect, StateField, type Extension } from '@codemirror/state';
import {
  Decoration,
  type DecorationSet,
  drawSelection,
  EditorView,
  highlightActiveLine,
  highlightActiveLineGutter,
  keymap,
  lineNumbers,
} from '@codemirror/view';

import type { Diagnostic } from './engine';
import { claimgateHighlight, claimgateLanguage } from './language';

/** A range of the policy to mark: the denial's failing condition, or a trace line's check. */
export type MarkKind = 'failing' | 'target';
const setMark = StateEffect.define<{ kind: MarkKind; range: { from: number; to: number } | null }>();

const failingMark = Decoration.mark({ class: 'cm-failing-condition', attributes: { 'data-mark': 'failing' } });
const targetMark = Decoration.mark({ class: 'cm-trace-target', attributes: { 'data-mark': 'target' } });

function markField(kind: MarkKind): StateField<DecorationSet> {
  const mark = kind === 'failing' ? failingMark : targetMark;
  return StateField.define<DecorationSet>({
    create: () => Decoration.none,
    update(marks, tr) {
      marks = marks.map(tr.changes);
      for (const effect of tr.effects) {
        if (effect.is(setMark) && effect.value.kind === kind) {
          const range = effect.value.range;
          marks = range && range.to > range.from ? Decoration.set([mark.range(range.from, range.to)]) : Decoration.none;
        }
      }
      // An edit inside the marked text makes the mark stale: drop it until the next evaluation.
      if (tr.docChanged && kind === 'target') {
        let touched = false;
        tr.changes.iterChangedRanges((from, to) => {
          marks.between(from, to, () => {
            touched = true;
          });
        });
        if (touched) marks = Decoration.none;
      }
      return marks;
    },
    provide: (field) => EditorView.decorations.from(field),
  });
}

const theme = EditorView.theme({
  '&': { fontSize: '13.5px', height: '100%' },
  '.cm-scroller': { fontFamily: 'var(--mono)', lineHeight: '1.5' },
  '.cm-content': { caretColor: '#111' },
  '.cm-gutters': { backgroundColor: '#f6f7f9', color: '#6b7280', borderRight: '1px solid #e5e7eb' },
  '.cm-activeLine': { backgroundColor: '#f3f6fc' },
  '.cm-activeLineGutter': { backgroundColor: '#e8eef9' },
  '&.cm-focused': { outline: '2px solid var(--focus)', outlineOffset: '-2px' },
  '.cm-failing-condition': {
    backgroundColor: '#fde8e8',
    textDecoration: 'underline wavy #b3261e',
    textUnderlineOffset: '3px',
  },
  '.cm-trace-target': { backgroundColor: '#fff2b3', outline: '1px solid #d4a200', borderRadius: '2px' },
  '.cm-diagnosticText code': { fontFamily: 'var(--mono)' },
});

function baseExtensions(onChange: () => void, label: string): Extension[] {
  return [
    lineNumbers(),
    highlightActiveLineGutter(),
    history(),
    drawSelection(),
    indentOnInput(),
    bracketMatching(),
    closeBrackets(),
    highlightActiveLine(),
    highlightSelectionMatches(),
    // Tab is left to the browser, so the keyboard can leave the editor (indent with the
    // formatter, or Ctrl-] / Ctrl-[).
    keymap.of([...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap, ...historyKeymap, ...lintKeymap]),
    EditorView.lineWrapping,
    EditorView.contentAttributes.of({ 'aria-label': label }),
    EditorView.updateListener.of((update) => {
      if (update.docChanged) onChange();
    }),
    theme,
  ];
}

export function createPolicyEditor(parent: HTMLElement, onChange: () => void): EditorView {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: '',
      extensions: [
        baseExtensions(onChange, 'Policy'),
        foldGutter(),
        lintGutter(),
        claimgateLanguage,
        syntaxHighlighting(claimgateHighlight),
        markField('failing'),
        markField('target'),
      ],
    }),
  });
}

export function createClaimsEditor(parent: HTMLElement, onChange: () => void): EditorView {
  return new EditorView({
    parent,
    state: EditorState.create({
      doc: '',
      extensions: [
        baseExtensions(onChange, 'Claims (a JSON object)'),
        json(),
        syntaxHighlighting(claimgateHighlight),
        linter(jsonParseLinter(), { delay: 300 }),
      ],
    }),
  });
}

/** Replaces the whole text (one undoable change), keeping nothing selected. */
export function setText(view: EditorView, text: string): void {
  if (view.state.doc.toString() === text) return;
  view.dispatch({
    changes: { from: 0, to: view.state.doc.length, insert: text },
    selection: EditorSelection.cursor(0),
    scrollIntoView: true,
  });
}

function clamp(view: EditorView, offset: number): number {
  return Math.max(0, Math.min(offset, view.state.doc.length));
}

/** Marks a range of the policy (or clears the mark with `null`). */
export function markRange(view: EditorView, kind: MarkKind, range: { from: number; to: number } | null): void {
  const clamped = range && { from: clamp(view, range.from), to: clamp(view, range.to) };
  view.dispatch({ effects: setMark.of({ kind, range: clamped }) });
}

/** Selects and marks a range of the policy, scrolls it into view and focuses the editor. */
export function reveal(view: EditorView, range: { from: number; to: number }, focus = true): void {
  const from = clamp(view, range.from);
  const to = clamp(view, range.to);
  view.dispatch({
    selection: EditorSelection.single(from, to),
    effects: [setMark.of({ kind: 'target', range: { from, to } }), EditorView.scrollIntoView(from, { y: 'center' })],
  });
  if (focus) view.focus();
}

function element(tag: string, className: string, text: string): HTMLElement {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

/** The engine's diagnostics, underlined in the policy editor (offsets are UTF-16, as here). */
export function showDiagnostics(view: EditorView, diagnostics: Diagnostic[]): void {
  const length = view.state.doc.length;
  const items: CmDiagnostic[] = diagnostics.map((d) => {
    const from = Math.max(0, Math.min(d.from, length));
    const to = Math.max(from, Math.min(d.to, length));
    const message = `${d.message}${d.label ? ` (${d.label})` : ''}${d.help ? `\nhelp: ${d.help}` : ''}`;
    return {
      from,
      to,
      severity: d.severity === 'error' ? 'error' : 'warning',
      message,
      renderMessage: () => {
        const box = document.createElement('div');
        box.className = 'cg-diagnostic';
        const head = document.createElement('div');
        head.append(element('code', 'cg-code', d.code), ` ${d.message}`);
        box.append(head);
        if (d.label) box.append(element('div', 'cg-label', d.label));
        box.append(element('div', 'cg-where', `line ${d.line}, column ${d.column}`));
        if (d.help) box.append(element('div', 'cg-help', `help: ${d.help}`));
        return box;
      },
    };
  });
  view.dispatch(setDiagnostics(view.state, items));
}
