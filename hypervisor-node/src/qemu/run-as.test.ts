import { qemuIdentityArgs, resolveQemuUser, sandboxOption } from './run-as.js';

describe('QEMU sandbox and user', () => {
  test('a QEMU that keeps root may not change ids; one that drops to a user must call setuid once', () => {
    expect(sandboxOption(undefined)).toBe(
      'on,obsolete=deny,spawn=deny,resourcecontrol=deny,elevateprivileges=deny',
    );
    const user = { uid: 64400, gid: 64401, configured: '64400:64401' };
    expect(sandboxOption(user)).not.toContain('elevateprivileges');
    expect(qemuIdentityArgs(user)).toEqual([
      '-sandbox',
      'on,obsolete=deny,spawn=deny,resourcecontrol=deny',
      '-run-with',
      'user=64400:64401',
    ]);
    expect(qemuIdentityArgs(undefined)).not.toContain('-run-with');
  });

  test('uid:gid needs no passwd entry; root and malformed users are refused', async () => {
    await expect(resolveQemuUser('64400:64401')).resolves.toEqual({
      uid: 64400,
      gid: 64401,
      configured: '64400:64401',
    });
    await expect(resolveQemuUser('0:0')).rejects.toThrow('--qemu-user 0:0: is root (uid 0)');
    await expect(resolveQemuUser('1:2:3')).rejects.toThrow('expected a user name or uid:gid');
    await expect(resolveQemuUser('qemu,x=y')).rejects.toThrow('expected a user name or uid:gid');
    await expect(resolveQemuUser('99999999999:1')).rejects.toThrow('expected a user name or uid:gid');
    await expect(resolveQemuUser('4294967295:1')).rejects.toThrow('out of range');
  });
});
