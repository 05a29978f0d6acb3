// What the generator needs to know about one kind besides its spec and status schemas.
import type { TSchema } from '@sinclair/typebox';
import type { CelRule } from './schema.js';

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  /** 0 shows in `kubectl get`; 1 only with `-o wide`. */
  priority?: 0 | 1;
}

export interface KindDefinition {
  kind: string;
  singular: string;
  plural: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: TSchema;
  status: TSchema;
  /** False when an object may be created without a spec (a daemon registering its HypervisorNode). */
  specRequired: boolean;
  /** Rules on the whole object, e.g. on metadata.name, which only root-level rules may read. */
  rootRules?: CelRule[];
  printerColumns: PrinterColumn[];
}

export const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
};
