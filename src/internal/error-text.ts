/**
 * Error text as every database can store it. Handlers throw whatever they like — a message
 * with a NUL byte read off the wire, half of a UTF-16 surrogate pair cut by `slice`, a
 * megabyte of HTML — and the engine stores that text in `last_error` and in a failed step's
 * checkpoint. PostgreSQL refuses NUL in text (SQLSTATE 22021), MySQL and SQLite would store a
 * lone surrogate as garbage, and a huge text bloats every read of the job. So every error text
 * the engine stores goes through {@link storableErrorText} first: NUL and lone surrogates become
 * U+FFFD, and the text is cut to {@link ERROR_TEXT_MAX} characters with a marker saying so.
 * @internal
 */

/** The longest error text stored, in UTF-16 code units (the truncation marker included). */
export const ERROR_TEXT_MAX = 8192;

/** NUL, or any surrogate (paired ones are checked one by one in {@link replaceUnstorable}). */
// eslint-disable-next-line no-control-regex -- NUL is what this looks for
const SUSPECT = /[\u0000\uD800-\uDFFF]/;

/** NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
// eslint-disable-next-line no-control-regex -- NUL is what this looks for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * The text to store for an error message: NUL and unpaired surrogates replaced by U+FFFD, cut
 * to at most {@link ERROR_TEXT_MAX} code units (never inside a surrogate pair), ending with
 * `… [truncated: N characters in all]` when cut. Text that needs neither comes back as is.
 */
export function storableErrorText(text: string): string {
  return storableText(text, ERROR_TEXT_MAX);
}

/**
 * {@link storableErrorText} with another bound: NUL and unpaired surrogates replaced by U+FFFD,
 * cut to at most `max` code units (at least 64) with the same marker. Other texts the engine
 * stores from user code (progress messages) go through it.
 */
export function storableText(text: string, max: number): string {
  let s = SUSPECT.test(text) ? replaceUnstorable(text) : text;
  if (s.length > max) {
    const marker = `… [truncated: ${s.length} characters in all]`;
    let end = max - marker.length;
    const last = s.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    s = s.slice(0, end) + marker;
  }
  return s;
}

function replaceUnstorable(text: string): string {
  return text.replace(UNSTORABLE, '\uFFFD');
}
