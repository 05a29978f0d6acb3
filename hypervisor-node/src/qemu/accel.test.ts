// detectAccelerator's decisions, with the probe run replaced; the probe firmware itself is booted for real in
// accel.int.test.ts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Accelerator } from '../model/guest.js';
import { detectAccelerator, kvmProbeFirmware, PROBE_SUCCESS_STATUS, type ProbeOutcome } from './accel.js';

let dir: string;
let fakeKvm: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tern-accel-test-'));
  fakeKvm = path.join(dir, 'kvm');
  await writeFile(fakeKvm, '');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function probeReturning(outcome: ProbeOutcome): {
  calls: [Accelerator, number][];
  run: (a: Accelerator, ms: number) => Promise<ProbeOutcome>;
} {
  const calls: [Accelerator, number][] = [];
  return {
    calls,
    run: async (accel, ms) => {
      calls.push([accel, ms]);
      return outcome;
    },
  };
}

test('no usable /dev/kvm: TCG without running a probe', async () => {
  const probe = probeReturning({ exitCode: PROBE_SUCCESS_STATUS, timedOut: false, stderr: '' });
  const choice = await detectAccelerator({ kvmDevice: path.join(dir, 'missing'), runProbe: probe.run });
  expect(choice).toEqual({
    accel: 'tcg',
    reason: `${path.join(dir, 'missing')} is not usable (ENOENT), using TCG`,
  });
  expect(probe.calls).toEqual([]);
});

test('the probe reaching long mode under KVM: KVM', async () => {
  const probe = probeReturning({ exitCode: PROBE_SUCCESS_STATUS, timedOut: false, stderr: '' });
  const choice = await detectAccelerator({ kvmDevice: fakeKvm, runProbe: probe.run, timeoutMs: 1234 });
  expect(choice).toEqual({ accel: 'kvm', reason: 'KVM probe reached long mode' });
  expect(probe.calls).toEqual([['kvm', 1234]]);
});

test('a /dev/kvm whose probe hangs (real-mode-only KVM): TCG, saying why', async () => {
  const stderr =
    "qemu-system-x86_64: warning: host doesn't support requested feature: CPUID.01H:ECX.pni [bit 0]\n";
  const probe = probeReturning({ exitCode: null, timedOut: true, stderr });
  const choice = await detectAccelerator({ kvmDevice: fakeKvm, runProbe: probe.run, timeoutMs: 500 });
  expect(choice.accel).toBe('tcg');
  expect(choice.reason).toBe(
    "KVM probe did not reach long mode within 500 ms: qemu-system-x86_64: warning: host doesn't support requested " +
      'feature: CPUID.01H:ECX.pni [bit 0]; using TCG',
  );
});

test("a KVM that QEMU cannot open: TCG with QEMU's error", async () => {
  const stderr =
    'Could not access KVM kernel module: Permission denied\nqemu-system-x86_64: failed to initialize kvm: Permission denied\n';
  const probe = probeReturning({ exitCode: 1, timedOut: false, stderr });
  const choice = await detectAccelerator({ kvmDevice: fakeKvm, runProbe: probe.run });
  expect(choice).toEqual({
    accel: 'tcg',
    reason:
      'KVM probe exited with status 1: qemu-system-x86_64: failed to initialize kvm: Permission denied; using TCG',
  });
});

test('the probe firmware: 64 KiB, reset vector jumping to F000:0000 where the code starts with cli', () => {
  const image = kvmProbeFirmware();
  expect(image.length).toBe(0x10000);
  expect([...image.subarray(0xfff0, 0xfff5)]).toEqual([0xea, 0x00, 0x00, 0x00, 0xf0]);
  expect(image[0]).toBe(0xfa);
  // mov al, 0x42; out 0xf4, al: the exit request that only long-mode code reaches.
  expect(image.includes(Buffer.from([0xb0, 0x42, 0xe6, 0xf4]))).toBe(true);
});
