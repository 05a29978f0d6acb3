// The probe firmware and version detection against the installed QEMU.
import { detectAccelerator, PROBE_SUCCESS_STATUS, runFirmwareProbe } from './accel.js';
import { detectQemuVersion } from './version.js';

test('the probe firmware reaches long mode under TCG and makes QEMU exit with the success status', async () => {
  const t0 = performance.now();
  const outcome = await runFirmwareProbe('tcg', 10_000);
  console.log(`TCG probe: ${(performance.now() - t0).toFixed(0)} ms`);
  expect(outcome).toMatchObject({ exitCode: PROBE_SUCCESS_STATUS, timedOut: false });
});

test('detectAccelerator picks KVM only when the probe succeeds under it', async () => {
  const t0 = performance.now();
  const choice = await detectAccelerator({ timeoutMs: 3_000 });
  console.log(
    `accelerator on this host: ${choice.accel} (${choice.reason}) in ${(performance.now() - t0).toFixed(0)} ms`,
  );
  const kvm = await runFirmwareProbe('kvm', 3_000).catch(() => undefined);
  expect(choice.accel).toBe(kvm?.exitCode === PROBE_SUCCESS_STATUS ? 'kvm' : 'tcg');
}, 20_000);

test('the installed QEMU reports its version', async () => {
  const version = await detectQemuVersion();
  expect(version.text).toMatch(/^QEMU emulator version /);
  expect(version.major).toBeGreaterThanOrEqual(1);
});
