import { forgetGuestMacs } from './fdb.js';

it("deletes each MAC's entry on its tap, lowercased; a missing entry or tap is nothing to forget", async () => {
  const calls: string[][] = [];
  const problems = await forgetGuestMacs(
    [
      { ifname: 'tt0', mac: '52:54:00:AA:00:01' },
      { ifname: 'tt1', mac: '52:54:00:aa:00:02' },
      { ifname: 'gone', mac: '52:54:00:aa:00:03' },
    ],
    async (args) => {
      calls.push(args);
      if (args[4] === 'tt1')
        throw Object.assign(new Error('Command failed'), {
          stderr: 'RTNETLINK answers: No such file or directory',
        });
      if (args[4] === 'gone')
        throw Object.assign(new Error('Command failed'), { stderr: 'Cannot find device "gone"' });
    },
  );
  expect(problems).toEqual([]);
  expect(calls).toContainEqual(['fdb', 'del', '52:54:00:aa:00:01', 'dev', 'tt0', 'master']);
  expect(calls).toHaveLength(3);
});

it('reports what it could not forget, without throwing', async () => {
  const problems = await forgetGuestMacs([{ ifname: 'tt0', mac: '52:54:00:aa:00:01' }], async () => {
    throw Object.assign(new Error('Command failed'), {
      stderr: 'RTNETLINK answers: Operation not permitted',
    });
  });
  expect(problems).toHaveLength(1);
  expect(problems[0]).toMatch(/52:54:00:aa:00:01 on tt0: .*Operation not permitted/);
});
