// Where a console session goes next, from the VM's record alone: to the node that owns the guest, nowhere yet, or
// nowhere any more.
import type { VirtualMachine } from '../../../crds/index.js';

export type ConsoleStep =
  { kind: 'attach'; node: string } | { kind: 'wait'; why: string } | { kind: 'end'; message: string };

/** `vm` as read now (undefined: not found); `uid`: the VM the session began with. */
export function nextConsoleStep(vm: VirtualMachine | undefined, uid: string, label: string): ConsoleStep {
  if (vm === undefined || vm.metadata.uid !== uid) return { kind: 'end', message: `VM ${label} was deleted` };
  const phase = vm.status?.phase;
  if (phase === 'Stopped' || phase === 'Failed' || phase === 'Stopping') {
    return { kind: 'end', message: `VM ${label} is ${phase}` };
  }
  const node = vm.status?.node;
  if (node === undefined) return { kind: 'wait', why: `VM ${label} has no node (${phase ?? 'no phase'})` };
  return { kind: 'attach', node };
}

/** The notice for the user after an attach to `node`; `previous` is the node of the session's last attach. */
export function attachNotice(label: string, node: string, previous: string | undefined): string {
  if (previous === undefined) return `connected to ${label} on node ${node}`;
  if (previous !== node) return `VM moved to node ${node}; console reconnected`;
  return `console reconnected (node ${node})`;
}
