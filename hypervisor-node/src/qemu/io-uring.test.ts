import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ioUringProblem, ioUringSysctlProblem } from './io-uring.js';
import type { QemuUser } from './run-as.js';

const qemu: QemuUser = { uid: 65534, gid: 65534, configured: 'nobody' };
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tern-io-uring-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sysctls = (disabled: string | undefined, group?: string): string => {
  const at = mkdtempSync(path.join(dir, 'sysctl-'));
  if (disabled !== undefined) writeFileSync(path.join(at, 'io_uring_disabled'), `${disabled}\n`);
  if (group !== undefined) writeFileSync(path.join(at, 'io_uring_group'), `${group}\n`);
  return at;
};

describe('ioUringSysctlProblem', () => {
  test.each([
    [undefined, undefined, qemu, undefined],
    [0, -1, qemu, undefined],
    [2, -1, undefined, /io_uring_disabled=2/],
    [1, -1, undefined, undefined], // QEMU as root keeps CAP_SYS_ADMIN
    [1, 65534, qemu, undefined], // the QEMU user's group is io_uring_group
    [1, -1, qemu, /only to privileged processes and group kernel.io_uring_group=-1.*QEMU runs as nobody/],
    [1, 100, qemu, /io_uring_group=100/],
  ])('disabled=%j group=%j', (disabled, group, user, expected) => {
    const problem = ioUringSysctlProblem(disabled, group, user);
    if (expected === undefined) expect(problem).toBeUndefined();
    else expect(problem).toMatch(expected);
  });
});

describe('ioUringProblem', () => {
  test('the sysctl refuses: no probe needed', async () => {
    expect(await ioUringProblem(qemu, { sysctlDir: sysctls('2', '-1'), qemuIo: '/nonexistent' })).toMatch(
      /io_uring_disabled=2/,
    );
  });

  test('the sysctl allows it: a real read through io_uring as the QEMU user decides (allowed on this host)', async () => {
    expect(await ioUringProblem(qemu, { sysctlDir: sysctls('0', '-1') })).toBeUndefined();
    expect(await ioUringProblem(undefined, { sysctlDir: sysctls(undefined) })).toBeUndefined();
  });

  test('the probe fails (as under a seccomp filter that refuses io_uring): refused with its reason', async () => {
    // `false` stands for a qemu-io whose io_uring open fails: it exits non-zero.
    expect(await ioUringProblem(qemu, { sysctlDir: sysctls('0'), qemuIo: 'false' })).toMatch(
      /QEMU could not open a file with io_uring here/,
    );
  });

  test('no qemu-io on the node: the sysctls are all it goes by', async () => {
    expect(
      await ioUringProblem(qemu, { sysctlDir: sysctls('0'), qemuIo: '/nonexistent/qemu-io' }),
    ).toBeUndefined();
  });
});
