// The operator's side of fencing (docs/architecture.md "The hand-over rule"): every call to a daemon carries this
// replica's fencing token, and a daemon's refusal of a stale one means a newer leader runs: the caller stops and
// touches nothing.
import { fencingRefusalOf, UNFENCED_TOKEN } from '../../../proto/index.js';

/** Where the token of each call comes from; `fencingToken()` throws when this replica may not call daemons now. */
export interface FencingTokenSource {
  fencingToken(): number;
}

/** An operator without leader election (a single replica): token 0, refused by a daemon that saw an elected one. */
export const UNFENCED: FencingTokenSource = { fencingToken: () => UNFENCED_TOKEN };

/** A daemon refused a call: this replica's token (or the ownership epoch it showed) is older than one it has seen. */
export class FencedError extends Error {
  constructor(
    readonly nodeName: string,
    /** The highest fencing token the daemon has seen. */
    readonly highestToken: number,
    details: string,
  ) {
    super(`${nodeName} refused the call: ${details}`);
    this.name = 'FencedError';
  }
}

/** `error` as a FencedError when it is a daemon's refusal for a stale token or epoch; else `error` itself. */
export function asFencedError(nodeName: string, error: unknown): unknown {
  const highest = fencingRefusalOf(error);
  if (highest === undefined) return error;
  return new FencedError(nodeName, highest, (error as { details?: string }).details ?? String(error));
}
