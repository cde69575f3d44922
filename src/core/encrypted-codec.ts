/**
 * `encryptedCodec`: AES-256-GCM payload encryption with key rotation, on `node:crypto`.
 *
 * A value is stored as `v1.<key id>.<base64url of IV (12 bytes), ciphertext, tag (16 bytes)>`
 * (after the engine's `sdj1:aes-256-gcm:` prefix). The key id is the first 4 bytes, in hex, of
 * an HMAC-SHA-256 of a fixed label under the key: it names the key without revealing it. The
 * header `aes-256-gcm:v1.<key id>` is authenticated data, so it cannot be altered either. Every
 * value gets a fresh random IV.
 * @module
 */
import { createCipheriv, createDecipheriv, createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { CodecError, InvalidArgumentError } from '../errors.js';
import type { PayloadCodec } from './payload-codec.js';

/** Options of {@link encryptedCodec}. */
export interface EncryptedCodecOptions {
  /** The current key: 32 bytes (`crypto.randomBytes(32)`). Every new value is encrypted with it. */
  key: Uint8Array;
  /**
   * Keys that encrypted values still stored: each value is decrypted with the key it names.
   * Drop a key once no stored value uses it (see docs/encryption.md, "Rotating keys").
   * @default []
   */
  previousKeys?: readonly Uint8Array[];
}

/** The codec {@link encryptedCodec} returns: a {@link PayloadCodec} that also names its keys. */
export interface EncryptedCodec extends PayloadCodec {
  /** `aes-256-gcm`. */
  readonly name: 'aes-256-gcm';
  /** True: the database holds ciphertext only. */
  readonly opaque: true;
  /** The id of the current key (8 hex digits), found in every value it encrypts. */
  readonly keyId: string;
  /** The ids of every key it decrypts with: the current one first, then `previousKeys` in order. */
  readonly keyIds: readonly string[];
}

const NAME = 'aes-256-gcm';
const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID_LABEL = 'simple-durable-jobs payload key id';
const ENVELOPE = /^v1\.([0-9a-f]{8})\.([A-Za-z0-9_-]+)$/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

interface Key {
  id: string;
  /** The whole HMAC of the key-id label: equal only for the same key (ids are 4 bytes of it). */
  fingerprint: string;
  secret: KeyObject;
  header: Buffer;
}

/**
 * A payload codec that encrypts every stored payload with AES-256-GCM. Values written before it
 * was turned on (plaintext) still read; a value that none of the keys opens (a wrong or
 * dropped key, altered text) fails its job with `CodecError` (`PAYLOAD_DECODE_FAILED`).
 * @example
 * const key = Buffer.from(process.env.SDJ_KEY!, 'base64');          // 32 bytes: crypto.randomBytes(32)
 * const oldKey = Buffer.from(process.env.SDJ_OLD_KEY!, 'base64');
 * const queue = new Queue(storage, { codec: encryptedCodec({ key, previousKeys: [oldKey] }) });
 * @throws InvalidArgumentError when a key is not a 32-byte Buffer or Uint8Array, or two keys are the same
 */
export function encryptedCodec(options: EncryptedCodecOptions): EncryptedCodec {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('encryptedCodec needs { key, previousKeys? }');
  for (const k of Object.keys(options)) if (k !== 'key' && k !== 'previousKeys') throw new InvalidArgumentError(`encryptedCodec: unknown option "${k}"`);
  const previous: unknown = options.previousKeys ?? [];
  if (!Array.isArray(previous)) throw new InvalidArgumentError('encryptedCodec: previousKeys must be an array of 32-byte keys');
  const keys = [readKey(options.key, 'key'), ...previous.map((k, i) => readKey(k, `previousKeys[${i}]`))];
  // Two different keys may share a 4-byte id (about 1 in 4 billion a pair): a value naming
  // that id is tried with each of them, and the authentication tag tells which one sealed it.
  const byId = new Map<string, Key[]>();
  keys.forEach((k, i) => {
    const first = keys.findIndex((o) => o.fingerprint === k.fingerprint);
    if (first < i) throw new InvalidArgumentError(`encryptedCodec: ${label(i)} is the same key as ${label(first)} (give each key once)`);
    const same = byId.get(k.id);
    if (same) same.push(k);
    else byId.set(k.id, [k]);
  });
  const current = keys[0]!;
  return Object.freeze({
    name: NAME,
    opaque: true as const,
    keyId: current.id,
    keyIds: Object.freeze(keys.map((k) => k.id)),
    encode(text: string): string {
      if (LONE_SURROGATE.test(text)) throw new CodecError('encode', 'the text has a lone UTF-16 surrogate, which UTF-8 cannot carry');
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', current.secret, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(current.header);
      const body = Buffer.concat([iv, cipher.update(text, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `${VERSION}.${current.id}.${body.toString('base64url')}`;
    },
    decode(stored: string): string {
      const m = ENVELOPE.exec(stored);
      if (m === null) throw new CodecError('decode', 'the stored text is not an aes-256-gcm v1 envelope (altered, or written by a newer version)');
      const id = m[1]!;
      const candidates = byId.get(id);
      if (!candidates) throw new CodecError('decode', `it was encrypted with key id ${id}, which is not one of this codec's keys (key ids ${[...byId.keys()].join(', ')})`);
      const raw = Buffer.from(m[2]!, 'base64url');
      if (raw.length < IV_BYTES + TAG_BYTES) throw new CodecError('decode', 'the stored text is too short to be an aes-256-gcm envelope (altered)');
      let failure: unknown;
      for (const key of candidates) {
        try {
          return open(key, raw);
        } catch (cause) {
          failure = cause;
        }
      }
      throw new CodecError('decode', `authentication failed with key id ${id}: the stored text was altered`, { cause: failure });
    },
  });
}

/** The text sealed in `raw` (IV, ciphertext, tag) under `key`; throws when the tag does not match. */
function open(key: Key, raw: Buffer): string {
  const decipher = createDecipheriv('aes-256-gcm', key.secret, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
  decipher.setAAD(key.header);
  decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
  return Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
}

function label(i: number): string {
  return i === 0 ? 'key' : `previousKeys[${i - 1}]`;
}

/** A validated key: copied (later changes to the caller's buffer do not reach it), with its id. */
function readKey(value: unknown, what: string): Key {
  if (!(value instanceof Uint8Array)) throw new InvalidArgumentError(`encryptedCodec: ${what} must be a 32-byte Buffer or Uint8Array (e.g. crypto.randomBytes(32)), got ${value === null ? 'null' : typeof value}`);
  if (value.length !== KEY_BYTES) throw new InvalidArgumentError(`encryptedCodec: ${what} must be 32 bytes long (AES-256), got ${value.length} bytes`);
  const secret = createSecretKey(Buffer.from(value));
  const fingerprint = createHmac('sha256', secret).update(KEY_ID_LABEL).digest('hex');
  const id = fingerprint.slice(0, 8);
  return { id, fingerprint, secret, header: Buffer.from(`${NAME}:${VERSION}.${id}`, 'utf8') };
}
