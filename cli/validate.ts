// Checks on command-line input, done before any API call so that a typo fails fast with a message that names
// the flag. The rules mirror the CRD schema (crds/src); the apiserver stays the final judge.
import {
  BYTE_QUANTITY_PATTERN,
  DNS1123_LABEL_MAX_LENGTH,
  DNS1123_LABEL_PATTERN,
  DNS1123_SUBDOMAIN_MAX_LENGTH,
  DNS1123_SUBDOMAIN_PATTERN,
  DOWNTIME_MS_MIN,
  MAX_DOWNTIME_MS_MAX,
  UNLIMITED_BANDWIDTH,
  parseByteQuantity,
} from '../crds/index.js';

/** A mistake in the command line; the message is shown as is and the process exits non-zero. */
export class InputError extends Error {
  override name = 'InputError';
}

const MIN_BANDWIDTH = 1024 * 1024;
const LABEL_RE = new RegExp(DNS1123_LABEL_PATTERN);
const SUBDOMAIN_RE = new RegExp(DNS1123_SUBDOMAIN_PATTERN);

/** A VirtualMachine name (or a namespace): a DNS-1123 label. */
export function validateLabelName(what: string, value: string): string {
  if (value.length > DNS1123_LABEL_MAX_LENGTH || !LABEL_RE.test(value)) {
    throw new InputError(
      `invalid ${what} ${JSON.stringify(value)}: must be a DNS-1123 label (lower-case letters, digits and ` +
        `'-', starting and ending with a letter or digit, at most ${DNS1123_LABEL_MAX_LENGTH} characters)`,
    );
  }
  return value;
}

/** A HypervisorNode name: a DNS-1123 subdomain. */
export function validateNodeName(value: string): string {
  if (value.length > DNS1123_SUBDOMAIN_MAX_LENGTH || !SUBDOMAIN_RE.test(value)) {
    throw new InputError(
      `invalid node name ${JSON.stringify(value)}: must be a DNS-1123 subdomain (lower-case letters, digits, ` +
        `'-' and '.', at most ${DNS1123_SUBDOMAIN_MAX_LENGTH} characters)`,
    );
  }
  return value;
}

/**
 * `--bandwidth`: a byte quantity per second ("1Gi", "500M", "125000000"), or 0 / "unlimited" for no cap. Kept as
 * the user wrote it: the CRD field is int-or-string and the operator parses it.
 */
export function parseBandwidth(value: string): string {
  if (value === UNLIMITED_BANDWIDTH) return value;
  const hint = 'e.g. 1Gi, 500M, 125000000, or "unlimited"';
  if (!new RegExp(BYTE_QUANTITY_PATTERN).test(value)) {
    throw new InputError(`invalid --bandwidth ${JSON.stringify(value)}: expected bytes per second, ${hint}`);
  }
  let bytes: number;
  try {
    bytes = parseByteQuantity(value);
  } catch (err) {
    throw new InputError(`invalid --bandwidth ${JSON.stringify(value)}: ${(err as Error).message}`);
  }
  if (bytes !== 0 && bytes < MIN_BANDWIDTH) {
    throw new InputError(
      `invalid --bandwidth ${JSON.stringify(value)}: must be 0 or "unlimited" (no cap) or at least 1Mi bytes per second`,
    );
  }
  return value;
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s)?$/;

/** `--max-downtime`: milliseconds as "300", "300ms" or "1.5s"; a whole number of ms within the CRD's bounds. */
export function parseDowntimeMs(value: string): number {
  const match = DURATION_RE.exec(value.trim());
  const hint = `expected milliseconds between ${DOWNTIME_MS_MIN} and ${MAX_DOWNTIME_MS_MAX}, e.g. 300, 300ms or 1.5s`;
  if (!match) throw new InputError(`invalid --max-downtime ${JSON.stringify(value)}: ${hint}`);
  const ms = Number(match[1]) * (match[2] === 's' ? 1000 : 1);
  if (!Number.isInteger(ms) || ms < DOWNTIME_MS_MIN || ms > MAX_DOWNTIME_MS_MAX) {
    throw new InputError(`invalid --max-downtime ${JSON.stringify(value)}: ${hint}`);
  }
  return ms;
}

const TIMEOUT_RE = /^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+(?:\.\d+)?)s)?$/;

/** `--timeout` of drain, as kubectl writes one: "0" (no limit), "90s", "5m", "1h30m"; returns milliseconds. */
export function parseTimeoutMs(value: string): number {
  const trimmed = value.trim();
  if (trimmed === '0') return 0;
  const match = TIMEOUT_RE.exec(trimmed);
  if (!match || trimmed === '' || match.slice(1).every((part) => part === undefined)) {
    throw new InputError(
      `invalid --timeout ${JSON.stringify(value)}: expected a duration such as 90s, 5m or 1h30m (0: no limit)`,
    );
  }
  const [hours, minutes, seconds] = match.slice(1).map((part) => Number(part ?? 0));
  return Math.round(((hours! * 60 + minutes!) * 60 + seconds!) * 1000);
}
