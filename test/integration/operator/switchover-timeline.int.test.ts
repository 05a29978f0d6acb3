// The switchover timeline (Migration status.switchover) end to end: the real operator process, a real
// kube-apiserver and two real daemon processes whose guests have taps on a bridge of their own (so the target can
// see the guest's first frame), migrating a busy test guest back and forth. Each migration's steps must all be
// there, in order on the operator's clock within the clocks' error bounds, and agree with QEMU's downtime and the
// operator's guestGapMs. The test prints each timeline and, at the end, the distribution of each step
// (TERN_SWITCHOVER_RUNS migrations, default 2).
import type { Migration, SwitchoverStepName, VirtualMachine } from '../../../crds/index.js';
import { testGuestVm } from '../../fixtures/test-guest.js';
import { eventually, verifyGuest } from '../../harness/operator-cluster.js';
import { twoNodeCluster } from '../../harness/two-node-cluster.js';

const NODES = ['node-a', 'node-b'] as const;
type NodeName = (typeof NODES)[number];
const VM = 'svm';
const RUNS = Number(process.env.TERN_SWITCHOVER_RUNS ?? 2);

/** The steps in the order they must happen (SourceContinued is absent from the check: it has no later bound). */
const ORDER: SwitchoverStepName[] = [
  'SourcePaused',
  'SourceQuiescing',
  'ContinueSent',
  'SourceContinued',
  'TargetLoaded',
  'SourceCompleted',
  'OutcomeSent',
  'OutcomeReceived',
  'OwnershipRecorded',
  'ResumeRequested',
  'TargetResumed',
  'FirstFrame',
];

// Taps on a bridge of each node's own: the target sees the guest's first frame.
const cluster = twoNodeCluster({
  name: 'switchover-timeline',
  qemuUser: true,
  network: 'bridge',
  operatorArgs: ['--migration-progress-interval-ms', '500'],
});
const { apply, getJson } = cluster.kubectl;
const stateDir = (node: NodeName) => cluster.stateDir(node);
const getVm = () => getJson<VirtualMachine>('virtualmachine', VM);
const other = (node: NodeName): NodeName => (node === 'node-a' ? 'node-b' : 'node-a');

beforeAll(async () => {
  await cluster.start();
  // A busy guest: 64 MiB working set, 5000 pages dirtied a second.
  await apply(testGuestVm(VM, cluster.images, ['tern.wss_mib=64', 'tern.dirty_pps=5000']));
  const vm = await cluster.runningVm(VM);
  expect((await verifyGuest(stateDir(vm.status!.node as NodeName), VM)).ok).toBe(true);
}, 240_000);

afterAll(() => cluster.stop());

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};

