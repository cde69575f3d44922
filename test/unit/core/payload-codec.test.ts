/**
 * Payload codecs without a database: `encryptedCodec` (key checks, envelope, tampering, key
 * ids, rotation), `composeCodecs`, the documented compression codec, the `sdj1:` framing and
 * what `decodeJson` says about a payload a codec wrote.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { encryptedCodec } from '../../../src/core/encrypted-codec.js';
import { checkCodec, composeCodecs, decodeStored, encodeStored, type PayloadCodec } from '../../../src/core/payload-codec.js';
import { CodecError, InvalidArgumentError, isDurableJobsError } from '../../../src/errors.js';
import { Queue } from '../../../src/queue/queue.js';
import { decodeJson, encodedPayloadCodec } from '../../../src/storage/codec.js';
import { SqliteStorage } from '../../../src/storage/sqlite/sqlite-storage.js';

/** The compression codec of docs/encryption.md, verbatim. */
const deflateCodec: PayloadCodec = {
  name: 'deflate',
  opaque: true, // the database cannot search compressed text
  encode: (text) => deflateRawSync(Buffer.from(text, 'utf8')).toString('base64'),
  decode: (stored) => inflateRawSync(Buffer.from(stored, 'base64')).toString('utf8'),
};

const TEXTS = ['', '{}', '"a\\u0000b"', 'plain error text', '😀𝄞 \u{10FFFF} é', 'x'.repeat(100_000)];

const isInvalid = (e: unknown): boolean => e instanceof InvalidArgumentError && e.code === 'INVALID_ARGUMENT';

