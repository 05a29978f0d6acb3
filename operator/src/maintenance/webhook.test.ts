import pino from 'pino';
import type { HypervisorNode, VirtualMachine } from '../../../crds/index.js';
import type { KubeClient } from '../../../kube/client.js';
import { NotFoundError } from '../../../kube/errors.js';
import type { KubeObject, ResourceType } from '../../../kube/types.js';
import { GUARD_VM_NAME_LABEL, GUARD_VM_NAMESPACE_LABEL, GUARD_VM_UID_LABEL } from './guard-pods.js';
import { EvictionAdmission } from './webhook.js';

/** Objects by `plural/name`; records the patches. Only get and patch are used by the admission. */
function fakeClient(objects: Record<string, KubeObject>) {
  const patches: { plural: string; name: string; body: unknown }[] = [];
  const client = {
    get: (type: ResourceType, name: string) => {
      const object = objects[`${type.plural}/${name}`];
      return object
        ? Promise.resolve(object)
        : Promise.reject(new NotFoundError(404, 'NotFound', `${type.plural} ${name} not found`));
    },
    patch: (type: ResourceType, name: string, _ns: string | undefined, patch: { body?: unknown }) => {
      patches.push({ plural: type.plural, name, body: patch.body });
      return Promise.resolve({ metadata: { name } });
    },
  } as unknown as KubeClient;
  return { client, patches };
}

const guard = {
  metadata: {
    name: 'vm-vm1-x',
    namespace: 'tern-system',
    labels: {
      [GUARD_VM_NAMESPACE_LABEL]: 'default',
      [GUARD_VM_NAME_LABEL]: 'vm1',
      [GUARD_VM_UID_LABEL]: 'uid-vm1',
    },
  },
  spec: { nodeName: 'node-a' },
};
const vm = {
  metadata: { name: 'vm1', namespace: 'default', uid: 'uid-vm1' },
  spec: { evictionStrategy: 'LiveMigrate' },
  status: { phase: 'Running', node: 'node-a' },
} as unknown as VirtualMachine;
const node = { metadata: { name: 'node-a' }, spec: {} } as HypervisorNode;
const cordoned = { metadata: { name: 'node-a' }, spec: { unschedulable: true } };
const objects = {
  'pods/vm-vm1-x': guard,
  'virtualmachines/vm1': vm,
  'hypervisornodes/node-a': node,
  'nodes/node-a': cordoned,
};
const eviction = { uid: 'r1', name: 'vm-vm1-x', namespace: 'tern-system', subResource: 'eviction' };
const logger = pino({ enabled: false });

describe('EvictionAdmission', () => {
  it('refuses with 429 and drains the HypervisorNode when a drain evicts the guard of a VM still there', async () => {
    const { client, patches } = fakeClient(objects);
    const verdict = await new EvictionAdmission(client, 'tern-system', logger).review(eviction);
    expect(verdict).toMatchObject({ allowed: false, code: 429 });
    expect(patches).toEqual([
      { plural: 'hypervisornodes', name: 'node-a', body: { spec: { unschedulable: true, drain: true } } },
    ]);
  });

  it('writes nothing on a dry run', async () => {
    const { client, patches } = fakeClient(objects);
    const verdict = await new EvictionAdmission(client, 'tern-system', logger).review({
      ...eviction,
      dryRun: true,
    });
    expect(verdict).toMatchObject({ allowed: false, code: 429 });
    expect(patches).toEqual([]);
  });

  it('lets through pods that are no guards, pods of other namespaces and pods that are gone', async () => {
    const other = { metadata: { name: 'web', namespace: 'tern-system' }, spec: { nodeName: 'node-a' } };
    const { client, patches } = fakeClient({ ...objects, 'pods/web': other });
    const admission = new EvictionAdmission(client, 'tern-system', logger);
    expect(await admission.review({ ...eviction, name: 'web' })).toEqual({ allowed: true });
    expect(await admission.review({ ...eviction, namespace: 'default' })).toEqual({ allowed: true });
    expect(await admission.review({ ...eviction, name: 'gone' })).toEqual({ allowed: true });
    expect(patches).toEqual([]);
  });
});
