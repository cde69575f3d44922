/**
 * Encrypted deployments in `sdj`: the keys from `SDJ_ENCRYPTION_KEYS` (comma-separated, the
 * current key first, then previous ones; each 32 bytes in base64 or hex), and how a value
 * encoded by a payload codec is shown when `sdj` runs without the keys to read it.
 * @module
 */
import { encodedPayloadCodec, encryptedCodec, type PayloadCodec } from '../index.js';
import { undecodedNote } from '../storage/codec.js';
import { UsageError } from './errors.js';
import { compactJson } from './format.js';

/** The environment variable holding the keys. */
export const KEYS_ENV = 'SDJ_ENCRYPTION_KEYS';

/** One key from its text: 64 hex digits or base64 of 32 bytes. Never repeats the text. */
function parseKey(text: string, index: number): Buffer {
  const t = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/_-]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : undefined;
  if (bytes === undefined || bytes.length !== 32) {
    throw new UsageError(`${KEYS_ENV}: key ${index + 1} is not 32 bytes in base64 or hex (make one with: node -e "console.log(require('crypto').randomBytes(32).toString('base64'))")`);
  }
  return bytes;
}

/**
 * The codec of `SDJ_ENCRYPTION_KEYS`, or undefined when it is unset or empty.
 * @throws UsageError when a key is malformed or given twice (the key itself is never printed)
 */
export function codecFromEnv(env: NodeJS.ProcessEnv): PayloadCodec | undefined {
  const raw = env[KEYS_ENV]?.trim();
  if (raw === undefined || raw === '') return undefined;
  const [key, ...previousKeys] = raw.split(',').map((k, i) => parseKey(k, i));
  try {
    return encryptedCodec({ key: key!, previousKeys });
  } catch (e) {
    throw new UsageError(`${KEYS_ENV}: ${(e as Error).message}`);
  }
}

/** What `sdj` shows instead of a value it has no key to read. */
export function encryptedNote(codec: string): string {
  return `(encrypted: ${codec}; set ${KEYS_ENV} to read)`;
}

/**
 * `text` as shown: a note in place of a value a payload codec encoded (read without its codec),
 * or saying why a value could not be decoded (read with keys that do not open it).
 */
export function shownText(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  const why = undecodedNote(text);
  if (why !== undefined) return why;
  const codec = encodedPayloadCodec(text);
  return codec === undefined ? text : encryptedNote(codec);
}

/** A step output as shown: compact JSON, or the note for a value a codec encoded (handed on as its stored text). */
export function shownOutput(value: unknown): string | undefined {
  const why = typeof value === 'string' ? undecodedNote(value) : undefined;
  if (why !== undefined) return why;
  const codec = typeof value === 'string' ? encodedPayloadCodec(value) : undefined;
  return codec === undefined ? compactJson(value) : encryptedNote(codec);
}

/** The note printed under a `--search` listing when error texts are encrypted. */
export const SEARCH_NOTE = `note: error texts are encrypted here, so --search matches job types only reliably; give ${KEYS_ENV} to see the errors (a search is then refused)`;
