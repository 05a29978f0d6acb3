import { formatHeartbeat, parseHeartbeat } from './heartbeat.js';

describe('the heartbeat line the fence watchdog reads', () => {
  it('round-trips: boot id, renewal start and fence time in centiseconds', () => {
    const heartbeat = {
      bootId: '14fbb1aa-8dd0-455d-aeaf-49d8fae6790b',
      renewedAtCs: 1050315,
      fenceAfterCs: 12000,
    };
    expect(formatHeartbeat(heartbeat)).toBe('14fbb1aa-8dd0-455d-aeaf-49d8fae6790b 1050315 12000\n');
    expect(parseHeartbeat(formatHeartbeat(heartbeat))).toEqual(heartbeat);
  });

  it('refuses anything else (the watchdog treats it as no heartbeat)', () => {
    for (const text of ['', 'boot 12', 'boot -1 100\n', 'boot 1.5 100', 'a b 1 2', 'boot 1 2\n\n'])
      expect(parseHeartbeat(text)).toBeUndefined();
  });
});
