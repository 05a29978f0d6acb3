// Boot images for integration tests: the project's test guest when guest/build.sh has built it, otherwise a
// busybox initramfs built here around the host's Debian kernel (which powers off on the ACPI power button, so
// a graceful stop can be observed).
import { execFile } from 'node:child_process';
import { access, chmod, copyFile, mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

export interface TestGuestImages {
  kernel: string;
  initrd: string;
  /** Directory holding both, to use as the allowed root. */
  root: string;
  source: 'project' | 'busybox';
  /** Whether the guest powers off on the ACPI power button (system_powerdown). */
  powersOffOnButton: boolean;
  /** Kernel command line words the guest needs. */
  cmdline: string[];
  /** Appears on the console once the guest's userspace runs. */
  readyPattern: RegExp;
  /** A line the console keeps producing (or at least the last boot message), to find in a console tail. */
  consoleTailPattern: RegExp;
}

const BUSYBOX_INIT = `#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
insmod /lib/modules/evdev.ko
insmod /lib/modules/button.ko
sleep 1
for ev in /dev/input/event*; do (head -c 1 "$ev" >/dev/null && echo "power button pressed" && poweroff -f) & done
echo "TERN-BUSYBOX-GUEST READY"
n=0
while true; do n=$((n + 1)); echo "heartbeat $n"; sleep 1; done
`;

export async function testGuestImages(workDir: string): Promise<TestGuestImages> {
  const cached = path.join(process.env.TERN_CACHE ?? path.join(homedir(), '.cache', 'tern'), 'guest');
  // guest/README.md: the decompressed vmlinux boots about 5 s faster under TCG than the bzImage.
  const project = { kernel: path.join(cached, 'vmlinux'), initrd: path.join(cached, 'initramfs.img') };
  try {
    await Promise.all([access(project.kernel), access(project.initrd)]);
    return {
      ...project,
      root: cached,
      source: 'project',
      powersOffOnButton: true,
      // The agent's default 256 MiB working set would not fit the tests' small guests.
      cmdline: ['panic=-1', 'tern.wss_mib=16'],
      readyPattern: /tern-agent:/,
      consoleTailPattern: /\S+/,
    };
  } catch {
    return buildBusyboxGuest(workDir);
  }
}

async function buildBusyboxGuest(workDir: string): Promise<TestGuestImages> {
  const kernelVersion = (await readdir('/lib/modules')).sort().find((v) => v.endsWith('-amd64'));
  if (kernelVersion === undefined)
    throw new Error('no Debian amd64 kernel modules in /lib/modules (install linux-image-amd64)');
  const images = path.join(workDir, 'images');
  const root = path.join(workDir, 'initramfs-root');
  for (const dir of ['bin', 'proc', 'sys', 'dev', 'lib/modules'])
    await mkdir(path.join(root, dir), { recursive: true });
  await copyFile('/bin/busybox', path.join(root, 'bin/busybox'));
  for (const applet of ['sh', 'mount', 'insmod', 'head', 'poweroff', 'sleep']) {
    await symlink('busybox', path.join(root, 'bin', applet));
  }
  const modules = `/lib/modules/${kernelVersion}/kernel/drivers`;
  await copyFile(`${modules}/input/evdev.ko`, path.join(root, 'lib/modules/evdev.ko'));
  await copyFile(`${modules}/acpi/button.ko`, path.join(root, 'lib/modules/button.ko'));
  await writeFile(path.join(root, 'init'), BUSYBOX_INIT);
  await chmod(path.join(root, 'init'), 0o755);
  await mkdir(images, { recursive: true });
  const kernel = path.join(images, 'vmlinuz');
  const initrd = path.join(images, 'initramfs.img');
  await copyFile(`/boot/vmlinuz-${kernelVersion}`, kernel);
  await promisify(execFile)('/bin/sh', [
    '-c',
    'cd "$0" && find . | cpio -o -H newc --quiet | gzip -1 >"$1"',
    root,
    initrd,
  ]);
  return {
    kernel,
    initrd,
    root: images,
    source: 'busybox',
    powersOffOnButton: true,
    cmdline: ['panic=-1'],
    readyPattern: /TERN-BUSYBOX-GUEST READY/,
    consoleTailPattern: /heartbeat \d+/,
  };
}
