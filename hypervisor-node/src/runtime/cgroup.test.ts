import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { guestCgroupDirs, prepareGuestCgroupRoot } from './cgroup.js';

test('a guest has a cgroup under every root (one on cgroup v2, one per v1 hierarchy)', () => {
  expect(guestCgroupDirs(['/sys/fs/cgroup/cpu/tern', '/sys/fs/cgroup/freezer/tern'], 'vm-1')).toEqual([
    '/sys/fs/cgroup/cpu/tern/vm-1',
    '/sys/fs/cgroup/freezer/tern/vm-1',
  ]);
});

test('a guest cgroup root in no cgroup hierarchy is refused with the reason, creating nothing', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tern-cgroup-'));
  try {
    const root = path.join(dir, 'guests');
    await expect(prepareGuestCgroupRoot(root)).rejects.toThrow(
      `--guest-cgroup-root ${root}: neither it nor its parent ${dir} is a cgroup v2 (cgroup2) directory, and no directory above it holds cgroup v1 hierarchies`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
