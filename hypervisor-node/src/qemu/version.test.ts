import { assertMigrationSupported, parseQemuVersion } from './version.js';

const DEBIAN_BACKPORTS =
  'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\nCopyright (c) 2003-2025\n';
const DEBIAN_12 = 'QEMU emulator version 7.2.19 (Debian 1:7.2+dfsg-7+deb12u16)\nCopyright (c) 2003-2022\n';

test('parses the first line of --version', () => {
  expect(parseQemuVersion(DEBIAN_BACKPORTS)).toEqual({
    major: 10,
    minor: 0,
    micro: 2,
    text: 'QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)',
  });
  expect(parseQemuVersion('QEMU emulator version 9.1.50\n')).toMatchObject({ major: 9, minor: 1, micro: 50 });
  expect(parseQemuVersion('QEMU emulator version 8.2\n')).toMatchObject({ major: 8, minor: 2, micro: 0 });
});

test('rejects output that is not a QEMU version', () => {
  expect(() => parseQemuVersion('')).toThrow('cannot read a QEMU version from ""');
  expect(() => parseQemuVersion('qemu-img version 10.0.2\n')).toThrow(/cannot read a QEMU version/);
});

test('TCG live migration needs QEMU >= 10.0, KVM does not', () => {
  const v72 = parseQemuVersion(DEBIAN_12);
  expect(() => assertMigrationSupported('tcg', v72)).toThrow(
    'live migration under TCG needs QEMU >= 10.0, this node has 7.2.19 (QEMU 7.2 corrupted the guest in 4 of 5 ' +
      'TCG migrations); install QEMU 10.0 or newer (on Debian 12: qemu-system-x86 from bookworm-backports)',
  );
  expect(() => assertMigrationSupported('tcg', parseQemuVersion('QEMU emulator version 9.2.4'))).toThrow(
    /needs QEMU >= 10.0/,
  );
  expect(() => assertMigrationSupported('kvm', v72)).not.toThrow();
  expect(() => assertMigrationSupported('tcg', parseQemuVersion(DEBIAN_BACKPORTS))).not.toThrow();
  expect(() =>
    assertMigrationSupported('tcg', parseQemuVersion('QEMU emulator version 11.1.0')),
  ).not.toThrow();
});
