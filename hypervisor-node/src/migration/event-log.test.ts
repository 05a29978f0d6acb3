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
    log.watch(
      (event) => seen.push(event),
      () => undefined,
      60_000,
    );
    log.append(progress(1));
    log.append(progress(2));
    log.append(phase('MIGRATION_PHASE_COPYING'));
    log.append(progress(3));
    expect(seen.map((e) => e.progress?.round ?? e.phase?.to)).toEqual([1, 'MIGRATION_PHASE_COPYING']);
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
