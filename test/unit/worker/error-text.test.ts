/**
 * `storableErrorText`: NUL and unpaired surrogates become U+FFFD, paired ones are kept, long
 * text is cut (never inside a pair) with a marker, and plain text comes back unchanged.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_TEXT_MAX, storableErrorText } from '../../../src/internal/error-text.js';

describe('storableErrorText', () => {
  it('returns plain text as is, emoji included', () => {
    for (const s of ['', 'boom', 'é😀 ok', 'x'.repeat(ERROR_TEXT_MAX)]) assert.equal(storableErrorText(s), s);
  });

  it('replaces NUL and unpaired surrogates with U+FFFD, keeps pairs', () => {
    assert.equal(storableErrorText('a\u0000b\u0000'), 'a\uFFFDb\uFFFD');
    assert.equal(storableErrorText('hi \uD83D'), 'hi \uFFFD');
    assert.equal(storableErrorText('\uDE00 lo'), '\uFFFD lo');
    assert.equal(storableErrorText('\uDE00\uD83D'), '\uFFFD\uFFFD', 'a low then a high surrogate are not a pair');
    assert.equal(storableErrorText('ok \uD83D\uDE00 \uD83D\uD83D\uDE00'), 'ok \uD83D\uDE00 \uFFFD\uD83D\uDE00');
  });

  it('cuts long text to the bound with a marker giving the full length', () => {
    const s = storableErrorText('y'.repeat(1 << 20));
    assert.equal(s.length <= ERROR_TEXT_MAX, true);
    assert.match(s, /^y+… \[truncated: 1048576 characters in all\]$/);
    assert.ok(s.length > ERROR_TEXT_MAX - 64, 'keeps nearly the whole bound');
  });

  it('never cuts inside a surrogate pair', () => {
    for (let shift = 0; shift < 4; shift++) {
      const s = storableErrorText('a'.repeat(shift) + '😀'.repeat(ERROR_TEXT_MAX));
      const body = s.slice(0, s.indexOf('…'));
      assert.ok(!/[\uD800-\uDBFF]$/.test(body), `shift ${shift}: no high surrogate left dangling`);
      assert.ok(s.length <= ERROR_TEXT_MAX);
    }
  });
});
