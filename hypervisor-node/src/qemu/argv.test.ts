// validateGuestSpec + buildQemuArgv: an injection corpus that must be rejected with errors naming the field,
// and the golden argv of a valid spec.
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { assertSafeStateRoot, buildQemuArgv } from './argv.js';
import { GuestSpecError, validateGuestSpec, type ValidationPolicy } from './validate.js';

let root: string;
let outside: string;
let policy: ValidationPolicy;

beforeAll(async () => {
  const base = await realpath(await mkdtemp(path.join(tmpdir(), 'tern-argv-')));
  root = path.join(base, 'images');
  outside = path.join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
  await mkdir(path.join(root, 'subdir'));
  const sataImages = Array.from({ length: 7 }, (_, i) => `sata${i}.raw`);
  for (const file of [
    'vmlinuz',
    'initrd.img',
    'disk,with=comma.raw',
    'data.qcow2',
    'init,rd',
    ...sataImages,
  ]) {
    await writeFile(path.join(root, file), 'x');
  }
  await writeFile(path.join(outside, 'secret'), 'x');
  await symlink(path.join(outside, 'secret'), path.join(root, 'escape'));
  await symlink(path.join(root, 'vmlinuz'), path.join(root, 'kernel-link'));
  // The guest's namespace is "images": root is its namespace directory; outside is another namespace's.
  // Headers by name (the header rules: image-header.test.ts and validate.test.ts).
  policy = {
    imageRoots: { namespaceRoot: base, sharedRoots: [] },
    maxCpus: 4,
    maxMemoryMiB: 4096,
    inspectImage: (file) => Promise.resolve({ format: file.endsWith('.qcow2') ? 'qcow2' : 'raw' }),
  };
});

