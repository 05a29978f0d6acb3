import { conditionsEqual, findCondition, setCondition } from './conditions.js';

const t0 = new Date('2026-11-28T10:00:00.123Z');
const t1 = new Date('2026-11-28T10:05:00Z');

describe('conditions', () => {
  test('a new condition gets lastTransitionTime now (whole seconds) and observedGeneration', () => {
    const list = setCondition(
      undefined,
      { type: 'Ready', status: 'False', reason: 'Booting', message: 'starting', observedGeneration: 1 },
      t0,
    );
    expect(list).toEqual([
      {
        type: 'Ready',
        status: 'False',
        reason: 'Booting',
        message: 'starting',
        observedGeneration: 1,
        lastTransitionTime: '2026-11-28T10:00:00Z',
      },
    ]);
  });

  test('same status keeps lastTransitionTime but replaces reason, message and observedGeneration', () => {
    const before = setCondition(
      [],
      { type: 'Ready', status: 'False', reason: 'Booting', message: 'a', observedGeneration: 1 },
      t0,
    );
    const after = setCondition(
      before,
      { type: 'Ready', status: 'False', reason: 'Waiting', message: 'b', observedGeneration: 2 },
      t1,
    );
    expect(after[0]).toEqual({
      type: 'Ready',
      status: 'False',
      reason: 'Waiting',
      message: 'b',
      observedGeneration: 2,
      lastTransitionTime: '2026-11-28T10:00:00Z',
    });
    expect(before[0]!.reason).toBe('Booting'); // input untouched
  });

  test('a status flip moves lastTransitionTime; other conditions keep their place', () => {
    let list = setCondition([], { type: 'Ready', status: 'False', reason: 'Booting', message: '' }, t0);
    list = setCondition(list, { type: 'Migrating', status: 'False', reason: 'Idle', message: '' }, t0);
    list = setCondition(list, { type: 'Ready', status: 'True', reason: 'Running', message: '' }, t1);
    expect(list.map((c) => [c.type, c.status, c.lastTransitionTime])).toEqual([
      ['Ready', 'True', '2026-11-28T10:05:00Z'],
      ['Migrating', 'False', '2026-11-28T10:00:00Z'],
    ]);
    expect(findCondition(list, 'Nope')).toBeUndefined();
  });

  test('conditionsEqual ignores order and detects any changed field', () => {
    const a = setCondition(
      setCondition([], { type: 'A', status: 'True', reason: 'R', message: '' }, t0),
      { type: 'B', status: 'False', reason: 'R', message: '' },
      t0,
    );
    const reordered = [a[1]!, a[0]!];
    expect(conditionsEqual(a, reordered)).toBe(true);
    expect(
      conditionsEqual(a, setCondition(a, { type: 'A', status: 'True', reason: 'R', message: 'changed' }, t1)),
    ).toBe(false);
    expect(
      conditionsEqual(a, setCondition(a, { type: 'A', status: 'True', reason: 'R', message: '' }, t1)),
    ).toBe(true);
    expect(conditionsEqual(undefined, [])).toBe(true);
  });
});
