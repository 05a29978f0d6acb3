// Prometheus metrics of the controller core, registered once per registry and labelled per controller.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { QueueMetrics } from './queue.js';

const byRegistry = new WeakMap<Registry, ControllerMetrics>();

export class ControllerMetrics {
  readonly reconcileTotal: Counter<'controller' | 'result'>;
  readonly reconcileErrors: Counter<'controller'>;
  readonly reconcileSeconds: Histogram<'controller'>;
  readonly activeWorkers: Gauge<'controller'>;
  readonly queueDepth: Gauge<'name'>;
  readonly queueAdds: Counter<'name'>;
  readonly queueRetries: Counter<'name'>;

  private constructor(registry: Registry) {
    const registers = [registry];
    this.reconcileTotal = new Counter({
      name: 'tern_controller_reconcile_total',
      help: 'Reconciliations by result (success, requeue_after, error, terminal_error).',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileErrors = new Counter({
      name: 'tern_controller_reconcile_errors_total',
      help: 'Reconciliations that failed.',
      labelNames: ['controller'],
      registers,
    });
    this.reconcileSeconds = new Histogram({
      name: 'tern_controller_reconcile_time_seconds',
      help: 'Duration of one reconciliation.',
      labelNames: ['controller'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    this.activeWorkers = new Gauge({
      name: 'tern_controller_active_workers',
      help: 'Workers currently running a reconciliation.',
      labelNames: ['controller'],
      registers,
    });
    this.queueDepth = new Gauge({
      name: 'tern_workqueue_depth',
      help: 'Keys waiting in the work queue.',
      labelNames: ['name'],
      registers,
    });
    this.queueAdds = new Counter({
      name: 'tern_workqueue_adds_total',
      help: 'Keys added to the work queue (after de-duplication).',
      labelNames: ['name'],
      registers,
    });
    this.queueRetries = new Counter({
      name: 'tern_workqueue_retries_total',
      help: 'Rate-limited re-adds after a failed reconciliation.',
      labelNames: ['name'],
      registers,
    });
  }

  static for(registry: Registry): ControllerMetrics {
    let metrics = byRegistry.get(registry);
    if (!metrics) {
      metrics = new ControllerMetrics(registry);
      byRegistry.set(registry, metrics);
    }
    return metrics;
  }

  queue(name: string): QueueMetrics {
    return {
      depth: (length) => this.queueDepth.set({ name }, length),
      added: () => this.queueAdds.inc({ name }),
      retried: () => this.queueRetries.inc({ name }),
    };
  }
}
