import { ApiException, CoordinationV1Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { KubeConfig } from '@kubernetes/client-node';
// A Lease's renewTime is a MicroTime: the apiserver parses exactly six fractional digits, and Date#toISOString
// gives three (client-node's own serializer therefore cannot write it; we send it inside a merge patch).
import { microTime } from '../../../kube/objects.js';

export interface NodeLeaseOptions {
  name: string;
  namespace: string;
  holderIdentity: string;
  leaseDurationSeconds: number;
  /** Set on every renewal, in the same write (e.g. the node's fence time, which must come with the renewal). */
  annotations?: Record<string, string>;
}

/**
 * The node's heartbeat: a coordination.k8s.io/v1 Lease whose renewTime the daemon keeps moving forward. A Lease
 * deleted by someone else (an admin, a namespace clean-up) is created again by the next renewal.
 */
export class NodeLease {
  private readonly api: CoordinationV1Api;
  private created = false;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: NodeLeaseOptions,
  ) {
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
  }

  async renew(now = new Date()): Promise<void> {
    try {
      await this.createOnceAndPatch(now);
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 404)) throw error;
      // The Lease was deleted since this daemon created it: create it again, once, within this renewal.
      this.created = false;
      await this.createOnceAndPatch(now);
    }
  }

  private async createOnceAndPatch(now: Date): Promise<void> {
    const { name, namespace, holderIdentity, leaseDurationSeconds } = this.options;
    const spec: Record<string, unknown> = { holderIdentity, leaseDurationSeconds, renewTime: microTime(now) };
    if (!this.created) {
      await this.createIfMissing();
      spec.acquireTime = microTime(now);
    }
    const body = this.options.annotations
      ? { metadata: { annotations: this.options.annotations }, spec }
      : { spec };
    await this.api.patchNamespacedLease(
      { name, namespace, body },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }

  private async createIfMissing(): Promise<void> {
    const { name, namespace, holderIdentity, leaseDurationSeconds } = this.options;
    try {
      await this.api.createNamespacedLease({
        namespace,
        body: { metadata: { name, namespace }, spec: { holderIdentity, leaseDurationSeconds } },
      });
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 409)) throw error;
    }
    this.created = true;
  }
}
