// The JSON Schema of helm/tern/values.yaml (helm/tern/values.schema.json, written by helm/generate.ts). Helm checks
// the merged values against it on install, upgrade, lint and template, so a misspelt key or a wrong type fails
// there with the key's path, instead of being ignored. Every object with fixed keys refuses other keys; free-form
// maps (labels, annotations, nodeSelector, affinity) are typed as such. Enums come from the programs' own lists.
import { LOG_LEVELS } from '../cmdline/index.js';
import { ACCELERATORS, NETWORK_MODES } from '../crds/index.js';
import { DOWNTIME_BUCKETS } from '../operator/src/migration/metrics.js';

type Schema = { [key: string]: unknown };

const object = (properties: Record<string, Schema>, description?: string): Schema => ({
  type: 'object',
  ...(description ? { description } : {}),
  additionalProperties: false,
  properties,
});
const string = (more: Schema = {}): Schema => ({ type: 'string', ...more });
const integer = (minimum: number, maximum?: number): Schema => ({
  type: 'integer',
  minimum,
  ...(maximum === undefined ? {} : { maximum }),
});
const boolean: Schema = { type: 'boolean' };
const enumOf = (values: readonly (string | number)[], description?: string): Schema => ({
  enum: [...values],
  ...(description ? { description } : {}),
});
const array = (items: Schema, more: Schema = {}): Schema => ({ type: 'array', items, ...more });
const stringMap = (description?: string): Schema => ({
  type: 'object',
  ...(description ? { description } : {}),
  additionalProperties: { type: 'string' },
});

const port = integer(1, 65535);
const absolutePath = string({ pattern: '^/' });
const absolutePathOrEmpty = string({ pattern: '^(/.*)?$' });
/** A Kubernetes resource quantity (100m, 1.5, 512Mi), as a number or a string. */
const quantity: Schema = {
  type: ['string', 'number'],
  pattern: '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$',
};
const resources = object({
  requests: { type: 'object', additionalProperties: quantity },
  limits: { type: 'object', additionalProperties: quantity },
  claims: array({ type: 'object' }),
});
const toleration = object({
  key: string(),
  operator: enumOf(['Exists', 'Equal']),
  value: string(),
  effect: enumOf(['', 'NoSchedule', 'PreferNoSchedule', 'NoExecute']),
  tolerationSeconds: { type: 'integer' },
});
const affinity = object({
  nodeAffinity: { type: 'object' },
  podAffinity: { type: 'object' },
  podAntiAffinity: { type: 'object' },
});
const serviceAccount = object({ name: string(), annotations: stringMap() });
const command = array(string({ minLength: 1 }), { minItems: 1 });
const logLevel = enumOf(LOG_LEVELS);
/** A Prometheus duration (30s, 5m, 1h30m). */
const duration = string({ pattern: '^([0-9]+(ms|s|m|h|d|w|y))+$' });
const severity = enumOf(['critical', 'warning', 'info']);
const scrape = object({
  enabled: boolean,
  interval: duration,
  scrapeTimeout: duration,
  labels: stringMap('Labels your Prometheus selects monitors by.'),
});

