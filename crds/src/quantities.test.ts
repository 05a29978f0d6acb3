import { parseByteQuantity } from './quantities.js';

describe('parseByteQuantity', () => {
  it.each([
    ['1Gi', 1073741824],
    ['512Mi', 536870912],
    ['1.5Gi', 1610612736],
    ['1G', 1e9],
    ['100k', 100000],
    ['0', 0],
    ['1048576', 1048576],
    ['0.5Ki', 512],
    ['0.001', 1],
  ] as const)('%s is %d bytes', (text, bytes) => {
    expect(parseByteQuantity(text)).toBe(bytes);
  });

  it('takes integers as bytes', () => {
    expect(parseByteQuantity(4096)).toBe(4096);
  });

  it.each(['', '-1Gi', '1e9', '500m', '1K', '1 Gi', 'Gi', '1.Gi'])('rejects %j', (text) => {
    expect(() => parseByteQuantity(text)).toThrow(/invalid byte quantity/);
  });

  it('rejects negative, fractional and unsafe numbers', () => {
    expect(() => parseByteQuantity(-1)).toThrow();
    expect(() => parseByteQuantity(1.5)).toThrow();
    expect(() => parseByteQuantity(2 ** 60)).toThrow();
  });

  it('rejects strings beyond Number.MAX_SAFE_INTEGER bytes', () => {
    expect(() => parseByteQuantity('16Ei')).toThrow(/too large/);
  });
});
