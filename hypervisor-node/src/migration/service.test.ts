import { planEviction } from './service.js';

const list = (...entries: [string, boolean][]) => entries.map(([id, matters]) => ({ id, matters }));

describe('planEviction', () => {
  it('forgets nothing while there is room', () => {
    expect(planEviction(list(['a', false], ['b', true]), 3)).toEqual([]);
  });

  it('forgets the oldest finished migrations first, only as many as needed', () => {
    expect(planEviction(list(['a', true], ['b', false], ['c', false], ['d', true]), 4)).toEqual(['b']);
    expect(planEviction(list(['a', false], ['b', false], ['c', false], ['d', true]), 3)).toEqual(['a', 'b']);
  });

  it('never forgets one that matters (a loaded target, a migrating source) and refuses instead', () => {
    expect(planEviction(list(['a', true], ['b', true]), 2)).toBeUndefined();
    expect(planEviction(list(['a', true], ['b', false], ['c', true]), 2)).toBeUndefined();
  });
});
