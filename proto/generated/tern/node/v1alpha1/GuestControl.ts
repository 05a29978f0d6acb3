// Original file: proto/tern/node/v1alpha1/control.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { ConsoleInput as _tern_node_v1alpha1_ConsoleInput, ConsoleInput__Output as _tern_node_v1alpha1_ConsoleInput__Output } from '../../../tern/node/v1alpha1/ConsoleInput.js';
import type { ConsoleOutput as _tern_node_v1alpha1_ConsoleOutput, ConsoleOutput__Output as _tern_node_v1alpha1_ConsoleOutput__Output } from '../../../tern/node/v1alpha1/ConsoleOutput.js';
import type { CreateGuestRequest as _tern_node_v1alpha1_CreateGuestRequest, CreateGuestRequest__Output as _tern_node_v1alpha1_CreateGuestRequest__Output } from '../../../tern/node/v1alpha1/CreateGuestRequest.js';
import type { DeleteGuestRequest as _tern_node_v1alpha1_DeleteGuestRequest, DeleteGuestRequest__Output as _tern_node_v1alpha1_DeleteGuestRequest__Output } from '../../../tern/node/v1alpha1/DeleteGuestRequest.js';
import type { DeleteGuestResponse as _tern_node_v1alpha1_DeleteGuestResponse, DeleteGuestResponse__Output as _tern_node_v1alpha1_DeleteGuestResponse__Output } from '../../../tern/node/v1alpha1/DeleteGuestResponse.js';
import type { GetGuestRequest as _tern_node_v1alpha1_GetGuestRequest, GetGuestRequest__Output as _tern_node_v1alpha1_GetGuestRequest__Output } from '../../../tern/node/v1alpha1/GetGuestRequest.js';
import type { GetNodeInfoRequest as _tern_node_v1alpha1_GetNodeInfoRequest, GetNodeInfoRequest__Output as _tern_node_v1alpha1_GetNodeInfoRequest__Output } from '../../../tern/node/v1alpha1/GetNodeInfoRequest.js';
import type { Guest as _tern_node_v1alpha1_Guest, Guest__Output as _tern_node_v1alpha1_Guest__Output } from '../../../tern/node/v1alpha1/Guest.js';
import type { GuestEvent as _tern_node_v1alpha1_GuestEvent, GuestEvent__Output as _tern_node_v1alpha1_GuestEvent__Output } from '../../../tern/node/v1alpha1/GuestEvent.js';
import type { ListGuestsRequest as _tern_node_v1alpha1_ListGuestsRequest, ListGuestsRequest__Output as _tern_node_v1alpha1_ListGuestsRequest__Output } from '../../../tern/node/v1alpha1/ListGuestsRequest.js';
import type { ListGuestsResponse as _tern_node_v1alpha1_ListGuestsResponse, ListGuestsResponse__Output as _tern_node_v1alpha1_ListGuestsResponse__Output } from '../../../tern/node/v1alpha1/ListGuestsResponse.js';
import type { NodeInfo as _tern_node_v1alpha1_NodeInfo, NodeInfo__Output as _tern_node_v1alpha1_NodeInfo__Output } from '../../../tern/node/v1alpha1/NodeInfo.js';
import type { StartGuestRequest as _tern_node_v1alpha1_StartGuestRequest, StartGuestRequest__Output as _tern_node_v1alpha1_StartGuestRequest__Output } from '../../../tern/node/v1alpha1/StartGuestRequest.js';
import type { StopGuestRequest as _tern_node_v1alpha1_StopGuestRequest, StopGuestRequest__Output as _tern_node_v1alpha1_StopGuestRequest__Output } from '../../../tern/node/v1alpha1/StopGuestRequest.js';
import type { WatchGuestsRequest as _tern_node_v1alpha1_WatchGuestsRequest, WatchGuestsRequest__Output as _tern_node_v1alpha1_WatchGuestsRequest__Output } from '../../../tern/node/v1alpha1/WatchGuestsRequest.js';

