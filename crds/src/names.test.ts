import { DNS1123_LABEL, DNS1123_LABEL_MAX_LENGTH, DNS1123_LABEL_PATTERN } from './names.js';

// The literal the daemon, the CLI and the test harness used to carry, each its own copy.
const FORMER_COPY = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

test.each([
  'a',
  'vm01',
  'node-1',
  'a'.repeat(63),
  'a'.repeat(64),
  '',
  '-a',
  'a-',
  'A',
  'a_b',
  'a.b',
  'a\n',
  '\na',
  `${'a'.repeat(62)}-`,
  `${'a'.repeat(61)}-b`,
])('DNS1123_LABEL agrees with the pattern plus the length limit: %j', (value) => {
  const expected = value.length <= DNS1123_LABEL_MAX_LENGTH && new RegExp(DNS1123_LABEL_PATTERN).test(value);
  expect(DNS1123_LABEL.test(value)).toBe(expected);
  expect(FORMER_COPY.test(value)).toBe(expected);
});
