import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { AbortIncomingRequest as _tern_node_v1alpha1_AbortIncomingRequest, AbortIncomingRequest__Output as _tern_node_v1alpha1_AbortIncomingRequest__Output } from './tern/node/v1alpha1/AbortIncomingRequest.js';
import type { CancelMigrationRequest as _tern_node_v1alpha1_CancelMigrationRequest, CancelMigrationRequest__Output as _tern_node_v1alpha1_CancelMigrationRequest__Output } from './tern/node/v1alpha1/CancelMigrationRequest.js';
import type { ChannelSettings as _tern_node_v1alpha1_ChannelSettings, ChannelSettings__Output as _tern_node_v1alpha1_ChannelSettings__Output } from './tern/node/v1alpha1/ChannelSettings.js';
import type { ClockReading as _tern_node_v1alpha1_ClockReading, ClockReading__Output as _tern_node_v1alpha1_ClockReading__Output } from './tern/node/v1alpha1/ClockReading.js';
import type { ConsoleInput as _tern_node_v1alpha1_ConsoleInput, ConsoleInput__Output as _tern_node_v1alpha1_ConsoleInput__Output } from './tern/node/v1alpha1/ConsoleInput.js';
import type { ConsoleOpen as _tern_node_v1alpha1_ConsoleOpen, ConsoleOpen__Output as _tern_node_v1alpha1_ConsoleOpen__Output } from './tern/node/v1alpha1/ConsoleOpen.js';
import type { ConsoleOutput as _tern_node_v1alpha1_ConsoleOutput, ConsoleOutput__Output as _tern_node_v1alpha1_ConsoleOutput__Output } from './tern/node/v1alpha1/ConsoleOutput.js';
import type { ContinueMigrationRequest as _tern_node_v1alpha1_ContinueMigrationRequest, ContinueMigrationRequest__Output as _tern_node_v1alpha1_ContinueMigrationRequest__Output } from './tern/node/v1alpha1/ContinueMigrationRequest.js';
import type { ConvergenceDecision as _tern_node_v1alpha1_ConvergenceDecision, ConvergenceDecision__Output as _tern_node_v1alpha1_ConvergenceDecision__Output } from './tern/node/v1alpha1/ConvergenceDecision.js';
import type { CreateGuestRequest as _tern_node_v1alpha1_CreateGuestRequest, CreateGuestRequest__Output as _tern_node_v1alpha1_CreateGuestRequest__Output } from './tern/node/v1alpha1/CreateGuestRequest.js';
import type { DeleteGuestRequest as _tern_node_v1alpha1_DeleteGuestRequest, DeleteGuestRequest__Output as _tern_node_v1alpha1_DeleteGuestRequest__Output } from './tern/node/v1alpha1/DeleteGuestRequest.js';
import type { DeleteGuestResponse as _tern_node_v1alpha1_DeleteGuestResponse, DeleteGuestResponse__Output as _tern_node_v1alpha1_DeleteGuestResponse__Output } from './tern/node/v1alpha1/DeleteGuestResponse.js';
import type { Disk as _tern_node_v1alpha1_Disk, Disk__Output as _tern_node_v1alpha1_Disk__Output } from './tern/node/v1alpha1/Disk.js';
import type { GetGuestRequest as _tern_node_v1alpha1_GetGuestRequest, GetGuestRequest__Output as _tern_node_v1alpha1_GetGuestRequest__Output } from './tern/node/v1alpha1/GetGuestRequest.js';
import type { GetMigrationRequest as _tern_node_v1alpha1_GetMigrationRequest, GetMigrationRequest__Output as _tern_node_v1alpha1_GetMigrationRequest__Output } from './tern/node/v1alpha1/GetMigrationRequest.js';
import type { GetNodeInfoRequest as _tern_node_v1alpha1_GetNodeInfoRequest, GetNodeInfoRequest__Output as _tern_node_v1alpha1_GetNodeInfoRequest__Output } from './tern/node/v1alpha1/GetNodeInfoRequest.js';
import type { Guest as _tern_node_v1alpha1_Guest, Guest__Output as _tern_node_v1alpha1_Guest__Output } from './tern/node/v1alpha1/Guest.js';
import type { GuestControlClient as _tern_node_v1alpha1_GuestControlClient, GuestControlDefinition as _tern_node_v1alpha1_GuestControlDefinition } from './tern/node/v1alpha1/GuestControl.js';
import type { GuestEvent as _tern_node_v1alpha1_GuestEvent, GuestEvent__Output as _tern_node_v1alpha1_GuestEvent__Output } from './tern/node/v1alpha1/GuestEvent.js';
import type { GuestSpec as _tern_node_v1alpha1_GuestSpec, GuestSpec__Output as _tern_node_v1alpha1_GuestSpec__Output } from './tern/node/v1alpha1/GuestSpec.js';
import type { HandOverRequest as _tern_node_v1alpha1_HandOverRequest, HandOverRequest__Output as _tern_node_v1alpha1_HandOverRequest__Output } from './tern/node/v1alpha1/HandOverRequest.js';
import type { KernelBoot as _tern_node_v1alpha1_KernelBoot, KernelBoot__Output as _tern_node_v1alpha1_KernelBoot__Output } from './tern/node/v1alpha1/KernelBoot.js';
import type { ListGuestsRequest as _tern_node_v1alpha1_ListGuestsRequest, ListGuestsRequest__Output as _tern_node_v1alpha1_ListGuestsRequest__Output } from './tern/node/v1alpha1/ListGuestsRequest.js';
import type { ListGuestsResponse as _tern_node_v1alpha1_ListGuestsResponse, ListGuestsResponse__Output as _tern_node_v1alpha1_ListGuestsResponse__Output } from './tern/node/v1alpha1/ListGuestsResponse.js';
import type { LocalDiskImage as _tern_node_v1alpha1_LocalDiskImage, LocalDiskImage__Output as _tern_node_v1alpha1_LocalDiskImage__Output } from './tern/node/v1alpha1/LocalDiskImage.js';
import type { MigrationClient as _tern_node_v1alpha1_MigrationClient, MigrationDefinition as _tern_node_v1alpha1_MigrationDefinition } from './tern/node/v1alpha1/Migration.js';
import type { MigrationEvent as _tern_node_v1alpha1_MigrationEvent, MigrationEvent__Output as _tern_node_v1alpha1_MigrationEvent__Output } from './tern/node/v1alpha1/MigrationEvent.js';
import type { MigrationOutcome as _tern_node_v1alpha1_MigrationOutcome, MigrationOutcome__Output as _tern_node_v1alpha1_MigrationOutcome__Output } from './tern/node/v1alpha1/MigrationOutcome.js';
import type { MigrationPolicy as _tern_node_v1alpha1_MigrationPolicy, MigrationPolicy__Output as _tern_node_v1alpha1_MigrationPolicy__Output } from './tern/node/v1alpha1/MigrationPolicy.js';
import type { MigrationProgress as _tern_node_v1alpha1_MigrationProgress, MigrationProgress__Output as _tern_node_v1alpha1_MigrationProgress__Output } from './tern/node/v1alpha1/MigrationProgress.js';
import type { MigrationState as _tern_node_v1alpha1_MigrationState, MigrationState__Output as _tern_node_v1alpha1_MigrationState__Output } from './tern/node/v1alpha1/MigrationState.js';
import type { NetworkInfo as _tern_node_v1alpha1_NetworkInfo, NetworkInfo__Output as _tern_node_v1alpha1_NetworkInfo__Output } from './tern/node/v1alpha1/NetworkInfo.js';
import type { Nic as _tern_node_v1alpha1_Nic, Nic__Output as _tern_node_v1alpha1_Nic__Output } from './tern/node/v1alpha1/Nic.js';
import type { NicAttachment as _tern_node_v1alpha1_NicAttachment, NicAttachment__Output as _tern_node_v1alpha1_NicAttachment__Output } from './tern/node/v1alpha1/NicAttachment.js';
import type { NodeInfo as _tern_node_v1alpha1_NodeInfo, NodeInfo__Output as _tern_node_v1alpha1_NodeInfo__Output } from './tern/node/v1alpha1/NodeInfo.js';
import type { PhaseChange as _tern_node_v1alpha1_PhaseChange, PhaseChange__Output as _tern_node_v1alpha1_PhaseChange__Output } from './tern/node/v1alpha1/PhaseChange.js';
import type { PhaseTiming as _tern_node_v1alpha1_PhaseTiming, PhaseTiming__Output as _tern_node_v1alpha1_PhaseTiming__Output } from './tern/node/v1alpha1/PhaseTiming.js';
import type { PrepareIncomingRequest as _tern_node_v1alpha1_PrepareIncomingRequest, PrepareIncomingRequest__Output as _tern_node_v1alpha1_PrepareIncomingRequest__Output } from './tern/node/v1alpha1/PrepareIncomingRequest.js';
import type { PrepareIncomingResponse as _tern_node_v1alpha1_PrepareIncomingResponse, PrepareIncomingResponse__Output as _tern_node_v1alpha1_PrepareIncomingResponse__Output } from './tern/node/v1alpha1/PrepareIncomingResponse.js';
import type { QuiesceReport as _tern_node_v1alpha1_QuiesceReport, QuiesceReport__Output as _tern_node_v1alpha1_QuiesceReport__Output } from './tern/node/v1alpha1/QuiesceReport.js';
import type { QuiescedDisk as _tern_node_v1alpha1_QuiescedDisk, QuiescedDisk__Output as _tern_node_v1alpha1_QuiescedDisk__Output } from './tern/node/v1alpha1/QuiescedDisk.js';
import type { ReadClockRequest as _tern_node_v1alpha1_ReadClockRequest, ReadClockRequest__Output as _tern_node_v1alpha1_ReadClockRequest__Output } from './tern/node/v1alpha1/ReadClockRequest.js';
import type { Resources as _tern_node_v1alpha1_Resources, Resources__Output as _tern_node_v1alpha1_Resources__Output } from './tern/node/v1alpha1/Resources.js';
import type { SourceSwitchover as _tern_node_v1alpha1_SourceSwitchover, SourceSwitchover__Output as _tern_node_v1alpha1_SourceSwitchover__Output } from './tern/node/v1alpha1/SourceSwitchover.js';
import type { StartGuestRequest as _tern_node_v1alpha1_StartGuestRequest, StartGuestRequest__Output as _tern_node_v1alpha1_StartGuestRequest__Output } from './tern/node/v1alpha1/StartGuestRequest.js';
import type { StartMigrationRequest as _tern_node_v1alpha1_StartMigrationRequest, StartMigrationRequest__Output as _tern_node_v1alpha1_StartMigrationRequest__Output } from './tern/node/v1alpha1/StartMigrationRequest.js';
import type { SteerFramesRequest as _tern_node_v1alpha1_SteerFramesRequest, SteerFramesRequest__Output as _tern_node_v1alpha1_SteerFramesRequest__Output } from './tern/node/v1alpha1/SteerFramesRequest.js';
import type { SteerFramesResponse as _tern_node_v1alpha1_SteerFramesResponse, SteerFramesResponse__Output as _tern_node_v1alpha1_SteerFramesResponse__Output } from './tern/node/v1alpha1/SteerFramesResponse.js';
import type { StopGuestRequest as _tern_node_v1alpha1_StopGuestRequest, StopGuestRequest__Output as _tern_node_v1alpha1_StopGuestRequest__Output } from './tern/node/v1alpha1/StopGuestRequest.js';
import type { TapBackend as _tern_node_v1alpha1_TapBackend, TapBackend__Output as _tern_node_v1alpha1_TapBackend__Output } from './tern/node/v1alpha1/TapBackend.js';
import type { TargetSwitchover as _tern_node_v1alpha1_TargetSwitchover, TargetSwitchover__Output as _tern_node_v1alpha1_TargetSwitchover__Output } from './tern/node/v1alpha1/TargetSwitchover.js';
import type { UserModeBackend as _tern_node_v1alpha1_UserModeBackend, UserModeBackend__Output as _tern_node_v1alpha1_UserModeBackend__Output } from './tern/node/v1alpha1/UserModeBackend.js';
import type { WatchGuestsRequest as _tern_node_v1alpha1_WatchGuestsRequest, WatchGuestsRequest__Output as _tern_node_v1alpha1_WatchGuestsRequest__Output } from './tern/node/v1alpha1/WatchGuestsRequest.js';
import type { WatchMigrationRequest as _tern_node_v1alpha1_WatchMigrationRequest, WatchMigrationRequest__Output as _tern_node_v1alpha1_WatchMigrationRequest__Output } from './tern/node/v1alpha1/WatchMigrationRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tern: {
    node: {
      v1alpha1: {
        AbortIncomingRequest: MessageTypeDefinition<_tern_node_v1alpha1_AbortIncomingRequest, _tern_node_v1alpha1_AbortIncomingRequest__Output>
        Accelerator: EnumTypeDefinition
        CancelMigrationRequest: MessageTypeDefinition<_tern_node_v1alpha1_CancelMigrationRequest, _tern_node_v1alpha1_CancelMigrationRequest__Output>
        ChannelSettings: MessageTypeDefinition<_tern_node_v1alpha1_ChannelSettings, _tern_node_v1alpha1_ChannelSettings__Output>
        ClockReading: MessageTypeDefinition<_tern_node_v1alpha1_ClockReading, _tern_node_v1alpha1_ClockReading__Output>
        ConsoleInput: MessageTypeDefinition<_tern_node_v1alpha1_ConsoleInput, _tern_node_v1alpha1_ConsoleInput__Output>
        ConsoleOpen: MessageTypeDefinition<_tern_node_v1alpha1_ConsoleOpen, _tern_node_v1alpha1_ConsoleOpen__Output>
        ConsoleOutput: MessageTypeDefinition<_tern_node_v1alpha1_ConsoleOutput, _tern_node_v1alpha1_ConsoleOutput__Output>
        ContinueMigrationRequest: MessageTypeDefinition<_tern_node_v1alpha1_ContinueMigrationRequest, _tern_node_v1alpha1_ContinueMigrationRequest__Output>
        ConvergenceDecision: MessageTypeDefinition<_tern_node_v1alpha1_ConvergenceDecision, _tern_node_v1alpha1_ConvergenceDecision__Output>
        CreateGuestRequest: MessageTypeDefinition<_tern_node_v1alpha1_CreateGuestRequest, _tern_node_v1alpha1_CreateGuestRequest__Output>
        DeleteGuestRequest: MessageTypeDefinition<_tern_node_v1alpha1_DeleteGuestRequest, _tern_node_v1alpha1_DeleteGuestRequest__Output>
        DeleteGuestResponse: MessageTypeDefinition<_tern_node_v1alpha1_DeleteGuestResponse, _tern_node_v1alpha1_DeleteGuestResponse__Output>
        Disk: MessageTypeDefinition<_tern_node_v1alpha1_Disk, _tern_node_v1alpha1_Disk__Output>
        DiskBus: EnumTypeDefinition
        DiskCache: EnumTypeDefinition
        DiskFormat: EnumTypeDefinition
        DiskIo: EnumTypeDefinition
        DiskStorage: EnumTypeDefinition
        GetGuestRequest: MessageTypeDefinition<_tern_node_v1alpha1_GetGuestRequest, _tern_node_v1alpha1_GetGuestRequest__Output>
        GetMigrationRequest: MessageTypeDefinition<_tern_node_v1alpha1_GetMigrationRequest, _tern_node_v1alpha1_GetMigrationRequest__Output>
        GetNodeInfoRequest: MessageTypeDefinition<_tern_node_v1alpha1_GetNodeInfoRequest, _tern_node_v1alpha1_GetNodeInfoRequest__Output>
        Guest: MessageTypeDefinition<_tern_node_v1alpha1_Guest, _tern_node_v1alpha1_Guest__Output>
        GuestControl: SubtypeConstructor<typeof grpc.Client, _tern_node_v1alpha1_GuestControlClient> & { service: _tern_node_v1alpha1_GuestControlDefinition }
        GuestEvent: MessageTypeDefinition<_tern_node_v1alpha1_GuestEvent, _tern_node_v1alpha1_GuestEvent__Output>
        GuestPhase: EnumTypeDefinition
        GuestSpec: MessageTypeDefinition<_tern_node_v1alpha1_GuestSpec, _tern_node_v1alpha1_GuestSpec__Output>
        HandOverRequest: MessageTypeDefinition<_tern_node_v1alpha1_HandOverRequest, _tern_node_v1alpha1_HandOverRequest__Output>
        KernelBoot: MessageTypeDefinition<_tern_node_v1alpha1_KernelBoot, _tern_node_v1alpha1_KernelBoot__Output>
        ListGuestsRequest: MessageTypeDefinition<_tern_node_v1alpha1_ListGuestsRequest, _tern_node_v1alpha1_ListGuestsRequest__Output>
        ListGuestsResponse: MessageTypeDefinition<_tern_node_v1alpha1_ListGuestsResponse, _tern_node_v1alpha1_ListGuestsResponse__Output>
        LocalDiskImage: MessageTypeDefinition<_tern_node_v1alpha1_LocalDiskImage, _tern_node_v1alpha1_LocalDiskImage__Output>
        Migration: SubtypeConstructor<typeof grpc.Client, _tern_node_v1alpha1_MigrationClient> & { service: _tern_node_v1alpha1_MigrationDefinition }
        MigrationEvent: MessageTypeDefinition<_tern_node_v1alpha1_MigrationEvent, _tern_node_v1alpha1_MigrationEvent__Output>
        MigrationOutcome: MessageTypeDefinition<_tern_node_v1alpha1_MigrationOutcome, _tern_node_v1alpha1_MigrationOutcome__Output>
        MigrationPhase: EnumTypeDefinition
        MigrationPolicy: MessageTypeDefinition<_tern_node_v1alpha1_MigrationPolicy, _tern_node_v1alpha1_MigrationPolicy__Output>
        MigrationProgress: MessageTypeDefinition<_tern_node_v1alpha1_MigrationProgress, _tern_node_v1alpha1_MigrationProgress__Output>
        MigrationRole: EnumTypeDefinition
        MigrationStage: EnumTypeDefinition
        MigrationState: MessageTypeDefinition<_tern_node_v1alpha1_MigrationState, _tern_node_v1alpha1_MigrationState__Output>
        NetworkInfo: MessageTypeDefinition<_tern_node_v1alpha1_NetworkInfo, _tern_node_v1alpha1_NetworkInfo__Output>
        NetworkMode: EnumTypeDefinition
        Nic: MessageTypeDefinition<_tern_node_v1alpha1_Nic, _tern_node_v1alpha1_Nic__Output>
        NicAttachment: MessageTypeDefinition<_tern_node_v1alpha1_NicAttachment, _tern_node_v1alpha1_NicAttachment__Output>
        NodeInfo: MessageTypeDefinition<_tern_node_v1alpha1_NodeInfo, _tern_node_v1alpha1_NodeInfo__Output>
        PhaseChange: MessageTypeDefinition<_tern_node_v1alpha1_PhaseChange, _tern_node_v1alpha1_PhaseChange__Output>
        PhaseTiming: MessageTypeDefinition<_tern_node_v1alpha1_PhaseTiming, _tern_node_v1alpha1_PhaseTiming__Output>
        PrepareIncomingRequest: MessageTypeDefinition<_tern_node_v1alpha1_PrepareIncomingRequest, _tern_node_v1alpha1_PrepareIncomingRequest__Output>
        PrepareIncomingResponse: MessageTypeDefinition<_tern_node_v1alpha1_PrepareIncomingResponse, _tern_node_v1alpha1_PrepareIncomingResponse__Output>
        QuiesceReport: MessageTypeDefinition<_tern_node_v1alpha1_QuiesceReport, _tern_node_v1alpha1_QuiesceReport__Output>
        QuiescedDisk: MessageTypeDefinition<_tern_node_v1alpha1_QuiescedDisk, _tern_node_v1alpha1_QuiescedDisk__Output>
        ReadClockRequest: MessageTypeDefinition<_tern_node_v1alpha1_ReadClockRequest, _tern_node_v1alpha1_ReadClockRequest__Output>
        Resources: MessageTypeDefinition<_tern_node_v1alpha1_Resources, _tern_node_v1alpha1_Resources__Output>
        SourceSwitchover: MessageTypeDefinition<_tern_node_v1alpha1_SourceSwitchover, _tern_node_v1alpha1_SourceSwitchover__Output>
        StartGuestRequest: MessageTypeDefinition<_tern_node_v1alpha1_StartGuestRequest, _tern_node_v1alpha1_StartGuestRequest__Output>
        StartMigrationRequest: MessageTypeDefinition<_tern_node_v1alpha1_StartMigrationRequest, _tern_node_v1alpha1_StartMigrationRequest__Output>
        SteerFramesRequest: MessageTypeDefinition<_tern_node_v1alpha1_SteerFramesRequest, _tern_node_v1alpha1_SteerFramesRequest__Output>
        SteerFramesResponse: MessageTypeDefinition<_tern_node_v1alpha1_SteerFramesResponse, _tern_node_v1alpha1_SteerFramesResponse__Output>
        StopGuestRequest: MessageTypeDefinition<_tern_node_v1alpha1_StopGuestRequest, _tern_node_v1alpha1_StopGuestRequest__Output>
        TapBackend: MessageTypeDefinition<_tern_node_v1alpha1_TapBackend, _tern_node_v1alpha1_TapBackend__Output>
        TargetSwitchover: MessageTypeDefinition<_tern_node_v1alpha1_TargetSwitchover, _tern_node_v1alpha1_TargetSwitchover__Output>
        UserModeBackend: MessageTypeDefinition<_tern_node_v1alpha1_UserModeBackend, _tern_node_v1alpha1_UserModeBackend__Output>
        WatchGuestsRequest: MessageTypeDefinition<_tern_node_v1alpha1_WatchGuestsRequest, _tern_node_v1alpha1_WatchGuestsRequest__Output>
        WatchMigrationRequest: MessageTypeDefinition<_tern_node_v1alpha1_WatchMigrationRequest, _tern_node_v1alpha1_WatchMigrationRequest__Output>
      }
    }
  }
}

