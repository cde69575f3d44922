/**
 * fast-check arbitraries for the public-API properties: values that JSON carries exactly,
 * values it does not, names (with SQL-looking text on purpose), options — each tagged with the
 * error code the library must reject it with (`bad`), or `null` when it must be accepted.
 * The expectations are written here independently of the library's validation code.
 */
import fc from 'fast-check';

/** A generated input and the error code it must be rejected with (null: must be accepted). */
export interface Tagged {
  v: unknown;
  bad: string | null;
}

/** Text that would break a statement built by string concatenation. */
export const INJECTIONS = [
  "x'; DROP TABLE sdj_jobs; --",
  '"); DELETE FROM sdj_jobs; --',
  "' OR '1'='1",
  '\\',
  "\\'",
  '$1',
  '?',
  '%_',
  '/* */',
  '`sdj_jobs`',
  'sdj_jobs"."id',
  "Robert'); DROP TABLE Students;--",
  'ünïcødé 😀 ∑',
];

const ok = (arb: fc.Arbitrary<unknown>): fc.Arbitrary<Tagged> => arb.map((v) => ({ v, bad: null }));
const bad = (code: string, arb: fc.Arbitrary<unknown>): fc.Arbitrary<Tagged> => arb.map((v) => ({ v, bad: code }));
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** A lone (unpaired) UTF-16 surrogate: text no UTF-8 database column can store as is. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const wellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);

/** Any string (full UTF-16 range, lone surrogates included) mixed with injection text. */
export const anyText = (max = 40): fc.Arbitrary<string> =>
  fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ unit: 'binary', maxLength: max }), fc.string({ unit: 'grapheme', maxLength: max }));

/** JSON values that survive a JSON round trip unchanged; objects may hold undefined properties (dropped). */
export const jsonExact: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown; arr: unknown[]; obj: Record<string, unknown> }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Object.is(d, -0) ? 0 : d)),
    fc.maxSafeInteger(),
    anyText(30),
    tie('arr'),
    tie('obj'),
  ),
  arr: fc.array(tie('value'), { maxLength: 4 }),
  obj: fc.dictionary(anyText(12), fc.option(tie('value'), { nil: undefined, freq: 4 }), { maxKeys: 4 }),
})).value;

class Custom {
  x = 1;
}

/** A value JSON cannot carry exactly (the library must reject it with SerializationError). */
const badLeaf: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, -0),
  fc.bigInt().map((b) => b),
  fc.constant(new Date(0)),
  fc.constant(new Map([[1, 2]])),
  fc.constant(() => 1),
  fc.constant(Symbol('s')),
  fc.constant([1, undefined]),
  fc.constant(new Custom()),
  fc.constant(null).map(() => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    return cyclic;
  }),
);

/** Args: exact JSON (sometimes big, to cross the payload limit), or with a bad value somewhere. */
export function argsArb(maxBytes: number): fc.Arbitrary<Tagged> {
  const big = fc.string({ unit: 'grapheme', minLength: maxBytes / 4, maxLength: maxBytes }).map((s) => ({ blob: s }));
  return fc.oneof(
    { arbitrary: ok(jsonExact), weight: 12 },
    { arbitrary: ok(fc.constant(undefined)), weight: 1 },
    { arbitrary: ok(big), weight: 2 },
    { arbitrary: bad('SERIALIZATION', badLeaf), weight: 1 },
    { arbitrary: bad('SERIALIZATION', fc.tuple(jsonExact, badLeaf).map(([a, b]) => ({ a, nested: [{ b }] }))), weight: 1 },
  ).map((t) => sized(t, maxBytes));
}

/** Re-tags an accepted payload that encodes over the limit as PAYLOAD_TOO_LARGE. */
export function sized(t: Tagged, maxBytes: number): Tagged {
  if (t.bad !== null || t.v === undefined) return t;
  return Buffer.byteLength(JSON.stringify(t.v), 'utf8') > maxBytes ? { v: t.v, bad: 'PAYLOAD_TOO_LARGE' } : t;
}

/** Strings a UTF-8 database cannot store as given, or that carry control characters. */
const awkward = fc.constantFrom('a\uD800b', 'x\uDC00', '\uDBFF', 'nul\u0000inside', 'tab\there', 'bell\u0007');

/**
 * Job type names for `enqueue`: non-empty, <= 255 UTF-16 units, no control characters,
 * well-formed text. (`register` also refuses the workflow's checkpoint names — `fan-out`,
 * `sleep`, `signal:*` — but a producer may enqueue any type: it simply finds no handler.)
 */
export const typeArb: fc.Arbitrary<Tagged> = fc.oneof(
  { arbitrary: ok(fc.oneof(fc.constantFrom(...INJECTIONS, 'fan-out', 'sleep', 'signal:go'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).filter((v) => !CONTROL.test(v)))), weight: 8 },
  { arbitrary: anyText(60).map((v) => ({ v, bad: v.length === 0 || CONTROL.test(v) || !wellFormed(v) ? 'INVALID_ARGUMENT' : null })), weight: 2 },
  { arbitrary: bad('INVALID_ARGUMENT', fc.oneof(awkward, fc.constantFrom('', 'x'.repeat(256), 7, null, ['x'], { type: 3 }))), weight: 1 },
);