export interface GuestControlClient extends grpc.Client {
  /**
   * The guest's first serial port (docs/console.md). The first request carries `open` (which guest, how much
   * history); later requests carry keystrokes in `data` (at most 4 KiB each). Responses carry what the console
   * writes: the log's last `history_bytes` (at most 64 KiB) first when asked, then live output. One session per
   * guest at a time: a second gets ALREADY_EXISTS. The first response is empty: the session is attached. NOT_FOUND for an unknown guest; the stream ends with OK and
   * `ended` set when the guest stops or is deleted, RESOURCE_EXHAUSTED when the client does not keep up.
   */
  AttachConsole(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_node_v1alpha1_ConsoleInput, _tern_node_v1alpha1_ConsoleOutput__Output>;
  AttachConsole(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_node_v1alpha1_ConsoleInput, _tern_node_v1alpha1_ConsoleOutput__Output>;
  /**
   * The guest's first serial port (docs/console.md). The first request carries `open` (which guest, how much
   * history); later requests carry keystrokes in `data` (at most 4 KiB each). Responses carry what the console
   * writes: the log's last `history_bytes` (at most 64 KiB) first when asked, then live output. One session per
   * guest at a time: a second gets ALREADY_EXISTS. The first response is empty: the session is attached. NOT_FOUND for an unknown guest; the stream ends with OK and
   * `ended` set when the guest stops or is deleted, RESOURCE_EXHAUSTED when the client does not keep up.
   */
  attachConsole(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_node_v1alpha1_ConsoleInput, _tern_node_v1alpha1_ConsoleOutput__Output>;
  attachConsole(options?: grpc.CallOptions): grpc.ClientDuplexStream<_tern_node_v1alpha1_ConsoleInput, _tern_node_v1alpha1_ConsoleOutput__Output>;
  
  /**
   * Creates the guest and starts its QEMU process. ALREADY_EXISTS if a guest of that name exists on the node,
   * INVALID_ARGUMENT if the spec is rejected (names, paths outside the image roots the namespace may use, unsafe
   * image headers, sizes).
   */
  CreateGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  CreateGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  CreateGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  CreateGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  /**
   * Creates the guest and starts its QEMU process. ALREADY_EXISTS if a guest of that name exists on the node,
   * INVALID_ARGUMENT if the spec is rejected (names, paths outside the image roots the namespace may use, unsafe
   * image headers, sizes).
   */
  createGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  createGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  createGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  createGuest(argument: _tern_node_v1alpha1_CreateGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  
  /**
   * Stops the guest if it still runs (the daemon's default stop timeout), then removes it and its state dir.
   */
  DeleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  DeleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  DeleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  DeleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  /**
   * Stops the guest if it still runs (the daemon's default stop timeout), then removes it and its state dir.
   */
  deleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  deleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  deleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  deleteGuest(argument: _tern_node_v1alpha1_DeleteGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_DeleteGuestResponse__Output>): grpc.ClientUnaryCall;
  
  GetGuest(argument: _tern_node_v1alpha1_GetGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  GetGuest(argument: _tern_node_v1alpha1_GetGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  GetGuest(argument: _tern_node_v1alpha1_GetGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  GetGuest(argument: _tern_node_v1alpha1_GetGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  getGuest(argument: _tern_node_v1alpha1_GetGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  getGuest(argument: _tern_node_v1alpha1_GetGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  getGuest(argument: _tern_node_v1alpha1_GetGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  getGuest(argument: _tern_node_v1alpha1_GetGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  
  GetNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  GetNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  GetNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  GetNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  getNodeInfo(argument: _tern_node_v1alpha1_GetNodeInfoRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_NodeInfo__Output>): grpc.ClientUnaryCall;
  
  ListGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  ListGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  ListGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  ListGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  listGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  listGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  listGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  listGuests(argument: _tern_node_v1alpha1_ListGuestsRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_ListGuestsResponse__Output>): grpc.ClientUnaryCall;
  
  /**
   * Starts a STOPPED or FAILED guest again from its stored spec (re-validated against the node's current
   * policy), and returns once QEMU answers. NOT_FOUND if there is no such guest, FAILED_PRECONDITION if it is in
   * any other phase or its old QEMU still runs (QMP unreachable: delete it instead), INVALID_ARGUMENT if the
   * stored spec no longer passes the node's policy, ABORTED if QEMU does not come up (the guest is then FAILED).
   */
  StartGuest(argument: _tern_node_v1alpha1_StartGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  StartGuest(argument: _tern_node_v1alpha1_StartGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  StartGuest(argument: _tern_node_v1alpha1_StartGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  StartGuest(argument: _tern_node_v1alpha1_StartGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  /**
   * Starts a STOPPED or FAILED guest again from its stored spec (re-validated against the node's current
   * policy), and returns once QEMU answers. NOT_FOUND if there is no such guest, FAILED_PRECONDITION if it is in
   * any other phase or its old QEMU still runs (QMP unreachable: delete it instead), INVALID_ARGUMENT if the
   * stored spec no longer passes the node's policy, ABORTED if QEMU does not come up (the guest is then FAILED).
   */
  startGuest(argument: _tern_node_v1alpha1_StartGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  startGuest(argument: _tern_node_v1alpha1_StartGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  startGuest(argument: _tern_node_v1alpha1_StartGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  startGuest(argument: _tern_node_v1alpha1_StartGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  
  /**
   * Asks the guest to shut down (ACPI powerdown); when it has not within the timeout, tells QEMU to quit, and
   * SIGKILLs QEMU 5 s later if it is still there. A paused guest gets the quit at once.
   */
  StopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  StopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  StopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  StopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  /**
   * Asks the guest to shut down (ACPI powerdown); when it has not within the timeout, tells QEMU to quit, and
   * SIGKILLs QEMU 5 s later if it is still there. A paused guest gets the quit at once.
   */
  stopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  stopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  stopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  stopGuest(argument: _tern_node_v1alpha1_StopGuestRequest, callback: grpc.requestCallback<_tern_node_v1alpha1_Guest__Output>): grpc.ClientUnaryCall;
  
  /**
   * Streams one ADDED event per existing guest, then SYNCED, then every change as it happens.
   */
  WatchGuests(argument: _tern_node_v1alpha1_WatchGuestsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_GuestEvent__Output>;
  WatchGuests(argument: _tern_node_v1alpha1_WatchGuestsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_GuestEvent__Output>;
  /**
   * Streams one ADDED event per existing guest, then SYNCED, then every change as it happens.
   */
  watchGuests(argument: _tern_node_v1alpha1_WatchGuestsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_GuestEvent__Output>;
  watchGuests(argument: _tern_node_v1alpha1_WatchGuestsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_tern_node_v1alpha1_GuestEvent__Output>;
  
}

export interface GuestControlHandlers extends grpc.UntypedServiceImplementation {
  /**
   * The guest's first serial port (docs/console.md). The first request carries `open` (which guest, how much
   * history); later requests carry keystrokes in `data` (at most 4 KiB each). Responses carry what the console
   * writes: the log's last `history_bytes` (at most 64 KiB) first when asked, then live output. One session per
   * guest at a time: a second gets ALREADY_EXISTS. The first response is empty: the session is attached. NOT_FOUND for an unknown guest; the stream ends with OK and
   * `ended` set when the guest stops or is deleted, RESOURCE_EXHAUSTED when the client does not keep up.
   */
  AttachConsole: grpc.handleBidiStreamingCall<_tern_node_v1alpha1_ConsoleInput__Output, _tern_node_v1alpha1_ConsoleOutput>;
  
  /**
   * Creates the guest and starts its QEMU process. ALREADY_EXISTS if a guest of that name exists on the node,
   * INVALID_ARGUMENT if the spec is rejected (names, paths outside the image roots the namespace may use, unsafe
   * image headers, sizes).
   */
  CreateGuest: grpc.handleUnaryCall<_tern_node_v1alpha1_CreateGuestRequest__Output, _tern_node_v1alpha1_Guest>;
  
  /**
   * Stops the guest if it still runs (the daemon's default stop timeout), then removes it and its state dir.
   */
  DeleteGuest: grpc.handleUnaryCall<_tern_node_v1alpha1_DeleteGuestRequest__Output, _tern_node_v1alpha1_DeleteGuestResponse>;
  
  GetGuest: grpc.handleUnaryCall<_tern_node_v1alpha1_GetGuestRequest__Output, _tern_node_v1alpha1_Guest>;
  
  GetNodeInfo: grpc.handleUnaryCall<_tern_node_v1alpha1_GetNodeInfoRequest__Output, _tern_node_v1alpha1_NodeInfo>;
  
  ListGuests: grpc.handleUnaryCall<_tern_node_v1alpha1_ListGuestsRequest__Output, _tern_node_v1alpha1_ListGuestsResponse>;
  
  /**
   * Starts a STOPPED or FAILED guest again from its stored spec (re-validated against the node's current
   * policy), and returns once QEMU answers. NOT_FOUND if there is no such guest, FAILED_PRECONDITION if it is in
   * any other phase or its old QEMU still runs (QMP unreachable: delete it instead), INVALID_ARGUMENT if the
   * stored spec no longer passes the node's policy, ABORTED if QEMU does not come up (the guest is then FAILED).
   */
  StartGuest: grpc.handleUnaryCall<_tern_node_v1alpha1_StartGuestRequest__Output, _tern_node_v1alpha1_Guest>;
  
  /**
   * Asks the guest to shut down (ACPI powerdown); when it has not within the timeout, tells QEMU to quit, and
   * SIGKILLs QEMU 5 s later if it is still there. A paused guest gets the quit at once.
   */
  StopGuest: grpc.handleUnaryCall<_tern_node_v1alpha1_StopGuestRequest__Output, _tern_node_v1alpha1_Guest>;
  
  /**
   * Streams one ADDED event per existing guest, then SYNCED, then every change as it happens.
   */
  WatchGuests: grpc.handleServerStreamingCall<_tern_node_v1alpha1_WatchGuestsRequest__Output, _tern_node_v1alpha1_GuestEvent>;
  
}

export interface GuestControlDefinition extends grpc.ServiceDefinition {
  AttachConsole: MethodDefinition<_tern_node_v1alpha1_ConsoleInput, _tern_node_v1alpha1_ConsoleOutput, _tern_node_v1alpha1_ConsoleInput__Output, _tern_node_v1alpha1_ConsoleOutput__Output>
  CreateGuest: MethodDefinition<_tern_node_v1alpha1_CreateGuestRequest, _tern_node_v1alpha1_Guest, _tern_node_v1alpha1_CreateGuestRequest__Output, _tern_node_v1alpha1_Guest__Output>
  DeleteGuest: MethodDefinition<_tern_node_v1alpha1_DeleteGuestRequest, _tern_node_v1alpha1_DeleteGuestResponse, _tern_node_v1alpha1_DeleteGuestRequest__Output, _tern_node_v1alpha1_DeleteGuestResponse__Output>
  GetGuest: MethodDefinition<_tern_node_v1alpha1_GetGuestRequest, _tern_node_v1alpha1_Guest, _tern_node_v1alpha1_GetGuestRequest__Output, _tern_node_v1alpha1_Guest__Output>
  GetNodeInfo: MethodDefinition<_tern_node_v1alpha1_GetNodeInfoRequest, _tern_node_v1alpha1_NodeInfo, _tern_node_v1alpha1_GetNodeInfoRequest__Output, _tern_node_v1alpha1_NodeInfo__Output>
  ListGuests: MethodDefinition<_tern_node_v1alpha1_ListGuestsRequest, _tern_node_v1alpha1_ListGuestsResponse, _tern_node_v1alpha1_ListGuestsRequest__Output, _tern_node_v1alpha1_ListGuestsResponse__Output>
  StartGuest: MethodDefinition<_tern_node_v1alpha1_StartGuestRequest, _tern_node_v1alpha1_Guest, _tern_node_v1alpha1_StartGuestRequest__Output, _tern_node_v1alpha1_Guest__Output>
  StopGuest: MethodDefinition<_tern_node_v1alpha1_StopGuestRequest, _tern_node_v1alpha1_Guest, _tern_node_v1alpha1_StopGuestRequest__Output, _tern_node_v1alpha1_Guest__Output>
  WatchGuests: MethodDefinition<_tern_node_v1alpha1_WatchGuestsRequest, _tern_node_v1alpha1_GuestEvent, _tern_node_v1alpha1_WatchGuestsRequest__Output, _tern_node_v1alpha1_GuestEvent__Output>
}
