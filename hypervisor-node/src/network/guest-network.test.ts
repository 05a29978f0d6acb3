import { isValidBridgeName, tapMac, tapName, UserModeNetwork } from './guest-network.js';

describe('tapName', () => {
  it('fits IFNAMSIZ and is stable for a node, guest and NIC', () => {
    const name = tapName('node-a', 'vm01', 0);
    expect(name).toHaveLength(15);
    expect(name).toMatch(/^tt[0-9a-f]{13}$/);
    expect(tapName('node-a', 'vm01', 0)).toBe(name);
  });

  it('differs between nodes sharing a namespace, between guests and between NICs', () => {
    const names = new Set([
      tapName('node-a', 'vm01', 0),
      tapName('node-b', 'vm01', 0),
      tapName('node-a', 'vm02', 0),
      tapName('node-a', 'vm01', 1),
    ]);
    expect(names.size).toBe(4);
  });
});

describe('isValidBridgeName', () => {
  it.each(['tern0', 'br-node_a.1'])('accepts %s', (name) => expect(isValidBridgeName(name)).toBe(true));
  it.each(['', 'a'.repeat(16), 'br0;reboot', 'br 0', '-br', 'br/0'])('rejects %j', (name) =>
    expect(isValidBridgeName(name)).toBe(false),
  );
});

describe('UserModeNetwork', () => {
  it('forwards a distinct free loopback port to the guest port of each NIC', async () => {
    const nics = await new UserModeNetwork(7000).attach('vm01', 2);
    expect(nics).toHaveLength(2);
    for (const nic of nics) {
      expect(nic).toMatchObject({ kind: 'user', hostAddress: '127.0.0.1', guestPort: 7000 });
      expect(nic.kind === 'user' && nic.hostPort > 0).toBe(true);
    }
  });
});

describe('tapMac', () => {
  it('is a locally administered unicast MAC starting with FE, stable per tap', () => {
    const mac = tapMac(tapName('node-a', 'vm01', 0));
    expect(mac).toMatch(/^fe(:[0-9a-f]{2}){5}$/);
    expect(tapMac(tapName('node-a', 'vm01', 0))).toBe(mac);
    expect(tapMac(tapName('node-a', 'vm01', 1))).not.toBe(mac);
  });
});
