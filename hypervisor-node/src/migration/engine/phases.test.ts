import { PhaseClock } from './phases.js';

test('records each phase start and closes the previous one; a terminal phase has duration 0', () => {
  const clock = new PhaseClock();
  expect(clock.enter('Initializing', 'start', 100)).toEqual({
    from: undefined,
    to: 'Initializing',
    atMs: 100,
    reason: 'start',
  });
  expect(clock.enter('Copying', 'active', 130)).toEqual({
    from: 'Initializing',
    to: 'Copying',
    atMs: 130,
    reason: 'active',
  });
  expect(clock.enter('Copying', 'again', 140)).toBeUndefined();
  clock.enter('Completed', 'done', 900);
  expect(clock.current).toBe('Completed');
  expect(clock.snapshot()).toEqual([
    { phase: 'Initializing', startedAtMs: 100, durationMs: 30 },
    { phase: 'Copying', startedAtMs: 130, durationMs: 770 },
    { phase: 'Completed', startedAtMs: 900, durationMs: 0 },
  ]);
});
