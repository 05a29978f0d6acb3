// Optimistic concurrency for the operator's writes: a replace carries the resourceVersion it was read at, and the
// API server answers 409 Conflict when the object changed since (another writer, or a daemon's heartbeat). The loop
// "read, apply the change, write, and on a conflict do it again a bounded number of times" lives here once; each
// caller decides what a try reads and whether what it read still allows the write.
import { isConflict } from '../../../kube/errors.js';

/**
 * Runs `tryOnce(0)`, and after a 409 Conflict `tryOnce(1)`, `tryOnce(2)` … up to `retries` more times; the last
 * conflict, and any other error at once, is thrown. Each try reads what it writes afresh (the first may use an
 * object already in hand), so a retry never overwrites a change it has not seen.
 */
export async function retryOnConflict<T>(
  retries: number,
  tryOnce: (attempt: number) => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await tryOnce(attempt);
    } catch (error) {
      if (!isConflict(error) || attempt >= retries) throw error;
    }
  }
}