export const valuesSchema: Schema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  title: 'Values of the tern chart',
  ...object({
    // Helm passes a parent chart's global values to a chart used as its dependency.
    global: { type: 'object' },
    crds: object({ install: boolean }),
    nameOverride: string(),
    fullnameOverride: string(),
    image: object({
      repository: string({ minLength: 1 }),
      tag: string(),
      // A manifest digest, or '' (name the image by its tag).
      digest: string({ pattern: '^(sha256:[0-9a-f]{64})?$' }),
      pullPolicy: enumOf(['Always', 'IfNotPresent', 'Never']),
    }),
    imagePullSecrets: array(object({ name: string({ minLength: 1 }) })),
    commonLabels: stringMap(),
    // '' keeps the in-cluster default (the kubernetes Service). A bare address or name (IPv6 without brackets, as
    // KUBERNETES_SERVICE_HOST has it): no scheme, no path.
    apiServer: object({ host: string({ pattern: '^[^/\\s\\[\\]]*$' }), port }),
    operator: object({
      replicas: integer(1),
      shutdownDelaySeconds: integer(0),
      command,
      serviceAccount,
      leaderElection: object({
        leaseName: string({ minLength: 1 }),
        leaseDurationSeconds: integer(3),
      }),
      metricsPort: port,
      tlsSecretName: string({ minLength: 1 }),
      maxMigrations: integer(1),
      maxOutboundMigrationsPerNode: integer(1),
      maxInboundMigrationsPerNode: integer(1),
      migrationHistoryLimit: integer(1),
      nodeLossMarginSeconds: integer(0),
      workers: integer(1),
      logLevel,
      // `kubectl tern console` (docs/console.md): the operator's TLS endpoint.
      console: object({
        enabled: boolean,
        port,
        tlsSecretName: string({ minLength: 1 }),
      }),
      // `kubectl drain` of a hypervisor node (docs/node-maintenance.md): guard pods and the eviction webhook.
      nodeMaintenance: object({
        enabled: boolean,
        guardImage: string({ minLength: 1 }),
        webhookPort: port,
        tlsSecretName: string({ minLength: 1 }),
      }),
      extraArgs: array(string()),
      resources,
      nodeSelector: stringMap(),
      tolerations: array(toleration),
      affinity,
      podAnnotations: stringMap(),
    }),
    hypervisorNode: object({
      nodeSelector: stringMap(),
      tolerations: array(toleration),
      command,
      serviceAccount,
      controlPort: port,
      metricsPort: port,
      stateDir: absolutePath,
      // Path segments, each may name the node as $(TERN_NODE_NAME) (kubelet fills it in).
      guestCgroup: string({
        pattern:
          '^(([A-Za-z0-9_.-]|\\$\\(TERN_NODE_NAME\\))+(/([A-Za-z0-9_.-]|\\$\\(TERN_NODE_NAME\\))+)*)?$',
      }),
      qemuUser: string({ pattern: '^([0-9]+:[0-9]+|[a-z_][a-z0-9_-]*)?$' }),
      imageRoot: absolutePathOrEmpty,
      sharedImageRoots: array(absolutePath),
      imagePathPolicy: boolean,
      accelerator: enumOf(['auto', ...ACCELERATORS]),
      network: enumOf(['auto', ...NETWORK_MODES]),
      bridge: string({ minLength: 1, maxLength: 15 }),
      reservedCpus: integer(0),
      reservedMemoryMiB: integer(0),
      leaseDurationSeconds: integer(1),
      heartbeatIntervalSeconds: integer(1),
      fenceAfterSeconds: integer(0),
      operatorIdentities: array(string({ minLength: 1 }), { minItems: 1 }),
      tlsSecretName: string({ minLength: 1 }),
      logLevel,
      extraArgs: array(string()),
      resources,
      podAnnotations: stringMap(),
      terminationGracePeriodSeconds: integer(0),
    }),
    // How each daemon gets its node certificate (docs/install.md "Node identities").
    nodeIdentity: object({
      source: enumOf(['secret', 'csr']),
      caSecretName: string({ minLength: 1 }),
      caConfigMapName: string({ minLength: 1 }),
      // The CSR API's floor for spec.expirationSeconds is 600.
      certificateLifetimeSeconds: integer(600),
    }),
    tests: object({
      enabled: boolean,
      timeoutSeconds: integer(1),
      resources,
    }),
    monitoring: object({
      serviceMonitor: scrape,
      podMonitor: scrape,
      prometheusRule: object({
        enabled: boolean,
        labels: stringMap('Labels your Prometheus selects rules by.'),
        nodeNotReadyFor: duration,
        // `helm --set` passes a decimal like 0.5 as a string: both spellings are accepted.
        downtimeTargetSeconds: enumOf(
          [...DOWNTIME_BUCKETS, ...DOWNTIME_BUCKETS.map(String)],
          'A bucket bound of tern_migration_downtime_seconds: the alert counts the migrations above it.',
        ),
        downtimeWindow: duration,
        failureWindow: duration,
        severity: object({
          nodeNotReady: severity,
          migrationFailed: severity,
          downtimeAboveTarget: severity,
          operatorAbsent: severity,
          reconcileErrors: severity,
        }),
      }),
      dashboard: object({
        enabled: boolean,
        namespace: string(),
        labels: stringMap('Labels Grafana’s dashboard sidecar selects ConfigMaps by.'),
        annotations: stringMap(),
      }),
    }),
  }),
};
