// The node's fence watchdog: one small shell process per node, outside the daemon, that SIGKILLs every guest QEMU
// under the state root once the daemon has not renewed its Lease for the fence time. It must act when the daemon
// is frozen (SIGSTOP), hung or dead while the QEMUs run on — so it is neither the daemon nor one of its threads,
// and it outlives the daemon (detached, in the guests' cgroup root when there is one). A shell loop costs about a
// megabyte and reads two small files per tick; it needs no Node.js, so nothing the daemon loads can break it.
//
// What it reads is the heartbeat file the daemon writes after each successful renewal (heartbeat.ts): the boot id,
// when the renewal request started (CLOCK_BOOTTIME, the clock of /proc/uptime, which keeps counting through a
// suspend and is never set) and the fence time. Stale means: no heartbeat, a heartbeat of another boot, or one
// older than the fence time. While stale it kills, every tick, every QEMU whose -pidfile names a guest dir under
// the root, after writing `fenced` (the reason) into that dir so that the daemon reports the guest as Fenced. It
// exits when the state root's .fencing dir is gone or a heartbeat of this boot says fencing is off (0).
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createGuestCgroup } from '../runtime/cgroup.js';
import { inCgroups } from '../runtime/process.js';

/**
 * `$0`: the state root (normalized, as the guests' -pidfile paths are built from it); `$1`: a cgroup v2 dir to run
 * in, or '' (the daemon now always passes '' and joins the cgroups before the script starts, see ensureWatchdog;
 * the text stays as it was so that a daemon recognises the watchdog an earlier daemon started). Heartbeat line: `<boot id> <renewed at, centiseconds of /proc/uptime> <fence time, centiseconds>`.
 * Malformed numbers count as no heartbeat. The tick is a tenth of the fence time, between 0.1 s and 1 s.
 */
export const WATCHDOG_SCRIPT = `[ -z "$1" ] || echo $$ >"$1/cgroup.procs" || exit 125
dir="$0/.fencing"
echo $$ >"$dir/watchdog.pid" || exit 1
read -r boot </proc/sys/kernel/random/boot_id
while [ -d "$dir" ]; do
  hb=; at=; fence=; age=
  read -r hb at fence <"$dir/heartbeat" 2>/dev/null
  case "$at:$fence" in *[!0-9:]*|:*|*:) hb= ;; esac
  if [ -n "$hb" ] && [ "$hb" = "$boot" ] && [ "$fence" -eq 0 ]; then exit 0; fi
  read -r up rest </proc/uptime
  cs=\${up#*.}
  now=$(( \${up%.*} * 100 + \${cs#0} ))
  if [ "$hb" != "$boot" ]; then
    why="no Lease renewal recorded since the node booted"; fence=100
  else
    age=$(( now - at ))
    why="no Lease renewal for $(( age / 100 )) s (fence time $(( fence / 100 )) s)"
  fi
  if [ -z "$age" ] || [ "$age" -ge "$fence" ]; then
    for pidfile in "$0"/*/qemu.pid; do
      read -r pid <"$pidfile" 2>/dev/null || continue
      tr '\\0' '\\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -e "$pidfile" || continue
      echo "$why: the node's fence watchdog killed QEMU (SIGKILL) so that the guest can never run on two nodes" \\
        >"\${pidfile%/qemu.pid}/fenced"
      kill -KILL "$pid" 2>/dev/null
    done
  fi
  t=$(( fence / 10 )); [ "$t" -gt 100 ] && t=100; [ "$t" -lt 10 ] && t=10
  sleep "$(( t / 100 )).$(( t % 100 / 10 ))$(( t % 10 ))"
done
`;

export interface FencingPaths {
  dir: string;
  heartbeat: string;
  watchdogPid: string;
  watchdogLog: string;
}

/** The node's fencing files: <stateRoot>/.fencing/ (a leading dot: never a guest name, which is a DNS label). */
export function fencingPaths(stateRoot: string): FencingPaths {
  const dir = path.join(path.resolve(stateRoot), '.fencing');
  return {
    dir,
    heartbeat: path.join(dir, 'heartbeat'),
    watchdogPid: path.join(dir, 'watchdog.pid'),
    watchdogLog: path.join(dir, 'watchdog.log'),
  };
}

/** The watchdog's cgroup under a guests' cgroup root (a leaf of its own: the root may not hold processes). */
export function watchdogCgroupDir(cgroupRoot: string): string {
  return path.join(cgroupRoot, '.fencing');
}

/** The pid of this state root's live watchdog, or undefined when none runs. */
export async function runningWatchdog(stateRoot: string): Promise<number | undefined> {
  const root = path.resolve(stateRoot);
  let pid: number;
  try {
    pid = Number.parseInt((await readFile(fencingPaths(root).watchdogPid, 'utf8')).trim(), 10);
  } catch {
    return undefined;
  }
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return undefined;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    return argv[1] === '-c' && argv[2] === WATCHDOG_SCRIPT && argv[3] === root ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Starts the watchdog of `stateRoot` unless one runs; its .fencing dir must exist. Detached in its own session,
 * so that it outlives the daemon; with `cgroupRoots` (the guests' cgroup roots), in <root>/.fencing under each,
 * outside the daemon's container. Returns its pid.
 */
export async function ensureWatchdog(
  stateRoot: string,
  cgroupRoots: readonly string[] = [],
): Promise<number> {
  const running = await runningWatchdog(stateRoot);
  if (running !== undefined) return running;
  const root = path.resolve(stateRoot);
  const cgroups = cgroupRoots.map(watchdogCgroupDir);
  for (const cgroup of cgroups) await createGuestCgroup(cgroup);
  const [command, ...args] = inCgroups(cgroups, ['/bin/sh', '-c', WATCHDOG_SCRIPT, root, '']);
  const log = openSync(fencingPaths(root).watchdogLog, 'a');
  try {
    const child = spawn(command!, args, {
      detached: true,
      stdio: ['ignore', log, log],
    });
    child.unref();
    const pid = child.pid;
    if (pid === undefined) throw new Error('the fence watchdog could not be started');
    return pid;
  } finally {
    closeSync(log);
  }
}
