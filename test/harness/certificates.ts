import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Paths of the PEM files a throw-away control plane needs, all in one directory. */
export interface ControlPlaneCertificates {
  caCert: string;
  caKey: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  serviceAccountKey: string;
  serviceAccountPublicKey: string;
}

const CA_EXTENSIONS = ['basicConstraints=critical,CA:TRUE', 'keyUsage=critical,keyCertSign,cRLSign'];
const LEAF_EXTENSIONS = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature'];
// ECDSA P-256 keys are generated in milliseconds, unlike RSA keys: it keeps the control-plane start fast.
const P256 = 'ec_paramgen_curve:P-256';

async function openssl(args: string[]): Promise<void> {
  try {
    await execFileAsync('openssl', args);
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * One CA signs both the serving certificate (127.0.0.1, localhost and `extraIps`) and the admin client certificate
 * (CN=admin, O=system:masters); kube-apiserver trusts it as --client-ca-file. The service-account signing key is
 * a separate key pair.
 */
export async function generateCertificates(
  dir: string,
  extraIps: string[] = [],
): Promise<ControlPlaneCertificates> {
  const file = (name: string): string => join(dir, name);
  const c: ControlPlaneCertificates = {
    caCert: file('ca.crt'),
    caKey: file('ca.key'),
    servingCert: file('apiserver.crt'),
    servingKey: file('apiserver.key'),
    adminCert: file('admin.crt'),
    adminKey: file('admin.key'),
    serviceAccountKey: file('sa.key'),
    serviceAccountPublicKey: file('sa.pub'),
  };
  await newCertificate({
    cert: c.caCert,
    key: c.caKey,
    subject: '/CN=tern-test-ca',
    extensions: CA_EXTENSIONS,
  });
  await Promise.all([
    newCertificate({
      cert: c.servingCert,
      key: c.servingKey,
      subject: '/CN=localhost',
      extensions: [
        ...LEAF_EXTENSIONS,
        `subjectAltName=${['IP:127.0.0.1', 'DNS:localhost', ...extraIps.map((ip) => `IP:${ip}`)].join(',')}`,
        'extendedKeyUsage=serverAuth',
      ],
      signer: c,
    }),
    newCertificate({
      cert: c.adminCert,
      key: c.adminKey,
      subject: '/O=system:masters/CN=admin',
      extensions: [...LEAF_EXTENSIONS, 'extendedKeyUsage=clientAuth'],
      signer: c,
    }),
    newServiceAccountKeyPair(c.serviceAccountKey, c.serviceAccountPublicKey),
  ]);
  return c;
}

/** A new key and a certificate for it, self-signed or signed by signer's CA, valid for a week. */
function newCertificate(o: {
  cert: string;
  key: string;
  subject: string;
  extensions: string[];
  signer?: { caCert: string; caKey: string };
}): Promise<void> {
  const flags: [string, string][] = [
    ['-newkey', 'ec'],
    ['-pkeyopt', P256],
    ['-keyout', o.key],
    ['-out', o.cert],
    ['-subj', o.subject],
    ['-days', '7'],
    ...o.extensions.map((e): [string, string] => ['-addext', e]),
    ...(o.signer
      ? [['-CA', o.signer.caCert] as [string, string], ['-CAkey', o.signer.caKey] as [string, string]]
      : []),
  ];
  return openssl(['req', '-x509', '-nodes', ...flags.flat()]);
}

async function newServiceAccountKeyPair(privateKey: string, publicKey: string): Promise<void> {
  await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', P256, '-out', privateKey]);
  await openssl(['pkey', '-in', privateKey, '-pubout', '-out', publicKey]);
}
