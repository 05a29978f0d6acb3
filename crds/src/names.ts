// Kubernetes object-name formats used by Tern's references to other objects.
import { Type } from '@sinclair/typebox';
import type { SchemaOptions } from '@sinclair/typebox';

/** RFC 1123 label: what Kubernetes calls a DNS label (Service names, container names). */
export const DNS1123_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';
export const DNS1123_LABEL_MAX_LENGTH = 63;
/**
 * The label check as one RegExp, the length limit included (1 to 63 characters): what code outside the schemas
 * tests names with (VM and node names, migration ids, TLS identities).
 */
export const DNS1123_LABEL = new RegExp(
  `^(?=.{1,${DNS1123_LABEL_MAX_LENGTH}}$)${DNS1123_LABEL_PATTERN.slice(1)}`,
);

/** RFC 1123 subdomain: the format of Node and most object names. */
export const DNS1123_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
export const DNS1123_SUBDOMAIN_MAX_LENGTH = 253;

/** A VirtualMachine's name, which also names its QEMU process and guest hostname. */
export const VmName = (options: SchemaOptions = {}) =>
  Type.String({
    minLength: 1,
    maxLength: DNS1123_LABEL_MAX_LENGTH,
    pattern: DNS1123_LABEL_PATTERN,
    ...options,
  });

/** A hypervisor node's name: the name of its HypervisorNode object. */
export const NodeName = (options: SchemaOptions = {}) =>
  Type.String({
    minLength: 1,
    maxLength: DNS1123_SUBDOMAIN_MAX_LENGTH,
    pattern: DNS1123_SUBDOMAIN_PATTERN,
    ...options,
  });

/** The name of an object of any kind (a Migration, for instance). */
export const ObjectName = NodeName;
