import { waitingForSource } from './incoming.js';

describe('waitingForSource', () => {
  it('is true while the incoming QEMU only listens', () => {
    for (const status of [undefined, 'none', 'setup'] as const) expect(waitingForSource(status)).toBe(true);
  });

  it('is false once a source streams into it, or after the incoming migration ended', () => {
    for (const status of ['active', 'postcopy-active', 'device', 'completed', 'failed'] as const) {
      expect(waitingForSource(status)).toBe(false);
    }
  });
});
