import type { VirtualMachine } from '../../../crds/index.js';
import type { Guest__Output } from '../../../proto/index.js';
import { isStaleGuest } from './stale-guests.js';

const UID = '0b6f3c1e-5a7d-4e2b-9c41-7d2f8e6a1b03';
const guest = (phase: Guest__Output['phase'], uuid = UID) =>
  ({ phase, reason: 'Fenced', spec: { name: 'vm1', uuid } }) as Guest__Output;
const vm = (status: VirtualMachine['status']) =>
  ({ metadata: { name: 'vm1', namespace: 'default', uid: UID }, spec: {}, status }) as VirtualMachine;

describe('isStaleGuest', () => {
  it('is a down or paused guest whose VM is recorded on another node with no migration', () => {
    const moved = vm({ phase: 'Running', node: 'node-b', epoch: 2 });
    expect(isStaleGuest(guest('GUEST_PHASE_FAILED'), 'node-a', moved)).toBe(true);
    expect(isStaleGuest(guest('GUEST_PHASE_STOPPED'), 'node-a', moved)).toBe(true);
    // An incoming target its Migration could not abort (the node was not Ready when it ended).
    expect(isStaleGuest(guest('GUEST_PHASE_PAUSED'), 'node-a', moved)).toBe(true);
  });

  it('never touches a guest that runs or starts, one of another VM, the recorded node, or a migrating VM', () => {
    const moved = vm({ phase: 'Running', node: 'node-b', epoch: 2 });
    for (const phase of ['GUEST_PHASE_RUNNING', 'GUEST_PHASE_STARTING'] as const)
      expect(isStaleGuest(guest(phase), 'node-a', moved)).toBe(false);
    expect(isStaleGuest(guest('GUEST_PHASE_FAILED', 'another-uid'), 'node-a', moved)).toBe(false);
    expect(isStaleGuest(guest('GUEST_PHASE_FAILED'), 'node-b', moved)).toBe(false);
    expect(isStaleGuest(guest('GUEST_PHASE_FAILED'), 'node-a', undefined)).toBe(false);
    expect(isStaleGuest(guest('GUEST_PHASE_FAILED'), 'node-a', vm({ phase: 'Stopped' }))).toBe(false);
    const migrating = vm({ phase: 'Migrating', node: 'node-b', epoch: 2, activeMigration: 'm1' });
    expect(isStaleGuest(guest('GUEST_PHASE_FAILED'), 'node-a', migrating)).toBe(false);
    expect(isStaleGuest(guest('GUEST_PHASE_PAUSED'), 'node-a', migrating)).toBe(false);
  });
});
