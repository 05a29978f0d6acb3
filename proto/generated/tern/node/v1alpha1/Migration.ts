// Original file: proto/tern/node/v1alpha1/migration.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { AbortIncomingRequest as _tern_node_v1alpha1_AbortIncomingRequest, AbortIncomingRequest__Output as _tern_node_v1alpha1_AbortIncomingRequest__Output } from '../../../tern/node/v1alpha1/AbortIncomingRequest.js';
import type { CancelMigrationRequest as _tern_node_v1alpha1_CancelMigrationRequest, CancelMigrationRequest__Output as _tern_node_v1alpha1_CancelMigrationRequest__Output } from '../../../tern/node/v1alpha1/CancelMigrationRequest.js';
import type { ClockReading as _tern_node_v1alpha1_ClockReading, ClockReading__Output as _tern_node_v1alpha1_ClockReading__Output } from '../../../tern/node/v1alpha1/ClockReading.js';
import type { ContinueMigrationRequest as _tern_node_v1alpha1_ContinueMigrationRequest, ContinueMigrationRequest__Output as _tern_node_v1alpha1_ContinueMigrationRequest__Output } from '../../../tern/node/v1alpha1/ContinueMigrationRequest.js';
import type { GetMigrationRequest as _tern_node_v1alpha1_GetMigrationRequest, GetMigrationRequest__Output as _tern_node_v1alpha1_GetMigrationRequest__Output } from '../../../tern/node/v1alpha1/GetMigrationRequest.js';
import type { HandOverRequest as _tern_node_v1alpha1_HandOverRequest, HandOverRequest__Output as _tern_node_v1alpha1_HandOverRequest__Output } from '../../../tern/node/v1alpha1/HandOverRequest.js';
import type { MigrationEvent as _tern_node_v1alpha1_MigrationEvent, MigrationEvent__Output as _tern_node_v1alpha1_MigrationEvent__Output } from '../../../tern/node/v1alpha1/MigrationEvent.js';
import type { MigrationState as _tern_node_v1alpha1_MigrationState, MigrationState__Output as _tern_node_v1alpha1_MigrationState__Output } from '../../../tern/node/v1alpha1/MigrationState.js';
import type { PrepareIncomingRequest as _tern_node_v1alpha1_PrepareIncomingRequest, PrepareIncomingRequest__Output as _tern_node_v1alpha1_PrepareIncomingRequest__Output } from '../../../tern/node/v1alpha1/PrepareIncomingRequest.js';
import type { PrepareIncomingResponse as _tern_node_v1alpha1_PrepareIncomingResponse, PrepareIncomingResponse__Output as _tern_node_v1alpha1_PrepareIncomingResponse__Output } from '../../../tern/node/v1alpha1/PrepareIncomingResponse.js';
import type { ReadClockRequest as _tern_node_v1alpha1_ReadClockRequest, ReadClockRequest__Output as _tern_node_v1alpha1_ReadClockRequest__Output } from '../../../tern/node/v1alpha1/ReadClockRequest.js';
import type { StartMigrationRequest as _tern_node_v1alpha1_StartMigrationRequest, StartMigrationRequest__Output as _tern_node_v1alpha1_StartMigrationRequest__Output } from '../../../tern/node/v1alpha1/StartMigrationRequest.js';
import type { SteerFramesRequest as _tern_node_v1alpha1_SteerFramesRequest, SteerFramesRequest__Output as _tern_node_v1alpha1_SteerFramesRequest__Output } from '../../../tern/node/v1alpha1/SteerFramesRequest.js';
import type { SteerFramesResponse as _tern_node_v1alpha1_SteerFramesResponse, SteerFramesResponse__Output as _tern_node_v1alpha1_SteerFramesResponse__Output } from '../../../tern/node/v1alpha1/SteerFramesResponse.js';
import type { WatchMigrationRequest as _tern_node_v1alpha1_WatchMigrationRequest, WatchMigrationRequest__Output as _tern_node_v1alpha1_WatchMigrationRequest__Output } from '../../../tern/node/v1alpha1/WatchMigrationRequest.js';