/** Queue names: `[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}`. */
export const queueArb: fc.Arbitrary<Tagged> = fc.oneof(
  { arbitrary: ok(fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,40}$/)), weight: 6 },
  { arbitrary: anyText(30).map((v) => ({ v, bad: /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(v) ? null : 'INVALID_ARGUMENT' })), weight: 1 },
  { arbitrary: bad('INVALID_ARGUMENT', fc.constantFrom('q'.repeat(129), '-lead', 'has space', '', 5)), weight: 1 },
);

/** Unique keys and tenants: 1..255 UTF-16 units of well-formed text without NUL. */
export const tagArb: fc.Arbitrary<Tagged> = fc.oneof(
  { arbitrary: ok(fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).filter((v) => !v.includes('\u0000')))), weight: 8 },
  { arbitrary: anyText(40).map((v) => ({ v, bad: v.length === 0 || v.includes('\u0000') || !wellFormed(v) ? 'INVALID_ARGUMENT' : null })), weight: 2 },
  { arbitrary: bad('INVALID_ARGUMENT', fc.oneof(awkward.filter((v) => v.includes('\u0000') || !wellFormed(v)), fc.constantFrom('', 't'.repeat(256), 3, false))), weight: 1 },
);

/** A plain object of exact JSON values, or something meta must not be. */
export function metaArb(maxBytes: number): fc.Arbitrary<Tagged> {
  return fc.oneof(
    { arbitrary: ok(fc.dictionary(anyText(12), jsonExact, { maxKeys: 4 })).map((t) => sized(t, maxBytes)), weight: 10 },
    { arbitrary: bad('INVALID_ARGUMENT', fc.constantFrom(null, [1, 2], 'meta', 5)), weight: 1 },
    { arbitrary: bad('SERIALIZATION', badLeaf.map((b) => ({ b }))), weight: 1 },
  );
}

const int32 = { min: -2_147_483_648, max: 2_147_483_647 };
const notNumber = fc.constantFrom('1', null, true, [1]);

/** Enqueue options with each key present or not, tagged with every code they must cause. */
export function optionsArb(maxBytes: number): fc.Arbitrary<{ options: Record<string, unknown> | undefined; bad: string[] }> {
  const field = (good: fc.Arbitrary<unknown>, worse: fc.Arbitrary<unknown>): fc.Arbitrary<Tagged> =>
    fc.oneof({ arbitrary: ok(good), weight: 12 }, { arbitrary: bad('INVALID_ARGUMENT', worse), weight: 1 });
  const maybe = (a: fc.Arbitrary<Tagged>): fc.Arbitrary<Tagged | undefined> => fc.option(a, { nil: undefined, freq: 2 });
  return fc
    .record({
      priority: maybe(field(fc.integer(int32), fc.oneof(fc.double({ min: -10, max: 10 }).filter((d) => !Number.isInteger(d)), fc.constantFrom(2 ** 31, -(2 ** 31) - 1, NaN), notNumber))),
      retries: maybe(field(fc.integer({ min: 0, max: 10_000 }), fc.oneof(fc.constantFrom(-1, 10_001, 1.5, NaN), notNumber))),
      delay: maybe(field(fc.oneof(fc.integer({ min: 0, max: 10_000 }), fc.double({ min: 0, max: 5000, noNaN: true })), fc.constantFrom(-1, NaN, Infinity, 4e12, '10'))),
      runAt: maybe(field(fc.date({ min: new Date(0), max: new Date(4_102_444_800_000), noInvalidDate: true }), fc.constantFrom(new Date(NaN), '2024-01-01T00:00:00Z', 0))),
      timeout: maybe(field(fc.integer({ min: 1, max: 2_147_483_647 }), fc.constantFrom(0, -5, 2_147_483_648, NaN, '5'))),
      queue: maybe(queueArb),
      unique: maybe(tagArb),
      tenant: maybe(tagArb),
      meta: maybe(metaArb(maxBytes)),
      unknownKey: fc.oneof({ arbitrary: fc.constant(undefined), weight: 15 }, { arbitrary: fc.constantFrom('retry', 'Priority', 'unique_key', 'transactions'), weight: 1 }),
      absent: fc.boolean(),
    })
    .map((r) => {
      const options: Record<string, unknown> = {};
      const codes: string[] = [];
      for (const [k, t] of Object.entries(r)) {
        if (k === 'unknownKey' || k === 'absent' || t === undefined) continue;
        const tagged = t as Tagged;
        options[k] = tagged.v;
        if (tagged.bad) codes.push(tagged.bad);
      }
      if (r.unknownKey !== undefined) {
        options[r.unknownKey] = 1;
        codes.push('INVALID_ARGUMENT');
      }
      if (r.absent && Object.keys(options).length === 0) return { options: undefined, bad: codes };
      return { options, bad: codes };
    });
}
