// The pre-shared key file QEMU's tls-creds-psk reads: one `<identity>:<hex key>` line, readable by the daemon only.
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PskTls } from './channel.js';
import { DNS1123_LABEL } from '../../../../crds/index.js';

const IDENTITY = DNS1123_LABEL;

/** Writes `dir/keys.psk` holding `key` for `identity` (a DNS-1123 label, e.g. the migration id). */
export async function writePskFile(dir: string, identity: string, key: Buffer): Promise<PskTls> {
  if (!IDENTITY.test(identity))
    throw new Error(`PSK identity ${JSON.stringify(identity)} must be a DNS-1123 label`);
  if (key.length < 16) throw new Error('a PSK must have at least 16 bytes');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  await writeFile(path.join(dir, 'keys.psk'), `${identity}:${key.toString('hex')}\n`, { mode: 0o600 });
  return { dir, identity };
}

export async function removePskFile(tls: PskTls): Promise<void> {
  await rm(tls.dir, { recursive: true, force: true });
}
