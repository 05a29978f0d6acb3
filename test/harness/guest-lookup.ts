// Finding a VirtualMachine's guest on a node the way people do: by `<namespace>/<name>`, its display name. The
// daemon keys guests by the VM's UID (operator/src/daemon/guest-key.ts), so tests that know a VM by name look its
// guest up here (the daemon's list, the guest dirs' spec.json, QEMU's `-name guest=…`).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { GuestControlClient, Guest__Output } from '../../proto/index.js';
import type { GuestDefinition } from '../../hypervisor-node/src/model/guest.js';
import { unary } from './control-client.js';

export const vmDisplayName = (vm: string, namespace = 'default'): string => `${namespace}/${vm}`;

function onlyOne<T>(found: T[], what: string): T | undefined {
  if (found.length > 1) throw new Error(`${found.length} guests of ${what} on one node`);
  return found[0];
}

/** The daemon's guest of VM `vm` in `namespace`, or undefined when it has none; `deadline` bounds the call. */
export async function guestOfVm(
  client: GuestControlClient,
  vm: string,
  namespace = 'default',
  deadline?: Date,
): Promise<Guest__Output | undefined> {
  const { guests } = await unary<{ guests: Guest__Output[] }>((done) =>
    deadline === undefined ? client.listGuests({}, done) : client.listGuests({}, { deadline }, done),
  );
  const name = vmDisplayName(vm, namespace);
  return onlyOne(
    guests.filter((guest) => guest.spec?.displayName === name),
    name,
  );
}

/** The guest dir under a daemon's state dir of VM `vm` in `namespace` (found by its spec.json); throws when none. */
export async function guestDirOfVm(stateDir: string, vm: string, namespace = 'default'): Promise<string> {
  const name = vmDisplayName(vm, namespace);
  const found: string[] = [];
  for (const entry of await readdir(stateDir).catch(() => [] as string[])) {
    const spec = await readFile(join(stateDir, entry, 'spec.json'), 'utf8').then(
      (text) => JSON.parse(text) as GuestDefinition,
      () => undefined,
    );
    if (spec?.displayName === name) found.push(join(stateDir, entry));
  }
  const dir = onlyOne(found, name);
  if (dir === undefined) throw new Error(`no guest of ${name} under ${stateDir}`);
  return dir;
}

/** True when a QEMU command line (argv from /proc/<pid>/cmdline) runs the guest of VM `vm` in `namespace`. */
export function isQemuOfVm(argv: string[], vm: string, namespace = 'default'): boolean {
  const at = argv.indexOf('-name');
  return at >= 0 && argv[at + 1] === `guest=${vmDisplayName(vm, namespace)}`;
}
