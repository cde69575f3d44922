/**
 * Strict JSON encoding of user payloads (args, results, meta, signal payloads). A value is
 * accepted only if it survives a JSON round trip unchanged, so a replayed step or a decoded
 * job sees exactly what was written. Rejections are `SerializationError`s naming the path.
 * @module
 */
import { CodecError, PayloadTooLargeError, SerializationError } from '../errors.js';

/** Default cap on one encoded payload: 1 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

/**
 * How a payload written through a payload codec (`QueueOptions.codec`) begins in its column:
 * `sdj1:<codec name>:<the codec's text>`. JSON text never begins with `s`, so a JSON payload
 * column tells an encoded value from a plaintext one (written before the codec was turned on)
 * by this prefix alone. @internal
 */
export const ENCODED_PREFIX = 'sdj1:';

/**
 * In memory only, never stored: a payload the queue's codec could not decode is handed on as
 * `sdj1:!:<why>`, so decoding it as JSON throws a {@link CodecError} saying why. `!` is no
 * codec's name. @internal
 */
export const UNDECODED_PREFIX = 'sdj1:!:';

/**
 * The text shown for a payload handed on as undecodable (`sdj1:!:<why>`): `[<why>]`; undefined
 * for any other text. @internal
 */
export function undecodedNote(text: string): string | undefined {
  return text.startsWith(UNDECODED_PREFIX) ? `[${text.slice(UNDECODED_PREFIX.length)}]` : undefined;
}

/**
 * In memory only: a row (job or checkpoint) whose error text the queue's codec could not decode
 * carries the {@link CodecError} under this key, while the text itself reads as a bracketed note
 * saying why (for listings). A workflow reading such a row fails with the error instead of
 * going on with the note. @internal
 */
export const UNDECODED_ERROR: unique symbol = Symbol('sdj.undecodedError');

/** The decode failure of a row's error text (see {@link UNDECODED_ERROR}), if any. @internal */
export function undecodedError(row: object): CodecError | undefined {
  return (row as { [UNDECODED_ERROR]?: CodecError })[UNDECODED_ERROR];
}

/**
 * The name of the payload codec that encoded a stored text, or undefined for plaintext (or a
 * text that is not a payload codec's). For tools reading rows without the codec: an encoded
 * value begins `sdj1:<codec name>:`.
 * @example encodedPayloadCodec(row.argsJson ?? '') // 'aes-256-gcm'
 */
export function encodedPayloadCodec(stored: string): string | undefined {
  if (!stored.startsWith(ENCODED_PREFIX)) return undefined;
  const end = stored.indexOf(':', ENCODED_PREFIX.length);
  if (end <= ENCODED_PREFIX.length) return undefined;
  const name = stored.slice(ENCODED_PREFIX.length, end);
  return name === '!' ? undefined : name;
}

/**
 * Encodes `value` as JSON text; `undefined` encodes as `null` (absent).
 * Accepts null, booleans, finite numbers, strings, arrays and plain objects. Object properties
 * whose value is `undefined` are omitted (as JSON does); everything else that JSON would change
 * silently — `undefined` in arrays, NaN, Infinity, -0, BigInt, functions, symbols, Dates, Maps,
 * class instances, cycles — is rejected.
 * @throws SerializationError, PayloadTooLargeError
 */
export function encodeJson(value: unknown, what: string, maxBytes = DEFAULT_MAX_PAYLOAD_BYTES): string | null {
  if (value === undefined) return null;
  let text: string;
  try {
    check(value, what, new Set());
    text = JSON.stringify(value);
  } catch (e) {
    // A value nested deeper than the stack allows: a typed error, not the engine's RangeError.
    if (e instanceof RangeError) throw new SerializationError(`${what} is nested too deeply to serialize`, { cause: e });
    throw e;
  }
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw new PayloadTooLargeError(what, bytes, maxBytes);
  return text;
}

/**
 * Decodes JSON text written by {@link encodeJson}; `null` decodes as `undefined`.
 * @throws CodecError for a payload a codec wrote that was not decoded; SerializationError for other text that is not JSON
 */
export function decodeJson(text: string | null, what = 'payload'): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
    // Only a failed parse looks for a codec's prefix: plaintext decoding costs nothing more.
    if (text.startsWith(UNDECODED_PREFIX)) throw new CodecError('decode', text.slice(UNDECODED_PREFIX.length));
    const codec = encodedPayloadCodec(text);
    if (codec !== undefined) throw new CodecError('decode', `${what} was encoded by the payload codec "${codec}", which this queue does not have (QueueOptions.codec)`);
    throw new SerializationError(`${what} is not valid JSON`, { cause });
  }
}

function check(v: unknown, path: string, seen: Set<object>): void {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(v)) throw new SerializationError(`${path} is ${String(v)}, which JSON cannot represent`);
      if (Object.is(v, -0)) throw new SerializationError(`${path} is -0, which JSON turns into 0`);
      return;
    case 'bigint':
      throw new SerializationError(`${path} is a BigInt, which JSON cannot represent (convert it to a string)`);
    case 'function':
      throw new SerializationError(`${path} is a function, which cannot be serialized`);
    case 'symbol':
      throw new SerializationError(`${path} is a symbol, which cannot be serialized`);
    case 'undefined':
      throw new SerializationError(`${path} is undefined inside an array, which JSON turns into null`);
    case 'object':
      break;
  }
  if (v === null) return;
  const obj = v as object;
  if (seen.has(obj)) throw new SerializationError(`${path} contains a circular reference`);
  seen.add(obj);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) check(obj[i], `${path}[${i}]`, seen);
  } else {
    const proto = Object.getPrototypeOf(obj) as unknown;
    if (proto !== Object.prototype && proto !== null) {
      const kind = (obj as { constructor?: { name?: string } }).constructor?.name ?? 'object';
      const hint = obj instanceof Date ? ' (pass date.toISOString() instead)' : '';
      throw new SerializationError(`${path} is a ${kind}, not a plain object${hint}`);
    }
    if (Object.getOwnPropertySymbols(obj).length > 0) throw new SerializationError(`${path} has symbol keys, which cannot be serialized`);
    for (const [k, val] of Object.entries(obj)) {
      if (val === undefined) continue;
      check(val, `${path}.${k}`, seen);
    }
  }
  seen.delete(obj);
}
