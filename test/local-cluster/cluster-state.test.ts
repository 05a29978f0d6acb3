import {
  checkClusterName,
  hostBridgeName,
  hostVethName,
  netnsName,
  nodeAddress,
  NODE_BRIDGE,
  NODE_UPLINK,
} from './cluster-state.js';

const IFNAMSIZ = 15;

test('the longest cluster name still gives interface names the kernel accepts', () => {
  const name = checkClusterName('abcdef');
  for (const link of [hostBridgeName(name), hostVethName(name, 9), NODE_BRIDGE, NODE_UPLINK]) {
    expect(link.length).toBeLessThanOrEqual(IFNAMSIZ);
  }
});

test('cluster names that would not fit an interface name, or start with a digit, are refused', () => {
  for (const bad of ['abcdefg', '1abc', 'a-b', '', 'Abc'])
    expect(() => checkClusterName(bad)).toThrow(/cluster name/);
});

test('names and addresses are derived from the cluster name and the node index alone', () => {
  expect(netnsName('local', 'node-a')).toBe('tern-local-node-a');
  expect(hostBridgeName('local')).toBe('tb-local');
  expect(hostVethName('local', 1)).toBe('tv-local-1');
  expect(nodeAddress('10.218.7', 0)).toBe('10.218.7.11');
  expect(nodeAddress('10.218.7', 1)).toBe('10.218.7.12');
});
