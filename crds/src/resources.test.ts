import { HypervisorNodes, Migrations, collectionPath, customResource, objectPath } from './resources.js';

const Namespaces = customResource('', 'v1', 'Namespace', 'namespaces', false);
const ConfigMaps = customResource('', 'v1', 'ConfigMap', 'configmaps', true);

test('collection and object paths for core and Tern resources', () => {
  expect(collectionPath(Namespaces)).toBe('/api/v1/namespaces');
  expect(collectionPath(ConfigMaps, 'ns')).toBe('/api/v1/namespaces/ns/configmaps');
  expect(collectionPath(Migrations)).toBe('/apis/tern.dev/v1alpha1/migrations');
  expect(objectPath(Migrations, 'm1', 'default', 'status')).toBe(
    '/apis/tern.dev/v1alpha1/namespaces/default/migrations/m1/status',
  );
  // A cluster-scoped type ignores a namespace; a namespaced one needs it to address an object.
  expect(objectPath(HypervisorNodes, 'n1', 'default')).toBe('/apis/tern.dev/v1alpha1/hypervisornodes/n1');
  expect(() => objectPath(Migrations, 'm1')).toThrow(/namespace required/);
});