afterAll(async () => {
  await rm(path.dirname(root), { recursive: true, force: true });
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the corpus edits specs into deliberately ill-typed shapes
type LooseSpec = Record<string, any>;

function validSpec(): Record<string, unknown> {
  return {
    name: 'vm01',
    uuid: '6B1E0C2A-3F4D-4E5F-8A9B-0C1D2E3F4A5B',
    namespace: 'images',
    cpus: 2,
    memoryMiB: 512,
    boot: {
      kernel: `${root}/vmlinuz`,
      initrd: `${root}/initrd.img`,
      cmdline: ['panic=-1', 'tern.ip=10.0.0.2/24'],
    },
    disks: [
      {
        path: `${root}/disk,with=comma.raw`,
        readOnly: false,
        name: 'root',
        bus: 'virtio',
        cache: 'writeback',
        io: 'threads',
        storage: 'shared',
        boot: false,
      },
      {
        path: `${root}/data.qcow2`,
        readOnly: true,
        format: 'qcow2',
        name: 'data',
        bus: 'virtio',
        cache: 'writeback',
        io: 'threads',
        storage: 'local',
        boot: false,
      },
    ],
    nics: [{ mac: '52:54:00:AB:CD:EF' }],
  };
}

/** Applies `edit` to a fresh valid spec and returns the problems validation reports. */
async function problemsOf(edit: (spec: LooseSpec) => void): Promise<{ field: string; message: string }[]> {
  const spec = validSpec();
  edit(spec);
  try {
    await validateGuestSpec(spec, policy);
  } catch (err) {
    expect(err).toBeInstanceOf(GuestSpecError);
    return (err as GuestSpecError).problems;
  }
  throw new Error('spec was accepted');
}

describe('validateGuestSpec rejects', () => {
  const corpus: [string, string, (spec: LooseSpec) => void][] = [
    ['empty name', 'name', (s) => (s.name = '')],
    ['name with a comma', 'name', (s) => (s.name = 'vm,01')],
    ['name with "="', 'name', (s) => (s.name = 'vm=1')],
    ['name with a newline', 'name', (s) => (s.name = 'vm\n01')],
    ['uppercase name', 'name', (s) => (s.name = 'VM01')],
    ['name longer than 63', 'name', (s) => (s.name = 'a'.repeat(64))],
    ['name starting with "-"', 'name', (s) => (s.name = '-vm')],
    ['name with a dot', 'name', (s) => (s.name = 'vm.01')],
    ['display name with an option suffix', 'displayName', (s) => (s.displayName = 'ns/vm,debug-threads=on')],
    ['display name with "="', 'displayName', (s) => (s.displayName = 'ns/vm=1')],
    ['display name of three parts', 'displayName', (s) => (s.displayName = 'a/b/c')],
    ['uppercase display name', 'displayName', (s) => (s.displayName = 'Default/vm01')],
    ['empty display name', 'displayName', (s) => (s.displayName = '')],
    ['empty uuid', 'uuid', (s) => (s.uuid = '')],
    ['uuid without dashes', 'uuid', (s) => (s.uuid = '6b1e0c2a3f4d4e5f8a9b0c1d2e3f4a5b')],
    ['uuid with option suffix', 'uuid', (s) => (s.uuid = '6b1e0c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b,x=y')],
    ['zero cpus', 'cpus', (s) => (s.cpus = 0)],
    ['fractional cpus', 'cpus', (s) => (s.cpus = 1.5)],
    ['more cpus than the host allows', 'cpus', (s) => (s.cpus = 5)],
    ['cpus as a string', 'cpus', (s) => (s.cpus = '2')],
    ['memory below 64 MiB', 'memoryMiB', (s) => (s.memoryMiB = 63)],
    ['absurd memory', 'memoryMiB', (s) => (s.memoryMiB = 1e12)],
    ['memory as infinity', 'memoryMiB', (s) => (s.memoryMiB = Infinity)],
    ['machine with options', 'machine', (s) => (s.machine = 'q35,accel=kvm')],
    ['empty machine', 'machine', (s) => (s.machine = '')],
    ['cpu model with flags', 'cpuModel', (s) => (s.cpuModel = 'max,+vmx')],
    ['machine "help"', 'machine', (s) => (s.machine = 'help')],
    ['cpu model "help"', 'cpuModel', (s) => (s.cpuModel = 'help')],
    ['no boot source: no kernel and no boot disk', 'boot', (s) => delete s.boot],
    ['a boot disk next to a kernel', 'disks[0].boot', (s) => (s.disks[0].boot = true)],
    [
      'two boot disks',
      'disks[1].boot',
      (s) => {
        delete s.boot;
        s.disks[0].boot = true;
        s.disks[1].boot = true;
      },
    ],
    [
      'seven SATA disks (q35 has six AHCI ports)',
      'disks',
      (s) =>
        (s.disks = Array.from({ length: 7 }, (_, i) => ({
          ...s.disks[0],
          name: `d${i}`,
          path: `${root}/sata${i}.raw`,
          bus: 'sata',
        }))),
    ],
    ['empty kernel path', 'boot.kernel', (s) => (s.boot.kernel = '')],
    ['relative kernel path', 'boot.kernel', (s) => (s.boot.kernel = 'images/vmlinuz')],
    ['kernel path with ".."', 'boot.kernel', (s) => (s.boot.kernel = `${root}/../outside/secret`)],
    ['kernel path with "//"', 'boot.kernel', (s) => (s.boot.kernel = `${root}//vmlinuz`)],
    ['kernel path with "/./"', 'boot.kernel', (s) => (s.boot.kernel = `${root}/./vmlinuz`)],
    ['kernel path with trailing "/"', 'boot.kernel', (s) => (s.boot.kernel = `${root}/vmlinuz/`)],
    ['kernel path outside the roots', 'boot.kernel', (s) => (s.boot.kernel = `${outside}/secret`)],
    ['kernel path /etc/passwd', 'boot.kernel', (s) => (s.boot.kernel = '/etc/passwd')],
    ['symlink escaping the roots', 'boot.kernel', (s) => (s.boot.kernel = `${root}/escape`)],
    ['missing kernel', 'boot.kernel', (s) => (s.boot.kernel = `${root}/missing`)],
    ['directory as kernel', 'boot.kernel', (s) => (s.boot.kernel = `${root}/subdir`)],
    ['kernel path with a newline', 'boot.kernel', (s) => (s.boot.kernel = `${root}/vml\ninuz`)],
    ['kernel path with NUL', 'boot.kernel', (s) => (s.boot.kernel = `${root}/vmlinuz\0`)],
    ['initrd path with a comma', 'boot.initrd', (s) => (s.boot.initrd = `${root}/init,rd`)],
    ['cmdline as a string', 'boot.cmdline', (s) => (s.boot.cmdline = 'console=ttyS0')],
    ['cmdline word with a newline', 'boot.cmdline[1]', (s) => (s.boot.cmdline = ['a', 'b\nc'])],
    ['cmdline word with a space', 'boot.cmdline[0]', (s) => (s.boot.cmdline = ['a b'])],
    ['empty cmdline word', 'boot.cmdline[0]', (s) => (s.boot.cmdline = [''])],
    ['cmdline too long', 'boot.cmdline', (s) => (s.boot.cmdline = ['x'.repeat(2100)])],
    ['disks not a list', 'disks', (s) => (s.disks = {})],
    ['disk path outside the roots', 'disks[0].path', (s) => (s.disks[0].path = `${outside}/secret`)],
    ['disk path with ".."', 'disks[1].path', (s) => (s.disks[1].path = `${root}/subdir/../data.qcow2`)],
    ['disk readOnly missing', 'disks[0].readOnly', (s) => delete s.disks[0].readOnly],
    ['unknown disk format', 'disks[0].format', (s) => (s.disks[0].format = 'vmdk')],
    ['disk storage missing', 'disks[0].storage', (s) => delete s.disks[0].storage],
    ['unknown disk bus', 'disks[0].bus', (s) => (s.disks[0].bus = 'scsi')],
    ['unknown disk cache mode', 'disks[0].cache', (s) => (s.disks[0].cache = 'unsafe')],
    ['native AIO without O_DIRECT', 'disks[0].io', (s) => (s.disks[0].io = 'native')],
    ['disk name not a label', 'disks[0].name', (s) => (s.disks[0].name = 'Root')],
    ['two disks of one name', 'disks[1].name', (s) => (s.disks[1].name = 'root')],
    ['boot flag not a boolean', 'disks[0].boot', (s) => (s.disks[0].boot = 'yes')],
    ['the same disk twice', 'disks[1].path', (s) => (s.disks[1].path = `${root}/disk,with=comma.raw`)],
    ['empty MAC', 'nics[0].mac', (s) => (s.nics[0].mac = '')],
    ['MAC with dashes', 'nics[0].mac', (s) => (s.nics[0].mac = '52-54-00-ab-cd-ef')],
    ['short MAC', 'nics[0].mac', (s) => (s.nics[0].mac = '52:54:00:ab:cd')],
    ['MAC with option suffix', 'nics[0].mac', (s) => (s.nics[0].mac = '52:54:00:ab:cd:ef,x=y')],
    ['multicast MAC', 'nics[0].mac', (s) => (s.nics[0].mac = '53:54:00:ab:cd:ef')],
    ['globally administered MAC', 'nics[0].mac', (s) => (s.nics[0].mac = '00:16:3e:ab:cd:ef')],
    ['duplicate MAC', 'nics[1].mac', (s) => s.nics.push({ mac: '52:54:00:ab:cd:ef' })],
    [
      'too many NICs',
      'nics',
      (s) => (s.nics = Array.from({ length: 9 }, (_, i) => ({ mac: `52:54:00:00:00:0${i}` }))),
    ],
  ];

  test.each(corpus)('%s (field %s)', async (_what, field, edit) => {
    const problems = await problemsOf(edit);
    expect(problems.map((p) => p.field)).toEqual([field]);
    expect(problems[0]?.message.length).toBeGreaterThan(10);
  });

  test('a non-object spec', async () => {
    await expect(validateGuestSpec(null, policy)).rejects.toThrow('spec: must be an object');
    await expect(validateGuestSpec([], policy)).rejects.toThrow('spec: must be an object');
  });

  test('every problem at once, each named in the message', async () => {
    const problems = await problemsOf((s) => {
      s.name = 'a,b';
      s.cpus = 99;
      s.nics[0].mac = 'bad';
    });
    expect(problems.map((p) => p.field)).toEqual(['name', 'cpus', 'nics[0].mac']);
    const spec = { ...validSpec(), memoryMiB: 10 };
    await expect(validateGuestSpec(spec, policy)).rejects.toThrow(
      'invalid guest spec: memoryMiB: must be an integer from 64 to 4096 MiB, got 10',
    );
  });
});

describe('validateGuestSpec accepts', () => {
  test('a valid spec, normalised', async () => {
    const spec = await validateGuestSpec(validSpec(), policy);
    expect(spec).toEqual({
      name: 'vm01',
      uuid: '6b1e0c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b',
      namespace: 'images',
      cpus: 2,
      memoryMiB: 512,
      boot: {
        kernel: `${root}/vmlinuz`,
        initrd: `${root}/initrd.img`,
        cmdline: ['panic=-1', 'tern.ip=10.0.0.2/24'],
      },
      disks: [
        {
          path: `${root}/disk,with=comma.raw`,
          readOnly: false,
          format: 'raw',
          name: 'root',
          bus: 'virtio',
          cache: 'writeback',
          io: 'threads',
          storage: 'shared',
          boot: false,
        },
        {
          path: `${root}/data.qcow2`,
          readOnly: true,
          format: 'qcow2',
          name: 'data',
          bus: 'virtio',
          cache: 'writeback',
          io: 'threads',
          storage: 'local',
          boot: false,
          backingChain: [],
        },
      ],
      nics: [{ mac: '52:54:00:ab:cd:ef' }],
    });
  });

  test('a symlink inside the roots, replaced by its target', async () => {
    const spec = await validateGuestSpec(
      { ...validSpec(), boot: { kernel: `${root}/kernel-link`, cmdline: [] } },
      policy,
    );
    expect(spec.boot).toEqual({ kernel: `${root}/vmlinuz`, cmdline: [] });
  });

  test('a root that is itself reached through a symlink', async () => {
    const linkedRoot = `${path.dirname(root)}/linked-root`;
    await symlink(root, linkedRoot);
    const spec = await validateGuestSpec(
      { ...validSpec(), boot: { kernel: `${linkedRoot}/vmlinuz`, cmdline: [] }, disks: [] },
      { ...policy, imageRoots: { sharedRoots: [linkedRoot] } },
    );
    expect(spec.boot?.kernel).toBe(`${root}/vmlinuz`);
  });

  test('disk boot: no kernel, one disk marked boot', async () => {
    const input = validSpec();
    delete input.boot;
    (input.disks as LooseSpec[])[1]!.boot = true;
    const spec = await validateGuestSpec(input, policy);
    expect(spec.boot).toBeUndefined();
    expect('boot' in spec).toBe(false);
    expect(spec.disks.map((disk) => disk.boot)).toEqual([false, true]);
  });
});

describe('buildQemuArgv', () => {
  const stateRoot = '/var/lib/tern/guests';

  test('golden argv of a valid spec', async () => {
    const spec = await validateGuestSpec(validSpec(), policy);
    expect(
      buildQemuArgv(spec, { stateRoot, accel: 'tcg', nics: [{ kind: 'tap', ifname: 'tt0123456789abc' }] }),
    ).toEqual([
      '-name',
      'guest=vm01',
      '-uuid',
      '6b1e0c2a-3f4d-4e5f-8a9b-0c1d2e3f4a5b',
      '-machine',
      'q35',
      '-accel',
      'tcg',
      '-cpu',
      'max',
      '-m',
      '512M',
      '-smp',
      '2',
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-msg',
      'timestamp=on',
      '-sandbox',
      'on,obsolete=deny,spawn=deny,resourcecontrol=deny,elevateprivileges=deny',
      '-pidfile',
      '/var/lib/tern/guests/vm01/qemu.pid',
      '-qmp',
      'unix:/var/lib/tern/guests/vm01/qmp.sock,server=on,wait=off',
      '-chardev',
      'socket,id=console,path=/var/lib/tern/guests/vm01/ttyS0.sock,server=on,wait=off,logfile=/var/lib/tern/guests/vm01/console.log,logappend=on',
      '-serial',
      'chardev:console',
      '-chardev',
      'socket,id=agent,path=/var/lib/tern/guests/vm01/agent.sock,server=on,wait=off',
      '-serial',
      'chardev:agent',
      '-kernel',
      `${root}/vmlinuz`,
      '-initrd',
      `${root}/initrd.img`,
      '-append',
      'console=ttyS0 panic=-1 tern.ip=10.0.0.2/24',
      '-blockdev',
      `{"driver":"file","node-name":"file0","filename":"${root}/disk,with=comma.raw","read-only":false,"aio":"threads","cache":{"direct":false,"no-flush":false}}`,
      '-blockdev',
      '{"driver":"raw","node-name":"disk0","file":"file0","read-only":false,"cache":{"direct":false,"no-flush":false}}',
      '-device',
      '{"driver":"virtio-blk-pci","id":"vd0","drive":"disk0","write-cache":"on"}',
      '-blockdev',
      `{"driver":"file","node-name":"file1","filename":"${root}/data.qcow2","read-only":true,"aio":"threads","cache":{"direct":false,"no-flush":false}}`,
      '-blockdev',
      '{"driver":"qcow2","node-name":"disk1","file":"file1","read-only":true,"cache":{"direct":false,"no-flush":false},"backing":null}',
      '-device',
      '{"driver":"virtio-blk-pci","id":"vd1","drive":"disk1","write-cache":"on"}',
      '-netdev',
      '{"type":"tap","id":"net0","ifname":"tt0123456789abc","script":"no","downscript":"no"}',
      '-device',
      '{"driver":"virtio-net-pci","id":"nic0","netdev":"net0","mac":"52:54:00:ab:cd:ef"}',
    ]);
  });

  test('disk boot: the boot disk gets bootindex 0, no -kernel/-initrd/-append; bus, cache and io per disk', async () => {
    const disk = (i: number, bus: string, cache: string, io: string, boot = false): LooseSpec => ({
      name: `d${i}`,
      path: `${root}/sata${i}.raw`,
      readOnly: false,
      bus,
      cache,
      io,
      storage: 'local',
      boot,
    });
    const input = validSpec();
    delete input.boot;
    input.disks = [
      disk(0, 'virtio', 'none', 'native'),
      disk(1, 'sata', 'writethrough', 'threads', true),
      disk(2, 'virtio', 'writeback', 'io_uring'),
      disk(3, 'sata', 'none', 'io_uring'),
    ];
    const spec = await validateGuestSpec(input, policy);
    const argv = buildQemuArgv(spec, { stateRoot, accel: 'tcg', nics: [{ kind: 'tap', ifname: 'tt0' }] });
    for (const option of ['-kernel', '-initrd', '-append']) expect(argv).not.toContain(option);
    const serial = argv.lastIndexOf('chardev:agent');
    expect(argv.slice(serial + 1, argv.indexOf('-netdev'))).toEqual([
      '-boot',
      'strict=on',
      '-blockdev',
      `{"driver":"file","node-name":"file0","filename":"${root}/sata0.raw","read-only":false,"aio":"native","cache":{"direct":true,"no-flush":false}}`,
      '-blockdev',
      '{"driver":"raw","node-name":"disk0","file":"file0","read-only":false,"cache":{"direct":true,"no-flush":false}}',
      '-device',
      '{"driver":"virtio-blk-pci","id":"vd0","drive":"disk0","write-cache":"on"}',
      '-blockdev',
      `{"driver":"file","node-name":"file1","filename":"${root}/sata1.raw","read-only":false,"aio":"threads","cache":{"direct":false,"no-flush":false}}`,
      '-blockdev',
      '{"driver":"raw","node-name":"disk1","file":"file1","read-only":false,"cache":{"direct":false,"no-flush":false}}',
      '-device',
      '{"driver":"ide-hd","id":"vd1","bus":"ide.0","drive":"disk1","write-cache":"off","bootindex":0}',
      '-blockdev',
      `{"driver":"file","node-name":"file2","filename":"${root}/sata2.raw","read-only":false,"aio":"io_uring","cache":{"direct":false,"no-flush":false}}`,
      '-blockdev',
      '{"driver":"raw","node-name":"disk2","file":"file2","read-only":false,"cache":{"direct":false,"no-flush":false}}',
      '-device',
      '{"driver":"virtio-blk-pci","id":"vd2","drive":"disk2","write-cache":"on"}',
      '-blockdev',
      `{"driver":"file","node-name":"file3","filename":"${root}/sata3.raw","read-only":false,"aio":"io_uring","cache":{"direct":true,"no-flush":false}}`,
      '-blockdev',
      '{"driver":"raw","node-name":"disk3","file":"file3","read-only":false,"cache":{"direct":true,"no-flush":false}}',
      '-device',
      '{"driver":"ide-hd","id":"vd3","bus":"ide.1","drive":"disk3","write-cache":"on"}',
    ]);
  });

  test('KVM, explicit machine/CPU, own console word, migration target', async () => {
    const spec = await validateGuestSpec(
      {
        ...validSpec(),
        machine: 'pc-q35-10.0',
        cpuModel: 'Skylake-Server-v4',
        boot: { kernel: `${root}/vmlinuz`, cmdline: ['console=hvc0'] },
        disks: [],
        nics: [],
      },
      policy,
    );
    const argv = buildQemuArgv(spec, { stateRoot, accel: 'kvm', incoming: true, nics: [] });
    expect(argv.slice(4, 10)).toEqual([
      '-machine',
      'pc-q35-10.0',
      '-accel',
      'kvm',
      '-cpu',
      'Skylake-Server-v4',
    ]);
    expect(argv[argv.indexOf('-append') + 1]).toBe('console=hvc0');
    expect(argv).not.toContain('-initrd');
    expect(argv.slice(-3)).toEqual(['-S', '-incoming', 'defer']);
    const kvmDefault = buildQemuArgv({ ...spec, cpuModel: undefined }, { stateRoot, accel: 'kvm', nics: [] });
    expect(kvmDefault[kvmDefault.indexOf('-cpu') + 1]).toBe('host');
  });

  test('shows the display name in -name and drops to the QEMU user, which must be able to call setuid', async () => {
    const spec = await validateGuestSpec({ ...validSpec(), displayName: 'default/vm01' }, policy);
    const user = { uid: 999, gid: 995, configured: 'tern-qemu' };
    const argv = buildQemuArgv(spec, {
      stateRoot,
      accel: 'tcg',
      nics: [{ kind: 'tap', ifname: 'tt0' }],
      user,
    });
    expect(argv.slice(0, 2)).toEqual(['-name', 'guest=default/vm01']);
    const sandbox = argv.indexOf('-sandbox');
    expect(argv.slice(sandbox, sandbox + 4)).toEqual([
      '-sandbox',
      'on,obsolete=deny,spawn=deny,resourcecontrol=deny',
      '-run-with',
      'user=999:995',
    ]);
    // The state dir stays named by the guest's key, not by its display name.
    expect(argv[argv.indexOf('-pidfile') + 1]).toBe('/var/lib/tern/guests/vm01/qemu.pid');
  });

  test('refuses state roots that would need QEMU option escaping or overflow a socket path', () => {
    expect(() => assertSafeStateRoot('/var/lib/tern,x=y')).toThrow(/must be an absolute path of letters/);
    expect(() => assertSafeStateRoot('relative/dir')).toThrow(/must be an absolute path/);
    expect(() => assertSafeStateRoot('/var/lib/../tern')).toThrow(/must be an absolute path/);
    expect(() => assertSafeStateRoot('/var/lib/tern guests')).toThrow(/must be an absolute path/);
    expect(() => assertSafeStateRoot(`/${'d'.repeat(40)}`)).toThrow(/too long: .* exceeds 107 bytes/);
    expect(() => assertSafeStateRoot('/var/lib/tern/guests')).not.toThrow();
  });

  test('user-mode networking forwards one loopback port; NIC and backend counts must match', async () => {
    const spec = await validateGuestSpec(validSpec(), policy);
    const nics = [{ kind: 'user' as const, hostAddress: '127.0.0.1', hostPort: 40123, guestPort: 7000 }];
    const argv = buildQemuArgv(spec, { stateRoot, accel: 'tcg', nics });
    expect(argv[argv.indexOf('-netdev') + 1]).toBe(
      '{"type":"user","id":"net0","hostfwd":[{"str":"tcp:127.0.0.1:40123-:7000"}]}',
    );
    expect(() => buildQemuArgv(spec, { stateRoot, accel: 'tcg', nics: [] })).toThrow(
      /1 NICs but 0 host backends/,
    );
  });
});
