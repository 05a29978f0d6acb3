import {
  InputError,
  parseBandwidth,
  parseDowntimeMs,
  validateLabelName,
  validateNodeName,
} from './validate.js';

describe('validateLabelName', () => {
  it.each(['vm01', 'a', 'db-1', 'x'.repeat(63)])('accepts %s', (name) => {
    expect(validateLabelName('VM name', name)).toBe(name);
  });
  it.each(['Vm01', 'vm_1', '-vm', 'vm-', 'vm.1', '', 'x'.repeat(64)])('rejects %j', (name) => {
    expect(() => validateLabelName('VM name', name)).toThrow(InputError);
    expect(() => validateLabelName('VM name', name)).toThrow(/^invalid VM name .*DNS-1123 label/);
  });
});

describe('validateNodeName', () => {
  it('accepts a DNS-1123 subdomain', () => {
    expect(validateNodeName('node-b.rack1')).toBe('node-b.rack1');
  });
  it('rejects upper case and underscores', () => {
    expect(() => validateNodeName('Node_B')).toThrow(
      'invalid node name "Node_B": must be a DNS-1123 subdomain',
    );
  });
});

describe('parseBandwidth', () => {
  it.each(['1Gi', '1Mi', '500M', '125000000', '1.5Gi', '0', 'unlimited'])(
    'accepts %s as written',
    (value) => {
      expect(parseBandwidth(value)).toBe(value);
    },
  );
  it.each(['1GB', '1e9', '500m', '-1Gi', 'fast', ''])('rejects the malformed %j', (value) => {
    expect(() => parseBandwidth(value)).toThrow(/^invalid --bandwidth .*expected bytes per second/);
  });
  it('rejects a cap below 1Mi, as the CRD does', () => {
    expect(() => parseBandwidth('1023Ki')).toThrow(
      'invalid --bandwidth "1023Ki": must be 0 or "unlimited" (no cap) or at least 1Mi bytes per second',
    );
  });
});

describe('parseDowntimeMs', () => {
  it.each([
    ['300', 300],
    ['300ms', 300],
    ['1.5s', 1500],
    ['2s', 2000],
    ['1', 1],
    ['60000', 60000],
  ])('%s → %d ms', (value, ms) => {
    expect(parseDowntimeMs(value)).toBe(ms);
  });
  it.each(['0', '60001', '61s', '1.5', '0.0005s', '300us', 'abc', '-5', ''])('rejects %j', (value) => {
    expect(() => parseDowntimeMs(value)).toThrow(
      `invalid --max-downtime ${JSON.stringify(value)}: expected milliseconds between 1 and 60000`,
    );
  });
});
