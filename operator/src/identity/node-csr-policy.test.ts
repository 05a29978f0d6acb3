import { generateKeyPairSync } from 'node:crypto';
import { createCertificateRequest, nodeUri } from '../../../pki/index.js';
import { decideNodeCsr, type NodeCsrSpec } from './node-csr-policy.js';

const DAEMONS = 'system:serviceaccount:tern-system:tern-hypervisor-node';
const policy = { daemonUsername: DAEMONS, operatorNames: ['tern-operator'], maxLifetimeSeconds: 86_400 };
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const addresses = (node: string) => (node === 'node-a' ? ['10.0.0.2'] : undefined);

function spec(
  o: {
    node?: string | null;
    username?: string;
    commonName?: string;
    dnsNames?: string[];
    uris?: string[];
    ips?: string[];
    usages?: string[];
    expirationSeconds?: number;
  } = {},
): NodeCsrSpec {
  const node = o.node === undefined ? 'node-a' : o.node;
  const names = {
    commonName: o.commonName ?? 'node-a',
    dnsNames: o.dnsNames ?? ['node-a'],
    uris: o.uris ?? [nodeUri('node-a')],
    ips: o.ips ?? [],
  };
  return {
    request: Buffer.from(createCertificateRequest(names, privateKey)).toString('base64'),
    signerName: 'tern.dev/hypervisor-node',
    username: o.username ?? DAEMONS,
    extra:
      node === null
        ? {}
        : {
            'authentication.kubernetes.io/node-name': [node],
            'authentication.kubernetes.io/pod-name': [`tern-hypervisor-node-${node}`],
          },
    usages: o.usages ?? ['digital signature', 'key encipherment', 'server auth'],
    ...(o.expirationSeconds !== undefined ? { expirationSeconds: o.expirationSeconds } : {}),
  };
}

test("a daemon's request for its own node's names is approved, for exactly those names and at most the longest lifetime", () => {
  const decision = decideNodeCsr(spec({ ips: ['10.0.0.2'], expirationSeconds: 999_999 }), policy, addresses);
  expect(decision).toMatchObject({
    approve: true,
    node: 'node-a',
    names: {
      commonName: 'node-a',
      dnsNames: ['node-a'],
      uris: ['spiffe://tern.dev/node/node-a'],
      ips: ['10.0.0.2'],
    },
    lifetimeSeconds: 86_400,
  });
  expect(decideNodeCsr(spec({ expirationSeconds: 3600 }), policy, addresses)).toMatchObject({
    lifetimeSeconds: 3600,
  });
});

test.each([
  [
    'another requester',
    spec({ username: 'system:serviceaccount:tern-system:default' }),
    /requested by system:serviceaccount:tern-system:default, not by the hypervisor-node daemons' ServiceAccount/,
  ],
  ['a token bound to no pod', spec({ node: null }), /names no node .*bound to its pod/],
  [
    "a pod on node-a asking for node-b's name",
    spec({ commonName: 'node-b', dnsNames: ['node-b'], uris: [nodeUri('node-b')] }),
    /pod tern-hypervisor-node-node-a on node node-a asked for subject CN=node-b; it may have only CN=node-a/,
  ],
  [
    'the operator identity as a URI',
    spec({ uris: ['spiffe://tern.dev/operator'] }),
    /asked for names DNS:node-a, URI:spiffe:\/\/tern.dev\/operator; it may have exactly DNS:node-a, URI:spiffe:\/\/tern.dev\/node\/node-a/,
  ],
  [
    'the operator identity as a node name',
    spec({
      node: 'tern-operator',
      commonName: 'tern-operator',
      dnsNames: ['tern-operator'],
      uris: [nodeUri('tern-operator')],
    }),
    /node tern-operator has the name of the operator's identity/,
  ],
  [
    'a wildcard DNS name',
    spec({ dnsNames: ['node-a', '*.nodes'] }),
    /asked for names DNS:node-a, DNS:\*.nodes/,
  ],
  ['an extra DNS name', spec({ dnsNames: ['node-a', 'node-b'] }), /it may have exactly DNS:node-a/],
  ['no URI', spec({ uris: [] }), /it may have exactly/],
  [
    "another node's address",
    spec({ ips: ['10.0.0.3'] }),
    /IP addresses 10.0.0.3, which are not Node node-a's \(10.0.0.2\)/,
  ],
  [
    'an address of a node without Node object',
    spec({
      node: 'node-c',
      commonName: 'node-c',
      dnsNames: ['node-c'],
      uris: [nodeUri('node-c')],
      ips: ['10.0.0.2'],
    }),
    /no such Node/,
  ],
  [
    'a client certificate',
    spec({ usages: ['digital signature', 'client auth', 'server auth'] }),
    /usages .*server auth .* only/,
  ],
  ['a CA certificate', spec({ usages: ['cert sign', 'server auth'] }), /usages/],
])('%s is denied with the reason', (_, request, reason) => {
  const decision = decideNodeCsr(request, policy, addresses);
  expect(decision.approve).toBe(false);
  expect(decision.approve === false && decision.reason).toMatch(reason);
});

test('an unreadable request is denied', () => {
  const decision = decideNodeCsr(
    { ...spec(), request: Buffer.from('junk').toString('base64') },
    policy,
    addresses,
  );
  expect(decision).toEqual({
    approve: false,
    reason: 'unreadable request: no CERTIFICATE REQUEST PEM block',
  });
});
