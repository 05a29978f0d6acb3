import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType as ConsoleProto } from './generated/console.js';
import type { ProtoGrpcType as ControlProto } from './generated/control.js';
import type { ProtoGrpcType as MigrationProto } from './generated/migration.js';
import { protoLoaderOptions } from './options.js';

const protoRoot = fileURLToPath(new URL('.', import.meta.url));

/** The tern.node.v1alpha1 control package: `.GuestControl` is the client constructor, `.GuestControl.service` the definition. */
export function loadControlProto(): ControlProto['tern']['node']['v1alpha1'] {
  const definition = protoLoader.loadSync('tern/node/v1alpha1/control.proto', {
    ...protoLoaderOptions,
    includeDirs: [protoRoot],
  });
  return (grpc.loadPackageDefinition(definition) as unknown as ControlProto).tern.node.v1alpha1;
}

/** The tern.node.v1alpha1 migration package: `.Migration` is the client constructor, `.Migration.service` the definition. */
export function loadMigrationProto(): MigrationProto['tern']['node']['v1alpha1'] {
  const definition = protoLoader.loadSync('tern/node/v1alpha1/migration.proto', {
    ...protoLoaderOptions,
    includeDirs: [protoRoot],
  });
  return (grpc.loadPackageDefinition(definition) as unknown as MigrationProto).tern.node.v1alpha1;
}

/** The tern.console.v1alpha1 package: the operator's user-facing console service. */
export function loadConsoleProto(): ConsoleProto['tern']['console']['v1alpha1'] {
  const definition = protoLoader.loadSync('tern/console/v1alpha1/console.proto', {
    ...protoLoaderOptions,
    includeDirs: [protoRoot],
  });
  return (grpc.loadPackageDefinition(definition) as unknown as ConsoleProto).tern.console.v1alpha1;
}
