// The pre-shared key file QEMU's tls-creds-psk reads: one `<identity>:<hex key>` line, readable by the daemon and
// (when QEMU runs as a user of its own, qemu/run-as.ts) by QEMU's user only.
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PskTls } from './channel.js';
import { giveToQemu, type QemuUser } from '../../qemu/run-as.js';
import { DNS1123_LABEL } from '../../../../crds/index.js';

const IDENTITY = DNS1123_LABEL;

/**
 * Writes `dir/keys.psk` holding `key` for `identity` (a DNS-1123 label, e.g. the migration id); with `qemuUser`,
 * the directory and file belong to that user (QEMU reads the key after it has dropped privileges).
 */
export async function writePskFile(
  dir: string,
  identity: string,
  key: Buffer,
  qemuUser?: QemuUser,
): Promise<PskTls> {
  if (!IDENTITY.test(identity))
    throw new Error(`PSK identity ${JSON.stringify(identity)} must be a DNS-1123 label`);
  if (key.length < 16) throw new Error('a PSK must have at least 16 bytes');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  const file = path.join(dir, 'keys.psk');
  await writeFile(file, `${identity}:${key.toString('hex')}\n`, { mode: 0o600 });
  await giveToQemu(file, qemuUser);
  await giveToQemu(dir, qemuUser);
  return { dir, identity };
}

export async function removePskFile(tls: PskTls): Promise<void> {
  await rm(tls.dir, { recursive: true, force: true });
}
