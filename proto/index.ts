// The gRPC contracts of the hypervisor-node daemon: runtime loader, the generated wire types, the migration token
// format, the fencing token's metadata and the client-side unary call helper.
export { loadConsoleProto, loadControlProto, loadMigrationProto } from './load.js';
export { protoLoaderOptions } from './options.js';
export { decodeToken, newMigrationToken, TOKEN_BYTES } from './token.js';
export {
  FENCING_REFUSED_METADATA,
  FENCING_TOKEN_METADATA,
  UNFENCED_TOKEN,
  fencingMetadata,
  fencingRefusalOf,
  fencingTokenOf,
} from './fencing.js';
export { isGrpcError, unary, type UnaryCallback } from './unary.js';
export {
  fromWireEnum,
  WIRE_DISK_BUSES,
  WIRE_DISK_CACHES,
  WIRE_DISK_FORMATS,
  WIRE_DISK_IO_MODES,
  WIRE_DISK_STORAGES,
} from './disk-enums.js';
export { retainedImagePath } from './retained-image.js';
export { qmpTimestampUs, wallClockUs } from './wall-clock.js';
export type { ProtoGrpcType as ControlProto } from './generated/control.js';
export type { Accelerator, Accelerator__Output } from './generated/tern/node/v1alpha1/Accelerator.js';
export type { Disk__Output } from './generated/tern/node/v1alpha1/Disk.js';
export type {
  LocalDiskImage,
  LocalDiskImage__Output,
} from './generated/tern/node/v1alpha1/LocalDiskImage.js';
export type { CreateGuestRequest } from './generated/tern/node/v1alpha1/CreateGuestRequest.js';
export type { Guest, Guest__Output } from './generated/tern/node/v1alpha1/Guest.js';
export type {
  GuestControlClient,
  GuestControlDefinition,
  GuestControlHandlers,
} from './generated/tern/node/v1alpha1/GuestControl.js';
export type { GuestEvent, GuestEvent__Output } from './generated/tern/node/v1alpha1/GuestEvent.js';
export type { GuestPhase, GuestPhase__Output } from './generated/tern/node/v1alpha1/GuestPhase.js';
export type { GuestSpec, GuestSpec__Output } from './generated/tern/node/v1alpha1/GuestSpec.js';
export type { ListGuestsResponse__Output } from './generated/tern/node/v1alpha1/ListGuestsResponse.js';
export type { NodeInfo, NodeInfo__Output } from './generated/tern/node/v1alpha1/NodeInfo.js';
export type { NetworkInfo, NetworkInfo__Output } from './generated/tern/node/v1alpha1/NetworkInfo.js';
export type { NetworkMode } from './generated/tern/node/v1alpha1/NetworkMode.js';
export type { NicAttachment, NicAttachment__Output } from './generated/tern/node/v1alpha1/NicAttachment.js';
export type { StartGuestRequest } from './generated/tern/node/v1alpha1/StartGuestRequest.js';
export type { Resources, Resources__Output } from './generated/tern/node/v1alpha1/Resources.js';
export type { ProtoGrpcType as MigrationProto } from './generated/migration.js';
export type {
  MigrationClient,
  MigrationDefinition,
  MigrationHandlers,
} from './generated/tern/node/v1alpha1/Migration.js';
export type { ConvergenceDecision } from './generated/tern/node/v1alpha1/ConvergenceDecision.js';
export type {
  MigrationEvent,
  MigrationEvent__Output,
} from './generated/tern/node/v1alpha1/MigrationEvent.js';
export type {
  MigrationOutcome,
  MigrationOutcome__Output,
} from './generated/tern/node/v1alpha1/MigrationOutcome.js';
export type {
  QuiesceReport as WireQuiesceReport,
  QuiesceReport__Output as WireQuiesceReport__Output,
} from './generated/tern/node/v1alpha1/QuiesceReport.js';
export type { MigrationPhase as WireMigrationPhase } from './generated/tern/node/v1alpha1/MigrationPhase.js';
export type {
  MigrationPolicy as WireMigrationPolicy,
  MigrationPolicy__Output as WireMigrationPolicy__Output,
} from './generated/tern/node/v1alpha1/MigrationPolicy.js';
export type { MigrationProgress as WireMigrationProgress } from './generated/tern/node/v1alpha1/MigrationProgress.js';
export type { MigrationStage } from './generated/tern/node/v1alpha1/MigrationStage.js';
export type {
  MigrationState,
  MigrationState__Output,
} from './generated/tern/node/v1alpha1/MigrationState.js';
export type { ClockReading__Output } from './generated/tern/node/v1alpha1/ClockReading.js';
export type { SteerFramesResponse__Output } from './generated/tern/node/v1alpha1/SteerFramesResponse.js';
export type {
  SourceSwitchover,
  SourceSwitchover__Output,
} from './generated/tern/node/v1alpha1/SourceSwitchover.js';
export type {
  TargetSwitchover,
  TargetSwitchover__Output,
} from './generated/tern/node/v1alpha1/TargetSwitchover.js';
export type { PrepareIncomingResponse__Output } from './generated/tern/node/v1alpha1/PrepareIncomingResponse.js';
export type { ConsoleInput, ConsoleInput__Output } from './generated/tern/node/v1alpha1/ConsoleInput.js';
export type { ConsoleOutput, ConsoleOutput__Output } from './generated/tern/node/v1alpha1/ConsoleOutput.js';
export type { ConsoleClient, ConsoleHandlers } from './generated/tern/console/v1alpha1/Console.js';
export type {
  ConsoleRequest,
  ConsoleRequest__Output,
} from './generated/tern/console/v1alpha1/ConsoleRequest.js';
export type {
  ConsoleResponse,
  ConsoleResponse__Output,
} from './generated/tern/console/v1alpha1/ConsoleResponse.js';
