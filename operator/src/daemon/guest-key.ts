// How the operator names a VirtualMachine's guest on a daemon. The key is the VM's UID: VMs of the same name in two
// namespaces never meet on a node, and a VM deleted and created again under its old name never finds its
// predecessor's guest. People see <namespace>/<name> (QEMU's -name, the daemon's logs and metrics).
import type { VirtualMachine } from '../../../crds/index.js';

/**
 * The guest's key on a node, in every call the operator makes about it (create, get, stop, delete, migrate): the
 * VM's UID, a DNS-1123 label as the daemon requires.
 */
export function guestName(vm: VirtualMachine): string {
  const { uid } = vm.metadata;
  if (!uid) throw new Error(`VirtualMachine ${vm.metadata.namespace}/${vm.metadata.name} has no uid`);
  return uid;
}

/** What people call the guest on the node: `<namespace>/<name>`, for display only. */
export function guestDisplayName(vm: VirtualMachine): string {
  return `${vm.metadata.namespace ?? 'default'}/${vm.metadata.name}`;
}
