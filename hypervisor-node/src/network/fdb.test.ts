import { forgetGuestMacs, MacForgetter } from './fdb.js';

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

it('a MacForgetter started ahead writes the deletions when used and reads what failed from its stderr', async () => {
  const { spawn } = await import('node:child_process');
  let input = '';
  const forgetter = new MacForgetter(() => {
    const child = spawn(
      'sh',
      [
        '-c',
        'cat; echo "RTNETLINK answers: No such file or directory" >&2; echo "Command failed -:1" >&2; ' +
          'echo "RTNETLINK answers: Operation not permitted" >&2',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    child.stdout.on('data', (chunk: Buffer) => (input += chunk.toString()));
    return child;
  });
  const problems = await forgetter.forget([{ ifname: 'tt0', mac: '52:54:00:AA:00:01' }]);
  expect(input).toBe('fdb del 52:54:00:aa:00:01 dev tt0 master\n');
  expect(problems).toEqual(['RTNETLINK answers: Operation not permitted']);
  forgetter.close();
});

it('a MacForgetter whose command cannot run says so', async () => {
  const { spawn } = await import('node:child_process');
  const forgetter = new MacForgetter(() =>
    spawn('/nonexistent/bridge', [], { stdio: ['pipe', 'ignore', 'pipe'] }),
  );
  const problems = await forgetter.forget([{ ifname: 'tt0', mac: '52:54:00:aa:00:01' }]);
  expect(problems[0]).toMatch(/could not run/);
});
