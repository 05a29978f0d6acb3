import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { ConsoleInput as _tern_node_v1alpha1_ConsoleInput, ConsoleInput__Output as _tern_node_v1alpha1_ConsoleInput__Output } from './tern/node/v1alpha1/ConsoleInput.js';
import type { ConsoleOpen as _tern_node_v1alpha1_ConsoleOpen, ConsoleOpen__Output as _tern_node_v1alpha1_ConsoleOpen__Output } from './tern/node/v1alpha1/ConsoleOpen.js';
import type { ConsoleOutput as _tern_node_v1alpha1_ConsoleOutput, ConsoleOutput__Output as _tern_node_v1alpha1_ConsoleOutput__Output } from './tern/node/v1alpha1/ConsoleOutput.js';
import type { CreateGuestRequest as _tern_node_v1alpha1_CreateGuestRequest, CreateGuestRequest__Output as _tern_node_v1alpha1_CreateGuestRequest__Output } from './tern/node/v1alpha1/CreateGuestRequest.js';
import type { DeleteGuestRequest as _tern_node_v1alpha1_DeleteGuestRequest, DeleteGuestRequest__Output as _tern_node_v1alpha1_DeleteGuestRequest__Output } from './tern/node/v1alpha1/DeleteGuestRequest.js';
import type { DeleteGuestResponse as _tern_node_v1alpha1_DeleteGuestResponse, DeleteGuestResponse__Output as _tern_node_v1alpha1_DeleteGuestResponse__Output } from './tern/node/v1alpha1/DeleteGuestResponse.js';
import type { Disk as _tern_node_v1alpha1_Disk, Disk__Output as _tern_node_v1alpha1_Disk__Output } from './tern/node/v1alpha1/Disk.js';
import type { GetGuestRequest as _tern_node_v1alpha1_GetGuestRequest, GetGuestRequest__Output as _tern_node_v1alpha1_GetGuestRequest__Output } from './tern/node/v1alpha1/GetGuestRequest.js';
import type { GetNodeInfoRequest as _tern_node_v1alpha1_GetNodeInfoRequest, GetNodeInfoRequest__Output as _tern_node_v1alpha1_GetNodeInfoRequest__Output } from './tern/node/v1alpha1/GetNodeInfoRequest.js';
import type { Guest as _tern_node_v1alpha1_Guest, Guest__Output as _tern_node_v1alpha1_Guest__Output } from './tern/node/v1alpha1/Guest.js';
import type { GuestControlClient as _tern_node_v1alpha1_GuestControlClient, GuestControlDefinition as _tern_node_v1alpha1_GuestControlDefinition } from './tern/node/v1alpha1/GuestControl.js';
import type { GuestEvent as _tern_node_v1alpha1_GuestEvent, GuestEvent__Output as _tern_node_v1alpha1_GuestEvent__Output } from './tern/node/v1alpha1/GuestEvent.js';
import type { GuestSpec as _tern_node_v1alpha1_GuestSpec, GuestSpec__Output as _tern_node_v1alpha1_GuestSpec__Output } from './tern/node/v1alpha1/GuestSpec.js';
import type { KernelBoot as _tern_node_v1alpha1_KernelBoot, KernelBoot__Output as _tern_node_v1alpha1_KernelBoot__Output } from './tern/node/v1alpha1/KernelBoot.js';
import type { ListGuestsRequest as _tern_node_v1alpha1_ListGuestsRequest, ListGuestsRequest__Output as _tern_node_v1alpha1_ListGuestsRequest__Output } from './tern/node/v1alpha1/ListGuestsRequest.js';
import type { ListGuestsResponse as _tern_node_v1alpha1_ListGuestsResponse, ListGuestsResponse__Output as _tern_node_v1alpha1_ListGuestsResponse__Output } from './tern/node/v1alpha1/ListGuestsResponse.js';
import type { LocalDiskImage as _tern_node_v1alpha1_LocalDiskImage, LocalDiskImage__Output as _tern_node_v1alpha1_LocalDiskImage__Output } from './tern/node/v1alpha1/LocalDiskImage.js';
import type { NetworkInfo as _tern_node_v1alpha1_NetworkInfo, NetworkInfo__Output as _tern_node_v1alpha1_NetworkInfo__Output } from './tern/node/v1alpha1/NetworkInfo.js';
import type { Nic as _tern_node_v1alpha1_Nic, Nic__Output as _tern_node_v1alpha1_Nic__Output } from './tern/node/v1alpha1/Nic.js';
import type { NicAttachment as _tern_node_v1alpha1_NicAttachment, NicAttachment__Output as _tern_node_v1alpha1_NicAttachment__Output } from './tern/node/v1alpha1/NicAttachment.js';
import type { NodeInfo as _tern_node_v1alpha1_NodeInfo, NodeInfo__Output as _tern_node_v1alpha1_NodeInfo__Output } from './tern/node/v1alpha1/NodeInfo.js';
import type { Resources as _tern_node_v1alpha1_Resources, Resources__Output as _tern_node_v1alpha1_Resources__Output } from './tern/node/v1alpha1/Resources.js';
import type { StartGuestRequest as _tern_node_v1alpha1_StartGuestRequest, StartGuestRequest__Output as _tern_node_v1alpha1_StartGuestRequest__Output } from './tern/node/v1alpha1/StartGuestRequest.js';
import type { StopGuestRequest as _tern_node_v1alpha1_StopGuestRequest, StopGuestRequest__Output as _tern_node_v1alpha1_StopGuestRequest__Output } from './tern/node/v1alpha1/StopGuestRequest.js';
import type { TapBackend as _tern_node_v1alpha1_TapBackend, TapBackend__Output as _tern_node_v1alpha1_TapBackend__Output } from './tern/node/v1alpha1/TapBackend.js';
import type { UserModeBackend as _tern_node_v1alpha1_UserModeBackend, UserModeBackend__Output as _tern_node_v1alpha1_UserModeBackend__Output } from './tern/node/v1alpha1/UserModeBackend.js';
import type { WatchGuestsRequest as _tern_node_v1alpha1_WatchGuestsRequest, WatchGuestsRequest__Output as _tern_node_v1alpha1_WatchGuestsRequest__Output } from './tern/node/v1alpha1/WatchGuestsRequest.js';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  tern: {
    node: {
      v1alpha1: {
        Accelerator: EnumTypeDefinition
        ConsoleInput: MessageTypeDefinition<_tern_node_v1alpha1_ConsoleInput, _tern_node_v1alpha1_ConsoleInput__Output>
        ConsoleOpen: MessageTypeDefinition<_tern_node_v1alpha1_ConsoleOpen, _tern_node_v1alpha1_ConsoleOpen__Output>
        ConsoleOutput: MessageTypeDefinition<_tern_node_v1alpha1_ConsoleOutput, _tern_node_v1alpha1_ConsoleOutput__Output>
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
        GetNodeInfoRequest: MessageTypeDefinition<_tern_node_v1alpha1_GetNodeInfoRequest, _tern_node_v1alpha1_GetNodeInfoRequest__Output>
        Guest: MessageTypeDefinition<_tern_node_v1alpha1_Guest, _tern_node_v1alpha1_Guest__Output>
        GuestControl: SubtypeConstructor<typeof grpc.Client, _tern_node_v1alpha1_GuestControlClient> & { service: _tern_node_v1alpha1_GuestControlDefinition }
        GuestEvent: MessageTypeDefinition<_tern_node_v1alpha1_GuestEvent, _tern_node_v1alpha1_GuestEvent__Output>
        GuestPhase: EnumTypeDefinition
        GuestSpec: MessageTypeDefinition<_tern_node_v1alpha1_GuestSpec, _tern_node_v1alpha1_GuestSpec__Output>
        KernelBoot: MessageTypeDefinition<_tern_node_v1alpha1_KernelBoot, _tern_node_v1alpha1_KernelBoot__Output>
        ListGuestsRequest: MessageTypeDefinition<_tern_node_v1alpha1_ListGuestsRequest, _tern_node_v1alpha1_ListGuestsRequest__Output>
        ListGuestsResponse: MessageTypeDefinition<_tern_node_v1alpha1_ListGuestsResponse, _tern_node_v1alpha1_ListGuestsResponse__Output>
        LocalDiskImage: MessageTypeDefinition<_tern_node_v1alpha1_LocalDiskImage, _tern_node_v1alpha1_LocalDiskImage__Output>
        NetworkInfo: MessageTypeDefinition<_tern_node_v1alpha1_NetworkInfo, _tern_node_v1alpha1_NetworkInfo__Output>
        NetworkMode: EnumTypeDefinition
        Nic: MessageTypeDefinition<_tern_node_v1alpha1_Nic, _tern_node_v1alpha1_Nic__Output>
        NicAttachment: MessageTypeDefinition<_tern_node_v1alpha1_NicAttachment, _tern_node_v1alpha1_NicAttachment__Output>
        NodeInfo: MessageTypeDefinition<_tern_node_v1alpha1_NodeInfo, _tern_node_v1alpha1_NodeInfo__Output>
        Resources: MessageTypeDefinition<_tern_node_v1alpha1_Resources, _tern_node_v1alpha1_Resources__Output>
        StartGuestRequest: MessageTypeDefinition<_tern_node_v1alpha1_StartGuestRequest, _tern_node_v1alpha1_StartGuestRequest__Output>
        StopGuestRequest: MessageTypeDefinition<_tern_node_v1alpha1_StopGuestRequest, _tern_node_v1alpha1_StopGuestRequest__Output>
        TapBackend: MessageTypeDefinition<_tern_node_v1alpha1_TapBackend, _tern_node_v1alpha1_TapBackend__Output>
        UserModeBackend: MessageTypeDefinition<_tern_node_v1alpha1_UserModeBackend, _tern_node_v1alpha1_UserModeBackend__Output>
        WatchGuestsRequest: MessageTypeDefinition<_tern_node_v1alpha1_WatchGuestsRequest, _tern_node_v1alpha1_WatchGuestsRequest__Output>
      }
    }
  }
}

