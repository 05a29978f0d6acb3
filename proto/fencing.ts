// The operator's fencing token on the wire (docs/architecture.md "The hand-over rule"): every call to a daemon
// carries it in the gRPC metadata; a daemon refuses a guest-changing call whose token is older than the highest it
// has seen, with PERMISSION_DENIED and the highest token in the trailing metadata.
import * as grpc from '@grpc/grpc-js';

/** The metadata key of the caller's fencing token (decimal). */
export const FENCING_TOKEN_METADATA = 'tern-fencing-token';

/** The trailing metadata key a refusal for a stale token carries: the highest token the daemon has seen. */
export const FENCING_REFUSED_METADATA = 'tern-fencing-refused';

/**
 * The token of an operator without leader election (a single replica), and what a call without a token counts as:
 * the lowest, so a daemon that has seen any elected leader's token (1 and up) refuses it.
 */
export const UNFENCED_TOKEN = 0;

/** Metadata carrying `token`. */
export function fencingMetadata(token: number): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set(FENCING_TOKEN_METADATA, String(token));
  return metadata;
}

/**
 * The token a call carries: UNFENCED_TOKEN without one, undefined when the value is not a non-negative decimal
 * integer.
 */
export function fencingTokenOf(metadata: grpc.Metadata): number | undefined {
  const [value] = metadata.get(FENCING_TOKEN_METADATA);
  if (value === undefined) return UNFENCED_TOKEN;
  const text = typeof value === 'string' ? value : value.toString('utf8');
  if (!/^\d{1,15}$/.test(text)) return undefined;
  return Number(text);
}

/** The highest token of a daemon's refusal for a stale token, or undefined when `error` is no such refusal. */
export function fencingRefusalOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { code, metadata } = error as Partial<grpc.ServiceError>;
  if (code !== grpc.status.PERMISSION_DENIED || !(metadata instanceof grpc.Metadata)) return undefined;
  const [value] = metadata.get(FENCING_REFUSED_METADATA);
  return value === undefined ? undefined : Number(String(value));
}
