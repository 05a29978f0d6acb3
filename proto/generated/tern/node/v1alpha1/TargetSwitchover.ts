// Original file: proto/tern/node/v1alpha1/migration.proto

import type { Long } from '@grpc/proto-loader';

/**
 * The switchover's steps the target sees, each on this node's wall clock in microseconds since the epoch (0: not
 * known). QMP's event timestamps where QEMU gives one.
 */
export interface TargetSwitchover {
  /**
   * QEMU's incoming migration completed (QMP MIGRATION `completed`): every byte arrived and the device state is
   * loaded; the guest stays paused.
   */
  'loadedAtUnixUs'?: (number | string | Long);
  /**
   * ResumeTarget arrived.
   */
  'resumeRequestedAtUnixUs'?: (number | string | Long);
  /**
   * QEMU runs the guest's vCPUs again (QMP RESUME after `cont`).
   */
  'resumedAtUnixUs'?: (number | string | Long);
  /**
   * The first frame from the guest's NIC (QEMU's self-announce, or the guest's own) after the resume, seen on its
   * tap: the tap's received-packets counter is read about every millisecond for up to 2 s after `cont`, and this
   * is the first read that saw it grow; the frame came after the read before it (first_frame_resolution_us
   * earlier).
   */
  'firstFrameAtUnixUs'?: (number | string | Long);
  'firstFrameResolutionUs'?: (number);
  /**
   * Why there is no first frame: the guest has no tap (user-mode networking), nothing came within the window, or
   * the window is still open (first_frame_pending).
   */
  'firstFrameNote'?: (string);
  'firstFramePending'?: (boolean);
  /**
   * Frames the guest's NIC had sent on its tap before `cont` (the counter's baseline), while the guest was paused
   * here.
   */
  'framesBeforeResume'?: (number | string | Long);
  /**
   * SteerFrames made the network send the guest's frames here (its RARPs sent).
   */
  'framesSteeredAtUnixUs'?: (number | string | Long);
}

/**
 * The switchover's steps the target sees, each on this node's wall clock in microseconds since the epoch (0: not
 * known). QMP's event timestamps where QEMU gives one.
 */
export interface TargetSwitchover__Output {
  /**
   * QEMU's incoming migration completed (QMP MIGRATION `completed`): every byte arrived and the device state is
   * loaded; the guest stays paused.
   */
  'loadedAtUnixUs': (number);
  /**
   * ResumeTarget arrived.
   */
  'resumeRequestedAtUnixUs': (number);
  /**
   * QEMU runs the guest's vCPUs again (QMP RESUME after `cont`).
   */
  'resumedAtUnixUs': (number);
  /**
   * The first frame from the guest's NIC (QEMU's self-announce, or the guest's own) after the resume, seen on its
   * tap: the tap's received-packets counter is read about every millisecond for up to 2 s after `cont`, and this
   * is the first read that saw it grow; the frame came after the read before it (first_frame_resolution_us
   * earlier).
   */
  'firstFrameAtUnixUs': (number);
  'firstFrameResolutionUs': (number);
  /**
   * Why there is no first frame: the guest has no tap (user-mode networking), nothing came within the window, or
   * the window is still open (first_frame_pending).
   */
  'firstFrameNote': (string);
  'firstFramePending': (boolean);
  /**
   * Frames the guest's NIC had sent on its tap before `cont` (the counter's baseline), while the guest was paused
   * here.
   */
  'framesBeforeResume': (number);
  /**
   * SteerFrames made the network send the guest's frames here (its RARPs sent).
   */
  'framesSteeredAtUnixUs': (number);
}
