// Text the guest controls (its serial console; QEMU's log, which can quote it) on its way into a guest's status
// message, and from there over gRPC into VirtualMachine conditions and Events. A guest can print megabytes,
// control characters, terminal escapes and invalid UTF-8, so what the daemon quotes is bounded here, where it
// enters: a few lines, each one cut, the whole at most about 1 KiB, printable (kube/messages.ts), and every cut
// marked. The operator bounds every message again on its way into the API (setCondition, EventRecorder).
import { sanitizeText, truncateUtf8, utf8Length } from '../../../kube/messages.js';

export interface GuestTextLimits {
  /** The most recent lines kept. */
  maxLines: number;
  /** UTF-8 bytes per line, the cut mark included. */
  maxLineBytes: number;
  /** UTF-8 bytes of the whole, newlines and marks included. */
  maxBytes: number;
}

/** The guest's console as quoted in a Failed guest's message. */
export const CONSOLE_TAIL_LIMITS: GuestTextLimits = { maxLines: 10, maxLineBytes: 160, maxBytes: 1024 };
/** QEMU's own last words in the same message. */
export const QEMU_LOG_TAIL_LIMITS: GuestTextLimits = { maxLines: 3, maxLineBytes: 240, maxBytes: 512 };

const lineCutMark = (bytes: number): string => ` \u2026[+${bytes} bytes]`;
const earlierMark = (lines: number): string => `\u2026[${lines} earlier line${lines === 1 ? '' : 's'} cut]`;

/** One printable line of at most maxBytes, its cut marked with how much is missing. */
function boundLine(line: string, maxBytes: number): string {
  const length = utf8Length(line);
  if (length <= maxBytes) return line;
  const head = truncateUtf8(line, Math.max(0, maxBytes - utf8Length(lineCutMark(length))));
  return truncateUtf8(head + lineCutMark(length - utf8Length(head)), maxBytes);
}

/**
 * The last non-empty lines of `text`, each printable (no control characters or terminal escapes; invalid UTF-8
 * shows as U+FFFD) and cut to limits.maxLineBytes, at most limits.maxLines of them and limits.maxBytes in all;
 * lines dropped for room are counted in a first line. '' when nothing printable is left.
 */
export function boundGuestLines(text: string, limits: GuestTextLimits): string {
  const all = sanitizeText(text)
    .split('\n')
    .filter((line) => line.trim().length > 0);
  const lines = all.slice(-Math.max(0, limits.maxLines)).map((line) => boundLine(line, limits.maxLineBytes));
  let dropped = all.length - lines.length;
  const size = (): number =>
    lines.reduce((sum, line) => sum + utf8Length(line) + 1, 0) +
    (dropped > 0 ? utf8Length(earlierMark(dropped)) : -1);
  while (lines.length > 1 && size() > limits.maxBytes) {
    lines.shift();
    dropped++;
  }
  const out = dropped > 0 ? [earlierMark(dropped), ...lines] : lines;
  return boundLine(out.join('\n'), limits.maxBytes);
}
