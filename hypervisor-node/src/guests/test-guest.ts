// Boot images of the project's test guest (guest/build.sh, run by the setup) for integration tests.
import { access } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';

export interface TestGuestImages {
  kernel: string;
  initrd: string;
  /** Directory holding both, to use as the allowed root. */
  root: string;
  /** Kernel command line words the guest needs. */
  cmdline: string[];
  /** Appears on the console once the agent runs (the power-button handler is armed before it). */
  readyPattern: RegExp;
  /** Found in a console tail of a guest that has booted. */
  consoleTailPattern: RegExp;
}

export async function testGuestImages(): Promise<TestGuestImages> {
  const root = path.join(process.env.TERN_CACHE ?? path.join(homedir(), '.cache', 'tern'), 'guest');
  // guest/README.md: the decompressed vmlinux boots about 5 s faster under TCG than the bzImage.
  const images = { kernel: path.join(root, 'vmlinux'), initrd: path.join(root, 'initramfs.img') };
  try {
    await Promise.all([access(images.kernel), access(images.initrd)]);
  } catch {
    throw new Error(`the test guest is not built in ${root}: run npm run setup (or bash guest/build.sh)`);
  }
  return {
    ...images,
    root,
    // The agent's default 256 MiB working set would not fit the tests' small guests.
    cmdline: ['panic=-1', 'tern.wss_mib=16'],
    readyPattern: /tern-agent:/,
    consoleTailPattern: /tern-agent:/,
  };
}