export interface MigrationClient extends grpc.Client {
  /**
   * Target: quits the incoming QEMU (and with it the data endpoint), forgets the token, deletes the state dir.
   * Refused once the target was resumed; during a ResumeTarget it waits for it (and is refused if the guest then
   * runs). Answers ABORTED only once the incoming QEMU is gone. Idempotent; an unknown id is not an error. While PrepareIncoming still
   * starts QEMU, marks the migration aborted and answers once that QEMU is removed again.
   */
  AbortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  AbortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  AbortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  AbortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Target: quits the incoming QEMU (and with it the data endpoint), forgets the token, deletes the state dir.
   * Refused once the target was resumed; during a ResumeTarget it waits for it (and is refused if the guest then
   * runs). Answers ABORTED only once the incoming QEMU is gone. Idempotent; an unknown id is not an error. While PrepareIncoming still
   * starts QEMU, marks the migration aborted and answers once that QEMU is removed again.
   */
  abortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  abortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  abortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  abortIncoming(argument: _tern_node_v1alpha1_AbortIncomingRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Source: cancels before the hand-over; the guest keeps running on the source. FAILED_PRECONDITION once the
   * device state has crossed (use the hand-over's failure path) or during post-copy, and for nothing else: the
   * message starts "too late to cancel". UNAVAILABLE when QEMU did not answer or finish cancelling in time: retry.
   */
  CancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  CancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  CancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  CancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Source: cancels before the hand-over; the guest keeps running on the source. FAILED_PRECONDITION once the
   * device state has crossed (use the hand-over's failure path) or during post-copy, and for nothing else: the
   * message starts "too late to cancel". UNAVAILABLE when QEMU did not answer or finish cancelling in time: retry.
   */
  cancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  cancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  cancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  cancelMigration(argument: _tern_node_v1alpha1_CancelMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Source, with hold_in_quiescing: lets a migration held in Quiescing (guest paused) continue to the switchover.
   */
  ContinueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ContinueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ContinueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ContinueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Source, with hold_in_quiescing: lets a migration held in Quiescing (guest paused) continue to the switchover.
   */
  continueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  continueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  continueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  continueMigration(argument: _tern_node_v1alpha1_ContinueMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Either side. A migration whose hand-over step is done (target RESUMED, ABORTED or TARGET_FAILED and removed;
   * source RELEASED, SOURCE_RESUMED or SOURCE_LOST) is answered from a tombstone that survives a daemon restart and
   * is kept for days, so NOT_FOUND means this daemon never held the migration (or forgot it with its state dir).
   * The hand-over calls repeated on a tombstone answer as they did (or refuse as they would).
   */
  GetMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  GetMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  GetMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  GetMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Either side. A migration whose hand-over step is done (target RESUMED, ABORTED or TARGET_FAILED and removed;
   * source RELEASED, SOURCE_RESUMED or SOURCE_LOST) is answered from a tombstone that survives a daemon restart and
   * is kept for days, so NOT_FOUND means this daemon never held the migration (or forgot it with its state dir).
   * The hand-over calls repeated on a tombstone answer as they did (or refuse as they would).
   */
  getMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  getMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  getMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  getMigration(argument: _tern_node_v1alpha1_GetMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Target: starts the incoming QEMU (paused, -incoming) with the source's machine, CPU model, memory and uuid,
   * listening on this node's migration address (a free port) behind TLS keyed by the token. ALREADY_EXISTS if a
   * guest of that name exists here and is not this migration's target, or if the id is known with another token;
   * FAILED_PRECONDITION if the source's accelerator differs from this node's, or a local disk's image cannot be
   * created here (its directory missing or outside the allowed roots, a qcow2 overlay's base image missing);
   * ALREADY_EXISTS also when a file exists at a local disk's path (it is never overwritten); INVALID_ARGUMENT when
   * local_disks does not describe exactly the spec's local disks. The id is known from the moment the
   * call arrives: a retry with the same id and token (also while the first call still starts QEMU) waits for the
   * first and returns its answer, never a second QEMU. ABORTED if the migration was aborted (also while its QEMU
   * started; that QEMU is removed again). RESOURCE_EXHAUSTED when the daemon tracks as many migrations as it
   * remembers and none of them has finished (it never forgets one in progress or awaiting its hand-over). An
   * incoming QEMU no source reached within token_ttl_seconds (plus a margin), or whose incoming migration failed,
   * is removed by the daemon itself if nobody aborted it; its stage is then TARGET_FAILED with the reason.
   */
  PrepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  PrepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  PrepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  PrepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Target: starts the incoming QEMU (paused, -incoming) with the source's machine, CPU model, memory and uuid,
   * listening on this node's migration address (a free port) behind TLS keyed by the token. ALREADY_EXISTS if a
   * guest of that name exists here and is not this migration's target, or if the id is known with another token;
   * FAILED_PRECONDITION if the source's accelerator differs from this node's, or a local disk's image cannot be
   * created here (its directory missing or outside the allowed roots, a qcow2 overlay's base image missing);
   * ALREADY_EXISTS also when a file exists at a local disk's path (it is never overwritten); INVALID_ARGUMENT when
   * local_disks does not describe exactly the spec's local disks. The id is known from the moment the
   * call arrives: a retry with the same id and token (also while the first call still starts QEMU) waits for the
   * first and returns its answer, never a second QEMU. ABORTED if the migration was aborted (also while its QEMU
   * started; that QEMU is removed again). RESOURCE_EXHAUSTED when the daemon tracks as many migrations as it
   * remembers and none of them has finished (it never forgets one in progress or awaiting its hand-over). An
   * incoming QEMU no source reached within token_ttl_seconds (plus a margin), or whose incoming migration failed,
   * is removed by the daemon itself if nobody aborted it; its stage is then TARGET_FAILED with the reason.
   */
  prepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  prepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  prepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  prepareIncoming(argument: _tern_node_v1alpha1_PrepareIncomingRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_PrepareIncomingResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Either side, a read: this daemon's wall clock as the call is handled. The operator times each reading's round
   * trip and keeps the one with the shortest: the daemon's clock offset, within half that round trip, which puts
   * the daemons' switchover steps (SourceSwitchover, TargetSwitchover) on the operator's clock.
   */
  ReadClock(argument: _tern_node_v1alpha1_ReadClockRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  ReadClock(argument: _tern_node_v1alpha1_ReadClockRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  ReadClock(argument: _tern_node_v1alpha1_ReadClockRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  ReadClock(argument: _tern_node_v1alpha1_ReadClockRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  /**
   * Either side, a read: this daemon's wall clock as the call is handled. The operator times each reading's round
   * trip and keeps the one with the shortest: the daemon's clock offset, within half that round trip, which puts
   * the daemons' switchover steps (SourceSwitchover, TargetSwitchover) on the operator's clock.
   */
  readClock(argument: _tern_node_v1alpha1_ReadClockRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  readClock(argument: _tern_node_v1alpha1_ReadClockRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  readClock(argument: _tern_node_v1alpha1_ReadClockRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  readClock(argument: _tern_node_v1alpha1_ReadClockRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_ClockReading__Output>): grpc.ClientUnaryCall;
  
  /**
   * Source, hand-over success side: quits the (paused) source QEMU and deletes its state. Only after COMPLETED;
   * refused while the source runs the guest.
   */
  ReleaseSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ReleaseSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ReleaseSource(argument: _tern_node_v1alpha1_HandOverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ReleaseSource(argument: _tern_node_v1alpha1_HandOverRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Source, hand-over success side: quits the (paused) source QEMU and deletes its state. Only after COMPLETED;
   * refused while the source runs the guest.
   */
  releaseSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  releaseSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  releaseSource(argument: _tern_node_v1alpha1_HandOverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  releaseSource(argument: _tern_node_v1alpha1_HandOverRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Source, hand-over failure side: runs the guest here again if it is paused. recorded_owner must name this node;
   * the caller must have aborted the target first. Answers stage SOURCE_LOST when the source QEMU died.
   */
  ResumeSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ResumeSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ResumeSource(argument: _tern_node_v1alpha1_HandOverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ResumeSource(argument: _tern_node_v1alpha1_HandOverRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Source, hand-over failure side: runs the guest here again if it is paused. recorded_owner must name this node;
   * the caller must have aborted the target first. Answers stage SOURCE_LOST when the source QEMU died.
   */
  resumeSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  resumeSource(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  resumeSource(argument: _tern_node_v1alpha1_HandOverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  resumeSource(argument: _tern_node_v1alpha1_HandOverRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Target, hand-over success side: runs the loaded guest and announces it on the network. Only after the caller
   * recorded this node as the owner; recorded_owner must name this node. The stage is RESUMING meanwhile; a second
   * call joins the first.
   */
  ResumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ResumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ResumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  ResumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Target, hand-over success side: runs the loaded guest and announces it on the network. Only after the caller
   * recorded this node as the owner; recorded_owner must name this node. The stage is RESUMING meanwhile; a second
   * call joins the first.
   */
  resumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  resumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  resumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  resumeTarget(argument: _tern_node_v1alpha1_HandOverRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Source: starts migrating a running guest into the target's data endpoint. Local disks are mirrored first (into
   * target_disk_endpoint), and the memory follows once every disk is in sync. Returns once QEMU was asked to copy;
   * follow it with WatchMigration. INVALID_ARGUMENT for a bad policy, NOT_FOUND for an unknown guest,
   * FAILED_PRECONDITION when the guest cannot be migrated now (another migration, not running, old QEMU).
   */
  StartMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  StartMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  StartMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  StartMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  /**
   * Source: starts migrating a running guest into the target's data endpoint. Local disks are mirrored first (into
   * target_disk_endpoint), and the memory follows once every disk is in sync. Returns once QEMU was asked to copy;
   * follow it with WatchMigration. INVALID_ARGUMENT for a bad policy, NOT_FOUND for an unknown guest,
   * FAILED_PRECONDITION when the guest cannot be migrated now (another migration, not running, old QEMU).
   */
  startMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  startMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  startMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  startMigration(argument: _tern_node_v1alpha1_StartMigrationRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_MigrationState__Output>): grpc.ClientUnaryCall;
  
  /**
   * Target, while the source holds the guest paused for the switchover (the operator calls it when the source
   * reports the pause): makes the network send the guest's frames to this node, where the incoming QEMU keeps them
   * until it runs the guest. Its bridge's entry for each of the guest's MACs moves to the guest's tap here, and a
   * RARP from each MAC goes out of that bridge so that the switches behind it learn the MAC at this node (QEMU's
   * own announce comes only with `cont`). Best effort and once per migration: problems lists what did not work
   * (empty: the frames now come here); a call after the target ran, was aborted or failed changes nothing.
   * NOT_FOUND for a migration this daemon is not the target of.
   */
  SteerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  SteerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  SteerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  SteerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Target, while the source holds the guest paused for the switchover (the operator calls it when the source
   * reports the pause): makes the network send the guest's frames to this node, where the incoming QEMU keeps them
   * until it runs the guest. Its bridge's entry for each of the guest's MACs moves to the guest's tap here, and a
   * RARP from each MAC goes out of that bridge so that the switches behind it learn the MAC at this node (QEMU's
   * own announce comes only with `cont`). Best effort and once per migration: problems lists what did not work
   * (empty: the frames now come here); a call after the target ran, was aborted or failed changes nothing.
   * NOT_FOUND for a migration this daemon is not the target of.
   */
  steerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  steerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  steerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  steerFrames(argument: _tern_node_v1alpha1_SteerFramesRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_SteerFramesResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Either side: the history so far (every phase change and decision, the latest progress), then live events at
   * a bounded rate; the stream ends after the OUTCOME event (source) or the TARGET_* terminal event (target).
   */
  WatchMigration(argument: _tern_node_v1alpha1_WatchMigrationRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_MigrationEvent__Output>;
  WatchMigration(argument: _tern_node_v1alpha1_WatchMigrationRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_MigrationEvent__Output>;
  /**
   * Either side: the history so far (every phase change and decision, the latest progress), then live events at
   * a bounded rate; the stream ends after the OUTCOME event (source) or the TARGET_* terminal event (target).
   */
  watchMigration(argument: _tern_node_v1alpha1_WatchMigrationRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_MigrationEvent__Output>;
  watchMigration(argument: _tern_node_v1alpha1_WatchMigrationRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_MigrationEvent__Output>;
  
}

export interface MigrationHandlers extends grpc.UntypedServiceImplementation {
  /**
   * Target: quits the incoming QEMU (and with it the data endpoint), forgets the token, deletes the state dir.
   * Refused once the target was resumed; during a ResumeTarget it waits for it (and is refused if the guest then
   * runs). Answers ABORTED only once the incoming QEMU is gone. Idempotent; an unknown id is not an error. While PrepareIncoming still
   * starts QEMU, marks the migration aborted and answers once that QEMU is removed again.
   */
  AbortIncoming: grpc.handleUnaryCall<_tern_node_v1alpha1_AbortIncomingRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Source: cancels before the hand-over; the guest keeps running on the source. FAILED_PRECONDITION once the
   * device state has crossed (use the hand-over's failure path) or during post-copy, and for nothing else: the
   * message starts "too late to cancel". UNAVAILABLE when QEMU did not answer or finish cancelling in time: retry.
   */
  CancelMigration: grpc.handleUnaryCall<_tern_node_v1alpha1_CancelMigrationRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Source, with hold_in_quiescing: lets a migration held in Quiescing (guest paused) continue to the switchover.
   */
  ContinueMigration: grpc.handleUnaryCall<_tern_node_v1alpha1_ContinueMigrationRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Either side. A migration whose hand-over step is done (target RESUMED, ABORTED or TARGET_FAILED and removed;
   * source RELEASED, SOURCE_RESUMED or SOURCE_LOST) is answered from a tombstone that survives a daemon restart and
   * is kept for days, so NOT_FOUND means this daemon never held the migration (or forgot it with its state dir).
   * The hand-over calls repeated on a tombstone answer as they did (or refuse as they would).
   */
  GetMigration: grpc.handleUnaryCall<_tern_node_v1alpha1_GetMigrationRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Target: starts the incoming QEMU (paused, -incoming) with the source's machine, CPU model, memory and uuid,
   * listening on this node's migration address (a free port) behind TLS keyed by the token. ALREADY_EXISTS if a
   * guest of that name exists here and is not this migration's target, or if the id is known with another token;
   * FAILED_PRECONDITION if the source's accelerator differs from this node's, or a local disk's image cannot be
   * created here (its directory missing or outside the allowed roots, a qcow2 overlay's base image missing);
   * ALREADY_EXISTS also when a file exists at a local disk's path (it is never overwritten); INVALID_ARGUMENT when
   * local_disks does not describe exactly the spec's local disks. The id is known from the moment the
   * call arrives: a retry with the same id and token (also while the first call still starts QEMU) waits for the
   * first and returns its answer, never a second QEMU. ABORTED if the migration was aborted (also while its QEMU
   * started; that QEMU is removed again). RESOURCE_EXHAUSTED when the daemon tracks as many migrations as it
   * remembers and none of them has finished (it never forgets one in progress or awaiting its hand-over). An
   * incoming QEMU no source reached within token_ttl_seconds (plus a margin), or whose incoming migration failed,
   * is removed by the daemon itself if nobody aborted it; its stage is then TARGET_FAILED with the reason.
   */
  PrepareIncoming: grpc.handleUnaryCall<_tern_node_v1alpha1_PrepareIncomingRequest__Output, _tern_node_v1alpha1_PrepareIncomingResponse>;
  
  /**
   * Either side, a read: this daemon's wall clock as the call is handled. The operator times each reading's round
   * trip and keeps the one with the shortest: the daemon's clock offset, within half that round trip, which puts
   * the daemons' switchover steps (SourceSwitchover, TargetSwitchover) on the operator's clock.
   */
  ReadClock: grpc.handleUnaryCall<_tern_node_v1alpha1_ReadClockRequest__Output, _tern_node_v1alpha1_ClockReading>;
  
  /**
   * Source, hand-over success side: quits the (paused) source QEMU and deletes its state. Only after COMPLETED;
   * refused while the source runs the guest.
   */
  ReleaseSource: grpc.handleUnaryCall<_tern_node_v1alpha1_HandOverRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Source, hand-over failure side: runs the guest here again if it is paused. recorded_owner must name this node;
   * the caller must have aborted the target first. Answers stage SOURCE_LOST when the source QEMU died.
   */
  ResumeSource: grpc.handleUnaryCall<_tern_node_v1alpha1_HandOverRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Target, hand-over success side: runs the loaded guest and announces it on the network. Only after the caller
   * recorded this node as the owner; recorded_owner must name this node. The stage is RESUMING meanwhile; a second
   * call joins the first.
   */
  ResumeTarget: grpc.handleUnaryCall<_tern_node_v1alpha1_HandOverRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Source: starts migrating a running guest into the target's data endpoint. Local disks are mirrored first (into
   * target_disk_endpoint), and the memory follows once every disk is in sync. Returns once QEMU was asked to copy;
   * follow it with WatchMigration. INVALID_ARGUMENT for a bad policy, NOT_FOUND for an unknown guest,
   * FAILED_PRECONDITION when the guest cannot be migrated now (another migration, not running, old QEMU).
   */
  StartMigration: grpc.handleUnaryCall<_tern_node_v1alpha1_StartMigrationRequest__Output, _tern_node_v1alpha1_MigrationState>;
  
  /**
   * Target, while the source holds the guest paused for the switchover (the operator calls it when the source
   * reports the pause): makes the network send the guest's frames to this node, where the incoming QEMU keeps them
   * until it runs the guest. Its bridge's entry for each of the guest's MACs moves to the guest's tap here, and a
   * RARP from each MAC goes out of that bridge so that the switches behind it learn the MAC at this node (QEMU's
   * own announce comes only with `cont`). Best effort and once per migration: problems lists what did not work
   * (empty: the frames now come here); a call after the target ran, was aborted or failed changes nothing.
   * NOT_FOUND for a migration this daemon is not the target of.
   */
  SteerFrames: grpc.handleUnaryCall<_tern_node_v1alpha1_SteerFramesRequest__Output, _tern_node_v1alpha1_SteerFramesResponse>;
  
  /**
   * Either side: the history so far (every phase change and decision, the latest progress), then live events at
   * a bounded rate; the stream ends after the OUTCOME event (source) or the TARGET_* terminal event (target).
   */
  WatchMigration: grpc.handleServerStreamingCall<_tern_node_v1alpha1_WatchMigrationRequest__Output, _tern_node_v1alpha1_MigrationEvent>;
  
}

export interface MigrationDefinition extends grpc.ServiceDefinition {
  AbortIncoming: MethodDefinition<_tern_node_v1alpha1_AbortIncomingRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_AbortIncomingRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  CancelMigration: MethodDefinition<_tern_node_v1alpha1_CancelMigrationRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_CancelMigrationRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  ContinueMigration: MethodDefinition<_tern_node_v1alpha1_ContinueMigrationRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_ContinueMigrationRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  GetMigration: MethodDefinition<_tern_node_v1alpha1_GetMigrationRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_GetMigrationRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  PrepareIncoming: MethodDefinition<_tern_node_v1alpha1_PrepareIncomingRequest, _tern_node_v1alpha1_PrepareIncomingResponse, _tern_node_v1alpha1_PrepareIncomingRequest__Output, _tern_node_v1alpha1_PrepareIncomingResponse__Output>
  ReadClock: MethodDefinition<_tern_node_v1alpha1_ReadClockRequest, _tern_node_v1alpha1_ClockReading, _tern_node_v1alpha1_ReadClockRequest__Output, _tern_node_v1alpha1_ClockReading__Output>
  ReleaseSource: MethodDefinition<_tern_node_v1alpha1_HandOverRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_HandOverRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  ResumeSource: MethodDefinition<_tern_node_v1alpha1_HandOverRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_HandOverRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  ResumeTarget: MethodDefinition<_tern_node_v1alpha1_HandOverRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_HandOverRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  StartMigration: MethodDefinition<_tern_node_v1alpha1_StartMigrationRequest, _tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_StartMigrationRequest__Output, _tern_node_v1alpha1_MigrationState__Output>
  SteerFrames: MethodDefinition<_tern_node_v1alpha1_SteerFramesRequest, _tern_node_v1alpha1_SteerFramesResponse, _tern_node_v1alpha1_SteerFramesRequest__Output, _tern_node_v1alpha1_SteerFramesResponse__Output>
  WatchMigration: MethodDefinition<_tern_node_v1alpha1_WatchMigrationRequest, _tern_node_v1alpha1_MigrationEvent, _tern_node_v1alpha1_WatchMigrationRequest__Output, _tern_node_v1alpha1_MigrationEvent__Output>
}
