import { isValidBridgeName, tapName } from './guest-network.js';

describe('tapName', () => {
  it('fits IFNAMSIZ and is stable for a node and guest', () => {
    const name = tapName('node-a', 'vm01');
    expect(name).toHaveLength(15);
    expect(name).toMatch(/^tt[0-9a-f]{13}$/);
    expect(tapName('node-a', 'vm01')).toBe(name);
  });

  it('differs between nodes sharing a namespace and between guests', () => {
    expect(tapName('node-a', 'vm01')).not.toBe(tapName('node-b', 'vm01'));
    expect(tapName('node-a', 'vm01')).not.toBe(tapName('node-a', 'vm02'));
  });
});

describe('isValidBridgeName', () => {
  it.each(['tern0', 'br-node_a.1'])('accepts %s', (name) => expect(isValidBridgeName(name)).toBe(true));
  it.each(['', 'a'.repeat(16), 'br0;reboot', 'br 0', '-br', 'br/0'])('rejects %j', (name) =>
    expect(isValidBridgeName(name)).toBe(false),
  );
});
