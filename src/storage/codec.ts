/**
 * Strict JSON encoding of user payloads (args, results, meta, signal payloads). A value is
 * accepted only if it survives a JSON round trip unchanged, so a replayed step or a decoded
 * job sees exactly what was written. Rejections are `SerializationError`s naming the path.
 * @module
 */
import { PayloadTooLargeError, SerializationError } from '../errors.js';

/** Default cap on one encoded payload: 1 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

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
  check(value, what, new Set());
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > maxBytes) throw new PayloadTooLargeError(what, bytes, maxBytes);
  return text;
}

/** Decodes JSON text written by {@link encodeJson}; `null` decodes as `undefined`. */
export function decodeJson(text: string | null, what = 'payload'): unknown {
  if (text === null) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (cause) {
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
