// The playground's whole state in the URL fragment: JSON, compressed with the browser's own
// CompressionStream('deflate-raw'), in base64url. The fragment never reaches a server.

export type InputMode = 'claims' | 'token';

export interface PlaygroundState {
  policy: string;
  mode: InputMode;
  claims: string;
  token: string;
  jwks: string;
  /** Whose keys `jwks` are; empty: the role's provider, or the only one. */
  provider: string;
  /** Seconds or RFC 3339; empty: the current time. */
  now: string;
  /** Empty: automatic role selection. */
  role: string;
}

/** The fragment's prefix, with the format's version. */
const PREFIX = 's1.';

function toBase64Url(bytes: Uint8Array): string {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): Uint8Array {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(base64 + '='.repeat((4 - (base64.length % 4)) % 4));
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

async function pipe(bytes: Uint8Array, transform: GenericTransformStream): Promise<Uint8Array> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(transform);
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The fragment (without `#`) that holds `state`. */
export async function encodeState(state: PlaygroundState): Promise<string> {
  const json = new TextEncoder().encode(JSON.stringify({ v: 1, ...state }));
  return PREFIX + toBase64Url(await pipe(json, new CompressionStream('deflate-raw')));
}

/** The state in a fragment (with or without `#`), `null` when the fragment holds none. */
export async function decodeState(fragment: string): Promise<PlaygroundState | null> {
  const text = fragment.replace(/^#/, '');
  if (!text.startsWith(PREFIX)) return null;
  const bytes = await pipe(fromBase64Url(text.slice(PREFIX.length)), new DecompressionStream('deflate-raw'));
  const value = JSON.parse(new TextDecoder().decode(bytes)) as Partial<PlaygroundState> & { v?: number };
  if (value.v !== 1) throw new Error(`unknown link format ${String(value.v)}`);
  const str = (x: unknown) => (typeof x === 'string' ? x : '');
  return {
    policy: str(value.policy),
    mode: value.mode === 'token' ? 'token' : 'claims',
    claims: str(value.claims),
    token: str(value.token),
    jwks: str(value.jwks),
    provider: str(value.provider),
    now: str(value.now),
    role: str(value.role),
  };
}
