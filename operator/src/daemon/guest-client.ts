// Promise-shaped calls to one daemon's control API, each with a deadline. grpc-js reconnects the channel by
// itself (with backoff) after the daemon went away; a call made while it is down fails fast with UNAVAILABLE and
// the reconciler retries it.
import * as grpc from '@grpc/grpc-js';
import {
  fencingMetadata,
  isGrpcError,
  UNFENCED_TOKEN,
  type ConsoleInput,
  type ConsoleOutput__Output,
  type GuestControlClient,
  type GuestSpec,
  type Guest__Output,
  type ListGuestsResponse__Output,
} from '../../../proto/index.js';
import { DaemonApiClient } from './daemon-api-client.js';

export class DaemonGuestClient extends DaemonApiClient<GuestControlClient> {
  createGuest(spec: GuestSpec): Promise<Guest__Output> {
    return this.unary((done, call) => this.client.createGuest({ spec }, call.metadata, call.options, done));
  }

  /** The guest, or undefined when the daemon has no guest of that name. */
  async getGuest(name: string): Promise<Guest__Output | undefined> {
    try {
      return await this.unary((done, call) =>
        this.client.getGuest({ name }, call.metadata, call.options, done),
      );
    } catch (error) {
      if (isGrpcError(error, grpc.status.NOT_FOUND)) return undefined;
      throw error;
    }
  }

  /** Every guest the daemon holds. */
  async listGuests(): Promise<Guest__Output[]> {
    const response = await this.unary<ListGuestsResponse__Output>((done, call) =>
      this.client.listGuests({}, call.metadata, call.options, done),
    );
    return response.guests;
  }

  /** Graceful stop: the daemon powers the guest down and kills QEMU after timeoutMs. */
  stopGuest(name: string, timeoutMs: number): Promise<Guest__Output> {
    return this.unary(
      (done, call) => this.client.stopGuest({ name, timeoutMs }, call.metadata, call.options, done),
      timeoutMs,
    );
  }

  /** Stops (daemon's default timeout) and removes the guest; a guest that is already gone is fine. */
  async deleteGuest(name: string, stopTimeoutMs: number): Promise<void> {
    try {
      await this.unary(
        (done, call) => this.client.deleteGuest({ name }, call.metadata, call.options, done),
        stopTimeoutMs,
      );
    } catch (error) {
      if (!isGrpcError(error, grpc.status.NOT_FOUND)) throw error;
    }
  }

  /**
   * A console session on the guest (AttachConsole). It only reads and forwards keystrokes, so it carries the unfenced
   * token: any operator replica may serve consoles, not only the leader.
   */
  attachConsole(): grpc.ClientDuplexStream<ConsoleInput, ConsoleOutput__Output> {
    return this.client.attachConsole(fencingMetadata(UNFENCED_TOKEN));
  }
}