it(
  `a busy guest's switchovers (${RUNS}): every step on the operator's clock, in order, consistent with QEMU's downtime and guestGapMs`,
  async () => {
    const offsets = new Map<SwitchoverStepName | 'ResumeAcknowledged', number[]>();
    const qemu: number[] = [];
    const gaps: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const from = (await getVm()).status!.node as NodeName;
      const name = `sw-${run}`;
      await apply({
        apiVersion: 'tern.dev/v1alpha1',
        kind: 'Migration',
        metadata: { name, namespace: 'default' },
        spec: { vmName: VM, targetNode: other(from) },
      });
      const done = await eventually(
        `${name} finished`,
        async () => {
          const migration = await getJson<Migration>('migration', name);
          return ['Succeeded', 'Failed', 'Aborted'].includes(migration.status?.phase ?? '')
            ? migration
            : undefined;
        },
        180_000,
      );
      expect(done.status?.phase).toBe('Succeeded');
      const timeline = done.status!.switchover!;
      expect(timeline).toBeDefined();
      const at = new Map(timeline.steps.map((step) => [step.step, step.offsetMs]));
      console.log(
        `${name} (${from} → ${other(from)}): QEMU downtime ${done.status?.downtime?.qemuMs} ms, guestGap ` +
          `${done.status?.downtime?.guestGapMs} ms; clocks ` +
          timeline.clocks.map((c) => `${c.node} ${c.offsetMs}±${c.errorBoundMs} ms`).join(', ') +
          `; first frame resolution ${timeline.firstFrameResolutionMs} ms; frames before the resume ${timeline.framesBeforeResume ?? 0}\n  ` +
          timeline.steps.map((step) => `${step.step} +${step.offsetMs}`).join('\n  '),
      );
      expect(timeline.note).toBeUndefined();
      for (const step of [...ORDER, 'ResumeAcknowledged'] as const) expect(at.get(step)).toBeDefined();
      // Both daemons' offsets were measured (the nodes share this host's clock: each offset is within its bound).
      expect(timeline.clocks.map((c) => c.node).sort()).toEqual([...NODES]);
      for (const clock of timeline.clocks) {
        expect(clock.errorBoundMs).toBeLessThan(50);
        expect(Math.abs(clock.offsetMs)).toBeLessThanOrEqual(clock.errorBoundMs + 0.01);
      }
      const slack = timeline.clocks.reduce((sum, c) => sum + c.errorBoundMs, 0) + 0.02;
      for (let i = 1; i < ORDER.length; i++) {
        const [before, after] = [at.get(ORDER[i - 1]!)!, at.get(ORDER[i]!)!];
        if (after < before - slack)
          throw new Error(`${ORDER[i]} (+${after}) before ${ORDER[i - 1]} (+${before})`);
      }
      expect(at.get('ResumeAcknowledged')!).toBeGreaterThanOrEqual(at.get('TargetResumed')! - slack);
      // QEMU's downtime runs from the moment it begins to stop the vCPUs (STOP comes once they all stopped, which
      // takes a while on a busy TCG host) to its completion, all on the source's clock; QEMU rounds to ms.
      const qemuMs = done.status!.downtime!.qemuMs!;
      expect(at.get('SourceCompleted')!).toBeLessThanOrEqual(qemuMs + 1);
      // The operator asked the target to steer the guest's frames when it saw the pause (SteerFrames), and it did
      // while the guest was paused (a call after the resume changes nothing and stamps nothing).
      expect(at.get('FramesSteered')).toBeDefined();
      expect(at.get('FramesSteered')!).toBeLessThanOrEqual(at.get('TargetResumed')! + slack);
      // No frame left the target's tap while the guest was paused there.
      expect(timeline.framesBeforeResume ?? 0).toBe(0);
      // The operator's gap starts when it hears of the pause, after the pause itself, and ends at ResumeAcknowledged.
      const gap = done.status!.downtime!.guestGapMs!;
      expect(gap).toBeLessThanOrEqual(at.get('ResumeAcknowledged')! + slack + 1);
      expect(gap).toBeGreaterThanOrEqual(at.get('ResumeAcknowledged')! - at.get('OutcomeReceived')!);
      for (const [step, offset] of at) offsets.set(step, [...(offsets.get(step) ?? []), offset]);
      qemu.push(qemuMs);
      gaps.push(gap);
      expect((await verifyGuest(stateDir(other(from)), VM)).ok).toBe(true);
    }
    const row = (label: string, values: number[]) =>
      `${label.padEnd(20)} p50 ${quantile(values, 0.5).toFixed(2).padStart(8)}  min ${Math.min(...values)
        .toFixed(2)
        .padStart(8)}  max ${Math.max(...values)
        .toFixed(2)
        .padStart(8)}`;
    console.log(
      [
        `switchover steps over ${RUNS} migrations, ms after SourcePaused:`,
        ...[...offsets].map(([step, values]) => row(step, values)),
        row('qemu downtime', qemu),
        row('guestGapMs', gaps),
      ].join('\n'),
    );
  },
  60_000 + RUNS * 150_000,
);
