// metav1.Condition helpers (apimachinery's meta.SetStatusCondition), shared by the operator and the daemon: conditions
// are a list keyed by type, and lastTransitionTime moves only when status flips, so it tells how long the condition
// has held. The Condition type itself is the API's (crds/).
import type { Condition } from '../crds/index.js';
import { boundConditionMessage } from './messages.js';
import { metaTime } from './objects.js';

export type ConditionUpdate = Omit<Condition, 'lastTransitionTime'>;

/**
 * Returns a new list with `update` set. lastTransitionTime is `now` for a new condition or a status change and
 * is kept otherwise; reason, message and observedGeneration are always replaced. An updated condition keeps its
 * place in the list; a new one is appended. The message is bounded (boundConditionMessage: printable, at most
 * 4 KiB), whoever wrote it. The input is not modified.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  update: ConditionUpdate,
  now: Date = new Date(),
): Condition[] {
  const list = [...(conditions ?? [])];
  const index = list.findIndex((c) => c.type === update.type);
  const existing = index >= 0 ? list[index] : undefined;
  const lastTransitionTime =
    existing && existing.status === update.status ? existing.lastTransitionTime : metaTime(now);
  const condition: Condition = {
    ...update,
    message: boundConditionMessage(update.message),
    lastTransitionTime,
  };
  if (condition.observedGeneration === undefined) delete condition.observedGeneration;
  if (index >= 0) list[index] = condition;
  else list.push(condition);
  return list;
}

/** Returns a new list without the condition of `type` (the same list's items when it has none). */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type);
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** Whether two condition lists say the same thing; lets a reconciler skip a no-op status write. */
export function conditionsEqual(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  return left.every((c) => {
    const other = findCondition(right, c.type);
    return (
      other !== undefined &&
      other.status === c.status &&
      other.reason === c.reason &&
      other.message === c.message &&
      other.lastTransitionTime === c.lastTransitionTime &&
      other.observedGeneration === c.observedGeneration
    );
  });
}
