// Accelerator detection by trying it: a /dev/kvm that exists is not proof that KVM can run a guest (a
// paravirtualised KVM host may run real-mode code and then hang at the guest kernel's first mode switch). The
// probe boots a tiny firmware (kvm-probe.S) that must reach 64-bit long mode and signal QEMU to exit.
import { spawn } from 'node:child_process';
import { access, constants, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Accelerator } from '../model/guest.js';

/** kvm-probe.S assembled, bytes 0x0000..0x00b5 of the 64 KiB firmware image. */
const KVM_PROBE_CODE =
  'fab800f08ed8660f0116b0000f20c06683c8010f22c066ea1e000f00080066b810008ed88ec08ed0bf0010000031c0b9000c0000f3ab' +
  'c7050010000003200000c7050020000003300000c7050030000083000000b8001000000f22d80f20e083c8200f22e0b9800000c00f32' +
  '0d000100000f300f20c00d000000800f22c0ea85000f001800b042e6f4f4ebfd8db400000000000000000000ffff0000009acf00ffff' +
  '00000092cf00ffff0000009aaf001f0090000f00';
/** `ljmp $0xf000, $0` at the reset vector (offset 0xfff0). */
const RESET_VECTOR = 'ea000000f0';
/** isa-debug-exit turns the probe's `out 0x42` into exit status (0x42 << 1) | 1. */
export const PROBE_SUCCESS_STATUS = 133;
const FIRMWARE_SIZE = 0x10000;

export function kvmProbeFirmware(): Buffer {
  const image = Buffer.alloc(FIRMWARE_SIZE);
  Buffer.from(KVM_PROBE_CODE, 'hex').copy(image, 0);
  Buffer.from(RESET_VECTOR, 'hex').copy(image, 0xfff0);
  return image;
}

export interface ProbeOutcome {
  /** null when the process was killed (e.g. on timeout). */
  exitCode: number | null;
  timedOut: boolean;
  stderr: string;
}

export type ProbeRunner = (accel: Accelerator, timeoutMs: number) => Promise<ProbeOutcome>;

export interface AcceleratorChoice {
  accel: Accelerator;
  /** Why: what the KVM probe showed. */
  reason: string;
}

export interface DetectOptions {
  qemuBinary?: string;
  kvmDevice?: string;
  timeoutMs?: number;
  /** Replaces the real probe (unit tests). */
  runProbe?: ProbeRunner;
}

/** KVM when /dev/kvm is usable and the probe reaches long mode under it; TCG otherwise, with the reason. */
export async function detectAccelerator(options: DetectOptions = {}): Promise<AcceleratorChoice> {
  const kvmDevice = options.kvmDevice ?? '/dev/kvm';
  const timeoutMs = options.timeoutMs ?? 3_000;
  const runProbe = options.runProbe ?? ((accel, ms) => runFirmwareProbe(accel, ms, options.qemuBinary));
  try {
    await access(kvmDevice, constants.R_OK | constants.W_OK);
  } catch (err) {
    return {
      accel: 'tcg',
      reason: `${kvmDevice} is not usable (${(err as NodeJS.ErrnoException).code}), using TCG`,
    };
  }
  const outcome = await runProbe('kvm', timeoutMs);
  if (outcome.exitCode === PROBE_SUCCESS_STATUS)
    return { accel: 'kvm', reason: 'KVM probe reached long mode' };
  const what = outcome.timedOut
    ? `did not reach long mode within ${timeoutMs} ms`
    : `exited with status ${String(outcome.exitCode)}`;
  const stderr = outcome.stderr.trim();
  return { accel: 'tcg', reason: `KVM probe ${what}${stderr ? `: ${lastLine(stderr)}` : ''}; using TCG` };
}

/** Boots the probe firmware under `accel`; kills QEMU after timeoutMs. */
export async function runFirmwareProbe(
  accel: Accelerator,
  timeoutMs: number,
  qemuBinary = 'qemu-system-x86_64',
): Promise<ProbeOutcome> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tern-accel-'));
  try {
    const firmware = path.join(dir, 'probe.bin');
    await writeFile(firmware, kvmProbeFirmware());
    const args = ['-machine', 'pc', '-accel', accel, '-nodefaults', '-no-user-config', '-display', 'none'];
    args.push('-m', '16M', '-bios', firmware, '-device', 'isa-debug-exit,iobase=0xf4,iosize=1');
    return await new Promise<ProbeOutcome>((resolve, reject) => {
      const child = spawn(qemuBinary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let timedOut = false;
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (exitCode) => {
        clearTimeout(timer);
        resolve({ exitCode, timedOut, stderr });
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function lastLine(text: string): string {
  return text.split('\n').pop() ?? text;
}