describe('encryptedCodec', () => {
  it('round-trips any well-formed text, with a fresh IV per value and the current key id in the envelope', () => {
    const codec = encryptedCodec({ key: randomBytes(32) });
    assert.equal(codec.name, 'aes-256-gcm');
    assert.equal(codec.opaque, true);
    assert.match(codec.keyId, /^[0-9a-f]{8}$/);
    for (const t of TEXTS) {
      const a = codec.encode(t);
      const b = codec.encode(t);
      assert.notEqual(a, b, 'two encodings of one text differ');
      assert.match(a, new RegExp(`^v1\\.${codec.keyId}\\.[A-Za-z0-9_-]+$`));
      assert.equal(codec.decode(a), t);
    }
  });

  it('checks keys up front: 32-byte Buffers or Uint8Arrays, each given once; messages never show a key', () => {
    const k = randomBytes(32);
    assert.throws(() => encryptedCodec({ key: randomBytes(16) }), isInvalid);
    assert.throws(() => encryptedCodec({ key: k.toString('base64') as unknown as Buffer }), isInvalid);
    assert.throws(() => encryptedCodec(undefined as unknown as { key: Buffer }), isInvalid);
    assert.throws(() => encryptedCodec({ key: k, previousKeys: k as unknown as Buffer[] }), isInvalid);
    assert.throws(() => encryptedCodec({ key: k, previousKeys: [randomBytes(31)] }), isInvalid);
    assert.throws(() => encryptedCodec({ key: k, extra: 1 } as unknown as { key: Buffer }), isInvalid);
    assert.throws(
      () => encryptedCodec({ key: k, previousKeys: [randomBytes(32), Buffer.from(k)] }),
      (e: unknown) => isInvalid(e) && /previousKeys\[1\] is the same key as key/.test((e as Error).message) && !(e as Error).message.includes(k.toString('hex')),
    );
    const u8 = new Uint8Array(32).fill(7);
    assert.equal(encryptedCodec({ key: u8 }).decode(encryptedCodec({ key: Buffer.from(u8) }).encode('same key bytes')), 'same key bytes');
  });

  it('keeps its own copy of the keys', () => {
    const k = randomBytes(32);
    const codec = encryptedCodec({ key: k });
    const stored = codec.encode('copied');
    k.fill(0);
    assert.equal(codec.decode(stored), 'copied');
  });

  it('rotation: decrypts with the key an envelope names, encrypts with the current one', () => {
    const oldKey = randomBytes(32);
    const before = encryptedCodec({ key: oldKey });
    const after = encryptedCodec({ key: randomBytes(32), previousKeys: [oldKey] });
    assert.deepEqual(after.keyIds, [after.keyId, before.keyId]);
    assert.equal(after.decode(before.encode('old')), 'old');
    assert.ok(after.encode('new').startsWith(`v1.${after.keyId}.`));
    const dropped = encryptedCodec({ key: randomBytes(32) });
    assert.throws(
      () => dropped.decode(before.encode('old')),
      (e: unknown) => e instanceof CodecError && e.code === 'PAYLOAD_DECODE_FAILED' && e.message.includes(`key id ${before.keyId}`),
    );
  });

  it('refuses altered text: a flipped byte, another key id, a bad header, a truncated body', () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const codec = encryptedCodec({ key: k1, previousKeys: [k2] });
    const other = encryptedCodec({ key: k2 });
    const stored = codec.encode('{"amount":100}');
    const [, kid, body] = stored.split('.') as [string, string, string];
    const flipped = Buffer.from(body, 'base64url');
    flipped[flipped.length - 20]! ^= 1;
    const decodeFails = (text: string, why: RegExp): void => assert.throws(() => codec.decode(text), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_DECODE_FAILED') && why.test((e as Error).message));
    decodeFails(`v1.${kid}.${flipped.toString('base64url')}`, /authentication failed/);
    decodeFails(`v1.${other.keyId}.${body}`, /authentication failed/); // the key id is authenticated data
    decodeFails(`v2.${kid}.${body}`, /not an aes-256-gcm v1 envelope/);
    decodeFails(`v1.${kid}.AAAA`, /too short/);
    decodeFails('v1.00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', /not one of this codec's keys/);
  });

  it('two different keys with the same key id (8 hex digits) are both kept: each value opens with the key that sealed it', () => {
    // Found by search: these two keys share the key id 293d1973.
    const k1 = createHash('sha256').update('sdj-key-id-collision-778').digest();
    const k2 = createHash('sha256').update('sdj-key-id-collision-136674').digest();
    const c1 = encryptedCodec({ key: k1 });
    const c2 = encryptedCodec({ key: k2 });
    assert.equal(c1.keyId, c2.keyId, 'the ids collide');
    const both = encryptedCodec({ key: k2, previousKeys: [k1] });
    assert.equal(both.decode(c1.encode('sealed by k1')), 'sealed by k1');
    assert.equal(both.decode(c2.encode('sealed by k2')), 'sealed by k2');
    assert.throws(() => encryptedCodec({ key: k1, previousKeys: [k2, Buffer.from(k1)] }), (e: unknown) => isInvalid(e) && /previousKeys\[1\] is the same key as key/.test((e as Error).message));
  });

  it('keys: a Uint8Array view uses its own bytes only; other typed arrays are refused; 100 previous keys work', () => {
    const big = randomBytes(64);
    const view = new Uint8Array(big.buffer, big.byteOffset + 16, 32);
    assert.equal(encryptedCodec({ key: view }).decode(encryptedCodec({ key: Buffer.from(big.subarray(16, 48)) }).encode('view')), 'view');
    assert.throws(() => encryptedCodec({ key: new Float32Array(8) as unknown as Uint8Array }), isInvalid);
    assert.throws(() => encryptedCodec({ key: new DataView(new ArrayBuffer(32)) as unknown as Uint8Array }), isInvalid);
    assert.throws(() => encryptedCodec({ key: randomBytes(32), previousKeys: [null as unknown as Buffer] }), (e: unknown) => isInvalid(e) && /previousKeys\[0\]/.test((e as Error).message));
    const old = Array.from({ length: 100 }, () => randomBytes(32));
    const codec = encryptedCodec({ key: randomBytes(32), previousKeys: old });
    assert.equal(codec.keyIds.length, 101);
    assert.equal(codec.decode(encryptedCodec({ key: old[99]! }).encode('the oldest')), 'the oldest');
  });

  it('refuses to encode a lone surrogate (UTF-8 cannot carry it)', () => {
    assert.throws(() => encryptedCodec({ key: randomBytes(32) }).encode('a\uD800b'), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_ENCODE_FAILED'));
  });
});

describe('codec framing, composeCodecs and the compression codec', () => {
  it('frames values as sdj1:<name>:…; plaintext passes through; another codec is refused', () => {
    const codec = encryptedCodec({ key: randomBytes(32) });
    const stored = encodeStored(codec, '{"a":1}', 'args');
    assert.ok(stored.startsWith('sdj1:aes-256-gcm:v1.'));
    assert.equal(encodedPayloadCodec(stored), 'aes-256-gcm');
    assert.equal(encodedPayloadCodec('{"a":1}'), undefined);
    assert.equal(decodeStored(codec, stored), '{"a":1}');
    assert.equal(decodeStored(codec, '{"a":1}'), '{"a":1}', 'plaintext written before the codec');
    assert.equal(decodeStored(codec, 'lease expired: the worker stopped heartbeating'), 'lease expired: the worker stopped heartbeating');
    assert.throws(() => decodeStored(deflateCodec, stored), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_DECODE_FAILED') && /"aes-256-gcm", not by this queue's "deflate"/.test((e as Error).message));
  });

  it('decodeJson of a payload a codec wrote, without that codec, is a CodecError naming the codec', () => {
    const stored = encodeStored(encryptedCodec({ key: randomBytes(32) }), '{"a":1}', 'args');
    assert.throws(() => decodeJson(stored, 'args'), (e: unknown) => e instanceof CodecError && /args was encoded by the payload codec "aes-256-gcm"/.test(e.message));
    assert.throws(() => decodeJson('not json', 'args'), (e: unknown) => isDurableJobsError(e, 'SERIALIZATION'));
  });

  it('the documented compression codec round-trips and shrinks repetitive payloads', () => {
    for (const t of TEXTS) assert.equal(deflateCodec.decode(deflateCodec.encode(t)), t);
    const big = JSON.stringify({ rows: Array.from({ length: 500 }, (_, i) => ({ id: i, status: 'active' })) });
    assert.ok(deflateCodec.encode(big).length < big.length / 4);
  });

  it('composeCodecs runs codecs in order to encode and in reverse to decode', () => {
    const codec = encryptedCodec({ key: randomBytes(32) });
    const both = composeCodecs(deflateCodec, codec);
    assert.equal(both.name, 'deflate+aes-256-gcm');
    assert.equal(both.opaque, true);
    for (const t of TEXTS) assert.equal(both.decode(both.encode(t)), t);
    const stored = both.encode('x'.repeat(10_000));
    assert.equal(inflateRawSync(Buffer.from(codec.decode(stored), 'base64')).toString('utf8'), 'x'.repeat(10_000), 'compressed first, then encrypted');
    assert.ok(stored.length < 200);
    assert.throws(() => composeCodecs(), isInvalid);
    assert.throws(() => composeCodecs(deflateCodec, {} as PayloadCodec), isInvalid);
  });

  it('a codec with async functions is refused up front; one returning a promise fails its write without an unhandled rejection', async () => {
    const asyncCodec = { name: 'async', opaque: false, encode: async (t: string) => t, decode: (t: string) => t };
    assert.throws(() => checkCodec(asyncCodec), (e: unknown) => isInvalid(e) && /codec.encode must be synchronous/.test((e as Error).message));
    assert.throws(() => checkCodec({ ...asyncCodec, encode: (t: string) => t, decode: async (t: string) => t }), (e: unknown) => isInvalid(e) && /codec.decode must be synchronous/.test((e as Error).message));
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown): void => void unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      const promising = { name: 'promising', opaque: false, encode: (() => Promise.reject(new Error('later'))) as unknown as (t: string) => string, decode: (t: string) => t };
      assert.throws(() => encodeStored(promising, '{}', 'args of job x'), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_ENCODE_FAILED') && /returned a promise/.test((e as Error).message));
      const decoding = { ...promising, encode: (t: string) => t, decode: (() => Promise.reject(new Error('later'))) as unknown as (t: string) => string };
      assert.throws(() => decodeStored(decoding, 'sdj1:promising:{}'), (e: unknown) => isDurableJobsError(e, 'PAYLOAD_DECODE_FAILED') && /returned a promise/.test((e as Error).message));
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(unhandled, [], 'no unhandled rejection');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it("a queue given another encrypted queue's storage with a codec is refused (payloads would be encoded twice)", async () => {
    const storage = new SqliteStorage(':memory:');
    const first = new Queue(storage, { codec: encryptedCodec({ key: randomBytes(32) }) });
    assert.throws(() => new Queue(first.storage, { codec: encryptedCodec({ key: randomBytes(32) }) }), isInvalid);
    assert.ok(new Queue(first.storage).storage, 'without a codec it shares the first queue\'s view');
    await storage.close();
  });

  it('QueueOptions.codec is checked: name, opaque flag and functions', async () => {
    const storage = new SqliteStorage(':memory:');
    try {
      for (const bad of [null, {}, { name: 'x y', opaque: false, encode: String, decode: String }, { name: 'x', opaque: 'no', encode: String, decode: String }, { name: 'x', opaque: false, encode: 1, decode: String }]) {
        assert.throws(() => new Queue(storage, { codec: bad as unknown as PayloadCodec }), isInvalid, JSON.stringify(bad));
      }
      assert.equal(checkCodec(deflateCodec), deflateCodec);
    } finally {
      await storage.close();
    }
  });
});
