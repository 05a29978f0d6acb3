import { longestGap, throughputSeries } from './throughput.js';

describe('longestGap', () => {
  it('finds the longest pause between completions that overlaps a window', () => {
    const completions = [0, 10, 20, 300, 310, 2000];
    expect(longestGap(completions)).toBe(1690);
    expect(longestGap(completions, 0, 300)).toBe(280);
    expect(longestGap(completions, 1000, 1100)).toBe(1690);
    expect(longestGap([5])).toBe(0);
  });
});

describe('throughputSeries', () => {
  it('counts completions per bucket as transactions per second', () => {
    expect(throughputSeries([0, 50, 99, 100, 250], 0, 300, 100)).toEqual([30, 10, 10]);
  });
});
