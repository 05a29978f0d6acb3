// The Tern kinds as ResourceTypes for the KubeClient and the informers.
import { API_GROUP, API_VERSION_NAME, KINDS, NAMESPACED, PLURALS } from '../index.js';
import { customResource } from '../../kube/resources.js';

export const VirtualMachines = customResource(
  API_GROUP,
  API_VERSION_NAME,
  KINDS.VirtualMachine,
  PLURALS.VirtualMachine,
  NAMESPACED.VirtualMachine,
);

export const HypervisorNodes = customResource(
  API_GROUP,
  API_VERSION_NAME,
  KINDS.HypervisorNode,
  PLURALS.HypervisorNode,
  NAMESPACED.HypervisorNode,
);

export const Migrations = customResource(
  API_GROUP,
  API_VERSION_NAME,
  KINDS.Migration,
  PLURALS.Migration,
  NAMESPACED.Migration,
);

export const MigrationPolicies = customResource(
  API_GROUP,
  API_VERSION_NAME,
  KINDS.MigrationPolicy,
  PLURALS.MigrationPolicy,
  NAMESPACED.MigrationPolicy,
);
