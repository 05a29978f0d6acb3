// Typed API errors, built from the metav1.Status the apiserver returns with every failure.

export interface ApiStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
}

export class KubeApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class NotFoundError extends KubeApiError {}
/** 409 with reason Conflict: a resourceVersion precondition failed (optimistic concurrency). */
export class ConflictError extends KubeApiError {}
/** 409 with reason AlreadyExists: a create of a name that is taken. */
export class AlreadyExistsError extends KubeApiError {}
/** 410: the requested resourceVersion is too old (compacted); relist. */
export class GoneError extends KubeApiError {}

export function apiErrorFromStatus(
  statusCode: number,
  status: ApiStatus | undefined,
  fallback: string,
): KubeApiError {
  const reason = status?.reason ?? '';
  const message = status?.message ?? fallback;
  if (statusCode === 404) return new NotFoundError(statusCode, reason || 'NotFound', message);
  if (statusCode === 410) return new GoneError(statusCode, reason || 'Expired', message);
  if (statusCode === 409) {
    return reason === 'AlreadyExists'
      ? new AlreadyExistsError(statusCode, reason, message)
      : new ConflictError(statusCode, reason || 'Conflict', message);
  }
  return new KubeApiError(statusCode, reason, message);
}

export const isNotFound = (err: unknown): err is NotFoundError => err instanceof NotFoundError;
export const isConflict = (err: unknown): err is ConflictError => err instanceof ConflictError;
export const isAlreadyExists = (err: unknown): err is AlreadyExistsError => err instanceof AlreadyExistsError;
export const isGone = (err: unknown): err is GoneError => err instanceof GoneError;
