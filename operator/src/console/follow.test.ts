import type { VirtualMachine } from '../../../crds/index.js';
import { attachNotice, nextConsoleStep } from './follow.js';

const vm = (status: VirtualMachine['status'], uid = 'u1'): VirtualMachine =>
  ({ metadata: { name: 'vm1', namespace: 'ns', uid }, spec: {}, status }) as VirtualMachine;

test('a session follows the record, waits without a node, and ends when the VM stops or is gone', () => {
  expect(nextConsoleStep(vm({ phase: 'Running', node: 'a' }), 'u1', 'ns/vm1')).toEqual({
    kind: 'attach',
    node: 'a',
  });
  expect(nextConsoleStep(vm({ phase: 'Migrating', node: 'b' }), 'u1', 'ns/vm1')).toEqual({
    kind: 'attach',
    node: 'b',
  });
  expect(nextConsoleStep(vm({ phase: 'Scheduling' }), 'u1', 'ns/vm1').kind).toBe('wait');
  expect(nextConsoleStep(vm({ phase: 'Stopped', node: 'a' }), 'u1', 'ns/vm1')).toEqual({
    kind: 'end',
    message: 'VM ns/vm1 is Stopped',
  });
  expect(nextConsoleStep(undefined, 'u1', 'ns/vm1')).toEqual({
    kind: 'end',
    message: 'VM ns/vm1 was deleted',
  });
  // Deleted and created again under the same name: another VM.
  expect(nextConsoleStep(vm({ phase: 'Running', node: 'a' }, 'u2'), 'u1', 'ns/vm1').kind).toBe('end');
});

test('the notices say where the console is', () => {
  expect(attachNotice('ns/vm1', 'a', undefined)).toBe('connected to ns/vm1 on node a');
  expect(attachNotice('ns/vm1', 'b', 'a')).toBe('VM moved to node b; console reconnected');
  expect(attachNotice('ns/vm1', 'a', 'a')).toBe('console reconnected (node a)');
});
