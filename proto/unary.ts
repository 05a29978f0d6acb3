// The client side of a grpc-js unary call as a promise, with an optional deadline, and the status-code check for
// the errors such calls reject with. Used by the operator's daemon clients and the tests' control clients.
import type * as grpc from '@grpc/grpc-js';

export type UnaryCallback<T> = (error: grpc.ServiceError | null, value?: T) => void;

/**
 * Promise form of a unary call: `await unary((done, deadline) => client.getGuest({ name }, { deadline }, done),
 * 5000)`. `invoke` gets the deadline `timeoutMs` from now to pass in the call options (no deadline without
 * `timeoutMs`, e.g. `await unary((done) => client.listGuests({}, done))`).
 */
export function unary<T>(
  invoke: (done: UnaryCallback<T>, deadline: grpc.Deadline) => void,
  timeoutMs?: number,
): Promise<T> {
  const deadline = timeoutMs === undefined ? Infinity : new Date(Date.now() + timeoutMs);
  return new Promise<T>((resolve, reject) =>
    invoke((error, value) => (error ? reject(error) : resolve(value as T)), deadline),
  );
}

export function isGrpcError(error: unknown, code: grpc.status): error is grpc.ServiceError {
  return typeof error === 'object' && error !== null && (error as grpc.ServiceError).code === code;
}
