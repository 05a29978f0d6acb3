import { setTimeout as sleep } from 'node:timers/promises';
import type { MigrationEvent, WireMigrationPhase } from '../../../proto/index.js';
import { EventLog } from './event-log.js';

const phase = (to: WireMigrationPhase) => ({ phase: { to, reason: '' } });
const progress = (round: number) => ({ progress: { round } });

describe('EventLog', () => {
  it('replays the latest progress and every other event to a late watcher, then streams live ones', () => {
    const log = new EventLog('m1');
    log.append(phase('MIGRATION_PHASE_INITIALIZING'), 1);
    log.append(progress(1), 2);
    log.append(progress(2), 3);
    const seen: MigrationEvent[] = [];
    log.watch(
      (event) => seen.push(event),
      () => undefined,
      0,
    );
    log.append(phase('MIGRATION_PHASE_COPYING'), 4);
    expect(seen.map((e) => [e.migrationId, e.atUnixMs, e.progress?.round ?? e.phase?.to])).toEqual([
      ['m1', 3, 2],
      ['m1', 1, 'MIGRATION_PHASE_INITIALIZING'],
      ['m1', 4, 'MIGRATION_PHASE_COPYING'],
    ]);
  });

  it('passes progress to each watcher at most once per interval, but never drops other events', () => {
    const log = new EventLog('m1');
    const seen: MigrationEvent[] = [];
    const unsubscribe = log.watch(
      (event) => seen.push(event),
      () => undefined,
      60_000,
    );
    log.append(progress(1));
    log.append(progress(2));
    log.append(progress(3));
    expect(seen.map((e) => e.progress?.round)).toEqual([1]);
    unsubscribe();
  });

  it('sends the newest progress held back right before the next other event, so a phase change or the outcome follows the last sample', () => {
    const log = new EventLog('m1');
    const seen: MigrationEvent[] = [];
    let ended = false;
    log.watch(
      (event) => seen.push(event),
      () => (ended = true),
      60_000,
    );
    log.append(progress(1));
    log.append(progress(2));
    log.append(progress(3));
    log.append(phase('MIGRATION_PHASE_COPYING'));
    log.append(progress(4));
    log.append({ outcome: { reason: 'done' } }, Date.now(), true);
    expect(seen.map((e) => e.progress?.round ?? e.phase?.to ?? e.outcome?.reason)).toEqual([
      1,
      3,
      'MIGRATION_PHASE_COPYING',
      4,
      'done',
    ]);
    expect(ended).toBe(true);
  });

  it('sends the newest progress held back once the interval is over', async () => {
    const log = new EventLog('m1');
    const seen: number[] = [];
    const unsubscribe = log.watch(
      (event) => seen.push(event.progress!.round!),
      () => undefined,
      20,
    );
    log.append(progress(1));
    log.append(progress(2));
    log.append(progress(3));
    expect(seen).toEqual([1]);
    for (let waited = 0; seen.length < 2 && waited < 5_000; waited += 10) await sleep(10);
    expect(seen).toEqual([1, 3]);
    unsubscribe();
  });

  it('sends a held progress before ending a watch, and nothing after unsubscribing', async () => {
    const log = new EventLog('m1');
    const ending: number[] = [];
    log.watch(
      (event) => ending.push(event.progress!.round!),
      () => ending.push(-1),
      60_000,
    );
    const gone: number[] = [];
    const unsubscribe = log.watch(
      (event) => gone.push(event.progress!.round!),
      () => undefined,
      20,
    );
    log.append(progress(1));
    log.append(progress(2));
    unsubscribe();
    log.end();
    expect(ending).toEqual([1, 2, -1]);
    await sleep(50);
    expect(gone).toEqual([1]);
  });

  it('ends every watch after the last event, and a watch of an ended log gets the history and ends', () => {
    const log = new EventLog('m1');
    let ended = 0;
    log.watch(
      () => undefined,
      () => ended++,
      0,
    );
    log.append({ outcome: { reason: 'done' } }, 5, true);
    log.append(phase('MIGRATION_PHASE_FAILED'));
    expect(ended).toBe(1);
    expect(log.isEnded).toBe(true);
    const late: MigrationEvent[] = [];
    log.watch(
      (event) => late.push(event),
      () => ended++,
      0,
    );
    expect(late.map((e) => e.outcome?.reason)).toEqual(['done']);
    expect(ended).toBe(2);
  });
});
