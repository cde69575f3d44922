/**
 * Payload codecs: what `QueueOptions.codec` takes, how a codec's text is framed in a column
 * (`sdj1:<name>:<text>`), and {@link composeCodecs}. The storage wrapper that applies a codec is
 * `codec-storage.ts`; the AES-256-GCM codec is `encrypted-codec.ts`.
 * @module
 */
import { CodecError, InvalidArgumentError, messageOf } from '../errors.js';
import { ENCODED_PREFIX, encodedPayloadCodec } from '../storage/codec.js';

/**
 * Turns payload text into stored text and back, at the storage boundary: job args, results,
 * checkpoint outputs and step errors, signal payloads, error texts, progress messages,
 * schedule options and fleet events go through it (job type, queue, meta, keys and tenant do
 * not). Both functions are synchronous and must be exact inverses: `decode(encode(t)) === t`
 * for any well-formed text `t` (JSON text, or an error or progress text).
 *
 * The engine stores `sdj1:<name>:` followed by what `encode` returns, so a codec never has to
 * tell its own output from plaintext written before it was turned on: text without that prefix
 * is read as it is, and text another codec wrote is refused with `CodecError`.
 * @example
 * // A compression codec (see docs/encryption.md):
 * const deflate: PayloadCodec = {
 *   name: 'deflate', opaque: false,
 *   encode: (text) => deflateRawSync(Buffer.from(text, 'utf8')).toString('base64'),
 *   decode: (stored) => inflateRawSync(Buffer.from(stored, 'base64')).toString('utf8'),
 * };
 */
export interface PayloadCodec {
  /**
   * Stored with every value it encodes: 1 to 64 characters from `A-Z a-z 0-9 . _ + -`. Keep it
   * stable: values stored under one name are not decoded by a codec of another.
   */
  readonly name: string;
  /**
   * True when the stored text reveals nothing the database could search (encryption). A queue
   * with an opaque codec refuses `search` in job listings (`PayloadOpaqueError`).
   */
  readonly opaque: boolean;
  /**
   * Payload text to stored text. The result must be text every database stores (no NUL
   * character; base64 is a safe choice). Throwing makes the write reject with `CodecError`
   * (`PAYLOAD_ENCODE_FAILED`), nothing written.
   */
  encode(text: string): string;
  /** Stored text (without the `sdj1:<name>:` prefix) back to the payload text; throws when it cannot. */
  decode(stored: string): string;
}

const NAME = /^[A-Za-z0-9._+-]{1,64}$/;

/**
 * Checks a `QueueOptions.codec` value: an object with a valid `name`, a boolean `opaque`, and
 * `encode` and `decode` functions. @throws InvalidArgumentError @internal
 */
export function checkCodec(codec: unknown): PayloadCodec {
  if (codec === null || typeof codec !== 'object') throw new InvalidArgumentError('codec must be a payload codec object (e.g. encryptedCodec({ key }))');
  const c = codec as Partial<PayloadCodec>;
  if (typeof c.name !== 'string' || !NAME.test(c.name)) throw new InvalidArgumentError('codec.name must be 1 to 64 characters from A-Z a-z 0-9 . _ + -');
  if (typeof c.opaque !== 'boolean') throw new InvalidArgumentError('codec.opaque must be a boolean');
  if (typeof c.encode !== 'function' || typeof c.decode !== 'function') throw new InvalidArgumentError('codec.encode and codec.decode must be functions');
  for (const fn of [c.encode, c.decode]) {
    if (fn.constructor.name === 'AsyncFunction') throw new InvalidArgumentError(`codec.${fn === c.encode ? 'encode' : 'decode'} must be synchronous (it returns the text itself, not a promise)`);
  }
  return c as PayloadCodec;
}

/**
 * One codec applying several in turn: `encode` runs them first to last, `decode` last to first.
 * Its name joins theirs with `+` (the `+` of each name kept); it is opaque when any is.
 * @example new Queue(storage, { codec: composeCodecs(deflateCodec, encryptedCodec({ key })) }) // compress, then encrypt
 * @throws InvalidArgumentError when no codec is given, one is not a codec, or the joined name is longer than 64 characters
 */
export function composeCodecs(...codecs: PayloadCodec[]): PayloadCodec {
  if (codecs.length === 0) throw new InvalidArgumentError('composeCodecs needs at least one codec');
  const list = codecs.map(checkCodec);
  const name = list.map((c) => c.name).join('+');
  if (name.length > 64) throw new InvalidArgumentError(`composeCodecs: the joined name "${name}" is longer than 64 characters`);
  return Object.freeze({
    name,
    opaque: list.some((c) => c.opaque),
    encode(text: string): string {
      let t = text;
      for (const c of list) t = c.encode(t);
      return t;
    },
    decode(stored: string): string {
      let t = stored;
      for (let i = list.length - 1; i >= 0; i--) t = list[i]!.decode(t);
      return t;
    },
  });
}

/**
 * The stored text of `text`: `sdj1:<name>:` and the codec's output.
 * @throws CodecError (`PAYLOAD_ENCODE_FAILED`) when the codec throws or returns text no database stores
 * @internal
 */
export function encodeStored(codec: PayloadCodec, text: string, what: string): string {
  let body: unknown;
  try {
    body = codec.encode(text);
  } catch (cause) {
    throw new CodecError('encode', `${what}: the payload codec "${codec.name}" failed to encode it: ${messageOf(cause)}`, { cause });
  }
  if (typeof body !== 'string') throw new CodecError('encode', `${what}: the payload codec "${codec.name}" returned ${notText(body)}, not text`);
  if (body.includes('\u0000')) throw new CodecError('encode', `${what}: the payload codec "${codec.name}" returned text with a NUL character, which PostgreSQL cannot store`);
  return `${ENCODED_PREFIX}${codec.name}:${body}`;
}

/**
 * The payload text of a stored text: plaintext (no `sdj1:<name>:` prefix) as it is, else what
 * the codec decodes. @throws CodecError (`PAYLOAD_DECODE_FAILED`) with the reason @internal
 */
export function decodeStored(codec: PayloadCodec, stored: string): string {
  if (!stored.startsWith(ENCODED_PREFIX)) return stored;
  const name = encodedPayloadCodec(stored);
  if (name === undefined) return stored;
  if (name !== codec.name) throw new CodecError('decode', `it was encoded by the payload codec "${name}", not by this queue's "${codec.name}"`);
  let text: unknown;
  try {
    text = codec.decode(stored.slice(ENCODED_PREFIX.length + name.length + 1));
  } catch (cause) {
    throw new CodecError('decode', messageOf(cause), { cause });
  }
  if (typeof text !== 'string') throw new CodecError('decode', `the payload codec "${codec.name}" returned ${notText(text)}, not text`);
  return text;
}

/** What a codec returned instead of text; a promise (an async function) is settled quietly so its rejection is not left unhandled. */
function notText(value: unknown): string {
  if (value !== null && typeof value === 'object' && typeof (value as PromiseLike<unknown>).then === 'function') {
    Promise.resolve(value).catch(() => {});
    return 'a promise (encode and decode must be synchronous)';
  }
  return value === null ? 'null' : typeof value;
}
