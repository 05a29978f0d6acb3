// An Event recorder for core/v1 Events. Repeats of the same (object, type, reason, message) bump `count` and
// `lastTimestamp` on the existing Event instead of creating new ones, like client-go's EventCorrelator.
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { KubeClient } from './client.js';
import { isNotFound } from './errors.js';
import { boundEventMessage } from './messages.js';
import { metaTime } from './objects.js';
import { Events } from './resources.js';
import type { KubeObject } from './types.js';

export type EventType = 'Normal' | 'Warning';

export interface CoreEvent extends KubeObject {
  involvedObject: {
    apiVersion?: string;
    kind?: string;
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
  };
  reason: string;
  message: string;
  type: EventType;
  count: number;
  firstTimestamp: string;
  lastTimestamp: string;
  source: { component: string };
  reportingComponent: string;
  reportingInstance: string;
}

export interface EventRecorderOptions {
  /** e.g. 'tern-operator'; shown as the Event's source. */
  component: string;
  /** e.g. the pod name; identifies the replica that reported. */
  instance: string;
  logger?: Logger;
  now?: () => Date;
  /** How many distinct recent events are remembered for de-duplication. */
  cacheSize?: number;
}

interface Recorded {
  name: string;
  namespace: string;
  count: number;
}

export class EventRecorder {
  private readonly client: KubeClient;
  private readonly options: EventRecorderOptions;
  private readonly recent = new Map<string, Recorded>();

  constructor(client: KubeClient, options: EventRecorderOptions) {
    this.client = client;
    this.options = options;
  }

  /**
   * Records an Event about `object`. Never throws: an Event is a hint, its failure must not fail a reconcile.
   * The message is bounded first (boundEventMessage: one printable line, at most 1 KiB), whoever wrote it.
   */
  async record(object: KubeObject, type: EventType, reason: string, message: string): Promise<void> {
    try {
      await this.recordOrThrow(object, type, reason, boundEventMessage(message));
    } catch (err) {
      this.options.logger?.warn({ err, reason, object: object.metadata.name }, 'could not record event');
    }
  }

  private async recordOrThrow(
    object: KubeObject,
    type: EventType,
    reason: string,
    message: string,
  ): Promise<void> {
    const now = metaTime((this.options.now ?? (() => new Date()))());
    const { name, namespace, uid } = object.metadata;
    const dedupKey = [object.kind, namespace, name, uid, type, reason, message].join('\u0000');
    const previous = this.recent.get(dedupKey);
    if (previous) {
      try {
        const count = previous.count + 1;
        await this.client.patch(Events, previous.name, previous.namespace, {
          type: 'merge',
          body: { count, lastTimestamp: now },
        });
        this.remember(dedupKey, { ...previous, count });
        return;
      } catch (err) {
        if (!isNotFound(err)) throw err; // expired (events have a TTL): start over with a new Event
      }
    }
    const eventNamespace = namespace ?? 'default';
    const event: CoreEvent = {
      metadata: { name: `${name}.${randomBytes(8).toString('hex')}`, namespace: eventNamespace },
      involvedObject: {
        apiVersion: object.apiVersion,
        kind: object.kind,
        name,
        namespace,
        uid,
        resourceVersion: object.metadata.resourceVersion,
      },
      reason,
      message,
      type,
      count: 1,
      firstTimestamp: now,
      lastTimestamp: now,
      source: { component: this.options.component },
      reportingComponent: this.options.component,
      reportingInstance: this.options.instance,
    };
    const created = await this.client.create(Events, event);
    this.remember(dedupKey, { name: created.metadata.name!, namespace: eventNamespace, count: 1 });
  }

  private remember(key: string, recorded: Recorded): void {
    this.recent.delete(key); // re-insert: Map order is the LRU order
    this.recent.set(key, recorded);
    const limit = this.options.cacheSize ?? 4096;
    if (this.recent.size > limit) this.recent.delete(this.recent.keys().next().value!);
  }
}
