// Bounds for human-readable text on its way into the Kubernetes API. Some of it comes from places nobody
// trusts (a guest's console quoted by the daemon, a daemon's error details), so before any text becomes a
// condition message or an Event message it is made printable (no control characters or terminal escapes, no
// invalid UTF-16) and cut to a size the API accepts and a human can read. setCondition() and EventRecorder
// apply this to every message; nothing else needs to.

/**
 * An Event's message: events.k8s.io/v1 refuses notes over 1 KiB (and client-go's recorders cut core/v1
 * messages to the same), so this is the most any Event message can carry.
 */
export const EVENT_MESSAGE_MAX_BYTES = 1024;

/**
 * A condition's message: metav1.Condition allows 32 KiB, but every status write and every watch event carries
 * it and `kubectl describe` prints it whole, so 4 KiB (the `status.message` limit of the Tern kinds) is the
 * most a condition says.
 */
export const CONDITION_MESSAGE_MAX_BYTES = 4096;

/**
 * Terminal escape sequences: CSI, terminated OSC and DCS/SOS/PM/APC strings on one line, and the other ESC
 * sequences (an unterminated string loses only its introducer, so it cannot hide the text after it).
 */
const ESCAPE_SEQUENCE =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)|\x1b[PX^_][^\x1b\n]*\x1b\\|\x1b[ -/]*[0-~]/g;
/** Control characters except newline (C0, DEL, C1), bidi overrides/isolates, line/paragraph separators. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_RUN = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufffd]+/g;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
const REPLACEMENT = '\ufffd';
/** What a newline becomes in single-line text. */
export const LINE_BREAK_MARK = ' \u23ce ';

export interface SanitizeOptions {
  /** Newlines become LINE_BREAK_MARK (e.g. for Events, shown one per table row). Default false. */
  singleLine?: boolean;
}

/**
 * Printable text: terminal escape sequences are dropped, CRLF becomes a newline, a tab a space, and every run
 * of other control characters (and of U+FFFD, which is what invalid UTF-8 decodes to) becomes one U+FFFD.
 * Idempotent.
 */
export function sanitizeText(text: string, options: SanitizeOptions = {}): string {
  let clean = text
    .replace(LONE_SURROGATE, REPLACEMENT)
    .replace(ESCAPE_SEQUENCE, '')
    .replace(/\r\n/g, '\n')
    .replace(/\t/g, ' ')
    .replace(CONTROL_RUN, REPLACEMENT);
  if (options.singleLine) clean = clean.replace(/\n+/g, LINE_BREAK_MARK);
  return clean;
}

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** The longest prefix of `text` that is at most `maxBytes` of UTF-8; never splits a character. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (utf8Length(text) <= maxBytes) return text;
  let bytes = 0;
  let end = 0;
  for (const char of text) {
    const size = utf8Length(char);
    if (bytes + size > maxBytes) break;
    bytes += size;
    end += char.length;
  }
  return text.slice(0, end);
}

/** The longest suffix of `text` that is at most `maxBytes` of UTF-8; never splits a character. */
export function truncateUtf8Start(text: string, maxBytes: number): string {
  if (utf8Length(text) <= maxBytes) return text;
  // Every UTF-16 unit is at least one byte, so the answer lies in the last maxBytes units (minus a half pair).
  let window = text.slice(-maxBytes || text.length);
  if (/^[\udc00-\udfff]/.test(window)) window = window.slice(1);
  const chars = Array.from(window);
  let bytes = 0;
  let start = chars.length;
  while (start > 0) {
    const size = utf8Length(chars[start - 1]!);
    if (bytes + size > maxBytes) break;
    bytes += size;
    start--;
  }
  return chars.slice(start).join('');
}

const cutMark = (bytes: number): string => ` \u2026[${bytes} bytes cut]\u2026 `;

/**
 * `text` made printable (sanitizeText) and at most `maxBytes` of UTF-8. Text that is too long keeps its
 * beginning (what happened) and its end (the latest lines), with the middle replaced by a mark saying how
 * much was cut. Idempotent, so a bounded message compares equal to itself bounded again.
 */
export function boundMessage(text: string, maxBytes: number, options: SanitizeOptions = {}): string {
  const clean = sanitizeText(text, options);
  const total = utf8Length(clean);
  if (total <= maxBytes) return clean;
  const room = maxBytes - utf8Length(cutMark(total));
  if (room < 16) return truncateUtf8(clean, maxBytes);
  const head = truncateUtf8(clean, Math.ceil((room * 2) / 3));
  const tail = truncateUtf8Start(clean, room - utf8Length(head));
  return head + cutMark(total - utf8Length(head) - utf8Length(tail)) + tail;
}

/** A condition message as the API should store it. */
export function boundConditionMessage(message: string): string {
  return boundMessage(message, CONDITION_MESSAGE_MAX_BYTES);
}

/** An Event message as the API should store it: one line, at most 1 KiB. */
export function boundEventMessage(message: string): string {
  return boundMessage(message, EVENT_MESSAGE_MAX_BYTES, { singleLine: true });
}
