// Small DOM helpers: no framework, text is always set as text (never parsed as HTML).

type Child = Node | string | null | undefined | false | Child[];
type Attrs = Record<string, string | ((event: Event) => void)>;

/** Creates an element: attributes (`on...` are event listeners) and children. */
export function h(tag: string, attrs: Attrs = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === 'function') node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  append(node, children);
  return node;
}

function append(node: HTMLElement, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(node, child);
    else node.append(child);
  }
}

/** A JSON value as compact text (`"dev"`, `42`, `["a","b"]`; `null` for a missing value). */
export function jsonText(value: unknown, indent?: number): string {
  return value === undefined ? 'null' : JSON.stringify(value, null, indent);
}

/** Seconds as the policy language writes durations, with the seconds: `15m (900 s)`. */
export function formatDuration(seconds: number | null): string | null {
  if (seconds === null || seconds === undefined) return null;
  let rest = seconds;
  let text = '';
  for (const [unit, size] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const count = Math.floor(rest / size);
    if (count > 0) {
      text += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return `${text || '0s'} (${seconds} s)`;
}

/** Seconds since the epoch as RFC 3339 UTC, `2024-11-23T08:21:40Z`. */
export function formatTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString().replace('.000Z', 'Z');
}

/** Replaces an element's children (nulls and `false` are left out). */
export function fill(node: HTMLElement, ...children: Child[]): void {
  node.replaceChildren();
  append(node, children);
}
