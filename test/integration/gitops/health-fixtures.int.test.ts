// The stored fixtures (objects taken from real runs by kstatus.int.test.ts) through the real kstatus library
// (the checker hack/build-k8s.sh builds from sigs.k8s.io/cli-utils) and through the Argo CD health checks
// (argocd/resource_customizations/tern.dev/<Kind>/health.lua) in a real Lua 5.1 interpreter. No cluster needed.
import { argoHealthOf, fixtureExpectations, kstatusOf, readFixture } from '../../harness/gitops.js';

const expectations = await fixtureExpectations();

describe.each(Object.entries(expectations))('%s', (fixture, expected) => {
  it(`is ${expected.kstatus} for kstatus`, async () => {
    const [result] = await kstatusOf([await readFixture(fixture)]);
    expect(result!.status).toBe(expected.kstatus);
    if (expected.says) expect(result!.message).toContain(expected.says);
  });

  it(`is ${expected.argo} for Argo CD`, async () => {
    const health = await argoHealthOf(await readFixture(fixture));
    expect(health.status).toBe(expected.argo);
    if (expected.says) expect(health.message).toContain(expected.says);
  });
});

it('a generation the operator has not observed is Progressing for Argo CD and InProgress for kstatus', async () => {
  const vm = await readFixture('virtualmachine-running');
  const edited = { ...vm, metadata: { ...vm.metadata, generation: Number(vm.metadata.generation) + 1 } };
  expect((await argoHealthOf(edited)).status).toBe('Progressing');
  expect((await kstatusOf([edited]))[0]!.status).toBe('InProgress');
});
