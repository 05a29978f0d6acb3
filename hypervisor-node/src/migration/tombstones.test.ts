import { tombstonesToForget } from './tombstones.js';

const DAY = 24 * 3_600_000;
const at = (...entries: [string, number][]) => entries.map(([id, atMs]) => ({ id, atMs }));

describe('tombstonesToForget', () => {
  const limits = { maxAgeMs: 7 * DAY, maxCount: 3 };
  const now = 100 * DAY;

  it('keeps every tombstone younger than the age limit while under the count', () => {
    expect(tombstonesToForget(at(['a', now - 6 * DAY], ['b', now - 1], ['c', now]), now, limits)).toEqual([]);
  });

  it('forgets those past the age limit', () => {
    expect(tombstonesToForget(at(['a', now - 8 * DAY], ['b', now - 1]), now, limits)).toEqual(['a']);
  });

  it('beyond the count, forgets the oldest first (in any input order)', () => {
    const list = at(['d', now - 1], ['a', now - 40], ['c', now - 20], ['b', now - 30], ['e', now]);
    expect(tombstonesToForget(list, now, limits)).toEqual(['a', 'b']);
  });
});
