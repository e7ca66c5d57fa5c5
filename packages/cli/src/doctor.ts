/**
 * `runnel doctor`: measures each log dir and the host, compares them with what Runnel needs and
 * says what to change (Redpanda's `rpk redpanda check` / `rpk iotune`, Kafka's production OS
 * settings). Read-only and safe on a live broker: it never opens a dir's `.lock` (it only stats it
 * to find the broker holding it), never writes outside its own temp files
 * (`<dir>/.runnel-doctor-<pid>-{seq,sync}.tmp`, removed before it returns, also on Ctrl-C), keeps
 * each measurement bounded in bytes and seconds, and runs at nice 19 and the lowest best-effort I/O
 * priority (`ionice -c 2 -n 7`; not the idle class, which a busy broker could starve forever).
 *
 * All I/O is synchronous on the main thread (the one thread nice/ionice apply to), in chunks with
 * an event-loop turn between them so SIGINT/SIGTERM can stop it and remove the temp files.
 * The JSON shape (`--json`) is `DoctorReport` below; `version` rises when a field changes meaning.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  closeSync, constants, existsSync, fdatasyncSync, openSync, readFileSync, readSync, realpathSync, statSync, statfsSync,
  unlinkSync, writeSync,
} from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { setImmediate as turn } from 'node:timers/promises';
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '@runnel/common';
import { loadConfig } from './config.ts';

export type Status = 'ok' | 'warn' | 'fail';

/** One row of the table: what was found, what Runnel wants, and how to get there. */
export interface Check {
  /** `host`, or the log dir the check is about. */
  scope: string;
  check: string;
  value: string;
  recommended: string;
  status: Status;
  /** The command (or setting) that fixes it; null when nothing is to be done. */
  fix: string | null;
  why: string;
}

export interface HostReport {
  hostname: string;
  kernel: string;
  cores: number;
  memTotalBytes: number;
  memAvailableBytes: number | null;
  swapTotalBytes: number | null;
  /** `ulimit -n` of this process (`/proc/self/limits`). */
  openFiles: { soft: number | null; hard: number | null };
  fileMax: number | null;
  swappiness: number | null;
  dirtyRatio: number | null;
  dirtyBackgroundRatio: number | null;
  /** Non-zero bytes settings replace the ratios (the kernel uses whichever was written last). */
  dirtyBytes: number | null;
  dirtyBackgroundBytes: number | null;
  clocksource: string | null;
  availableClocksources: string[];
}

export interface FsyncStats { samples: number; p50Ms: number; p99Ms: number; maxMs: number }

export interface PartitionsPerDisk {
  recommended: number;
  /** 70 % of the measured sequential write rate over `assumptions.partitionWriteMiBps`, divided among the log dirs on the same device. */
  byThroughput: number | null;
  /** Half of the host's memory, shared by the dirs, over each partition's cached tail. */
  byMemory: number;
  /** Segment files the broker keeps open at once (runnel.log.max.open.files), shared by the dirs. */
  byOpenFiles: number;
  limitedBy: 'throughput' | 'memory' | 'open files';
}

export interface DirReport {
  path: string;
  writable: boolean;
  /** Why it could not be measured (not writable, too little space); null when it was. */
  error: string | null;
  filesystem: string | null;
  mountPoint: string | null;
  mountOptions: string[];
  device: { name: string; rotational: boolean | null; scheduler: string | null } | null;
  totalBytes: number;
  freeBytes: number;
  /** The process holding the dir's `.lock` (a running broker), from /proc/locks; null when none. */
  inUseByPid: number | null;
  /** Whether the sequential measurements bypassed the page cache (O_DIRECT). */
  direct: boolean;
  writeBytes: number;
  writeMiBps: number | null;
  readMiBps: number | null;
  /** The read came from the page cache (no O_DIRECT here): it measures memory, not the disk. */
  readFromPageCache: boolean;
  fsync: FsyncStats | null;
  /** fdatasync p99 within the target: runnel.durable=true fits this disk. Null when not measured. */
  durableFits: boolean | null;
  partitionsPerDisk: PartitionsPerDisk | null;
  elapsedMs: number;
}

export interface DoctorReport {
  version: 1;
  generatedAt: string;
  quick: boolean;
  assumptions: { fsyncP99TargetMs: number; partitionWriteMiBps: number; tailSeconds: number; diskUtilisation: number };
  config: { logDirs: string[]; durable: boolean; maxOpenFiles: number; maxOpenFilesEffective: number };
  host: HostReport;
  dirs: DirReport[];
  checks: Check[];
  summary: Record<Status, number>;
}

export interface DoctorOptions {
  logDirs: string[];
  quick: boolean;
  /** Bytes written per dir for the sequential measurement (upper bound; also bounded in time and by free space). */
  sizeBytes: number;
  fsyncP99TargetMs: number;
  durable: boolean;
  /** runnel.log.max.open.files as configured (-1: half of ulimit -n, 64 to 10,000). */
  maxOpenFiles: number;
  /** Where /proc and /sys are found; default '/'. */
  root?: string;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const ASSUMPTIONS = { partitionWriteMiBps: 1, tailSeconds: 60, diskUtilisation: 0.7 };

/** The commander command (registered in main.ts). */
export function doctorCommand(env: NodeJS.ProcessEnv): Command {
  const atLeast = (name: string, min: number) => (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n <= 0) throw new InvalidArgumentError(`${name} must be a number ${min > 0 ? `>= ${min}` : '> 0'}`);
    return n;
  };
  return new Command('doctor')
    .description('measure the log dirs (write, read, fdatasync, space, filesystem) and the host (cores, memory, limits, vm settings, clock) and say what to change; read-only, safe on a live broker')
    .option('-c, --config <file>', 'a server.properties file (for log.dirs, runnel.durable, runnel.log.max.open.files)')
    .option('-s, --set <key=value>', 'set one config, as for `runnel start` (repeatable)', (v: string, p: string[]) => [...p, v], [] as string[])
    .option('--log-dirs <a,b>', 'the dirs to check (instead of the config\'s log.dirs)')
    .option('--quick', 'smaller, shorter measurements (about a second per dir)')
    .option('--size-mib <n>', 'MiB written per dir for the sequential measurement (default 256, --quick 32; at least 4)', atLeast('--size-mib', 4))
    .option('--fsync-target-ms <ms>', 'fdatasync p99 under which runnel.durable=true fits a disk', atLeast('--fsync-target-ms', 0), 5)
    .option('--json', 'print the report as JSON (docs: packages/cli/README.md, `runnel doctor`)')
    .addHelpText('after', `
Examples:
  runnel doctor --log-dirs /data/a,/data/b
  runnel doctor -c server.properties --quick
  runnel doctor --set log.dirs=/var/lib/runnel --json | jq '.checks[] | select(.status != "ok")'

Exit code 0 whatever it finds (read the STATUS column or .summary); 2 for bad arguments or a
log dir that does not exist.`)
    // Bad arguments are exit code 2, as a bad config is for `runnel start` (commander's default is 1).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (opts: { config?: string; set: string[]; logDirs?: string; quick?: boolean; sizeMib?: number; fsyncTargetMs: number; json?: boolean }) => {
      const { config } = loadConfig({ config: opts.config, set: opts.set }, env);
      const dirs = opts.logDirs !== undefined ? opts.logDirs.split(',').map((d) => d.trim()).filter((d) => d !== '') : config.logDirs;
      if (dirs.length === 0) throw new ConfigError('INVALID_VALUE', '--log-dirs', '--log-dirs: give at least one directory');
      for (const d of dirs) {
        let st;
        try {
          st = statSync(d);
        } catch {
          throw new ConfigError('INVALID_VALUE', 'log.dirs', `log dir ${d} does not exist (runnel start creates it; doctor measures an existing dir on the disk it will use)`);
        }
        if (!st.isDirectory()) throw new ConfigError('INVALID_VALUE', 'log.dirs', `log dir ${d} is not a directory`);
      }
      const quick = opts.quick === true;
      lowerPriority();
      const report = await runDoctor({
        logDirs: dirs.map((d) => resolve(d)),
        quick,
        sizeBytes: Math.round((opts.sizeMib ?? (quick ? 32 : 256)) * MiB),
        fsyncP99TargetMs: opts.fsyncTargetMs,
        durable: config.get('runnel.durable'),
        maxOpenFiles: config.get('runnel.log.max.open.files'),
      });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
    });
}

/** nice 19 and the lowest best-effort I/O class for this thread (where all the I/O happens). */
function lowerPriority(): void {
  try { os.setPriority(19); } catch { /* not permitted: run at the current priority */ }
  spawnSync('ionice', ['-c', '2', '-n', '7', '-p', String(process.pid)], { stdio: 'ignore' });
}

/** Measures every dir (one after the other, so they do not disturb each other) and the host. */
export async function runDoctor(o: DoctorOptions): Promise<DoctorReport> {
  const root = o.root ?? '/';
  const host = readHost(root);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const dirs: DirReport[] = [];
  try {
    for (const path of o.logDirs) dirs.push(await measureDir(path, o, root, stop.signal));
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (stop.signal.aborted) {
    // The temp files are gone (measureDir's finally); exit as a signal would have.
    process.stderr.write('runnel doctor: interrupted; its temp files are removed\n');
    process.exit(130);
  }
  // The broker's own limit counts, when one holds a dir (a systemd LimitNOFILE is not this shell's).
  const brokerPid = dirs.find((d) => d.inUseByPid !== null)?.inUseByPid ?? null;
  const limit = (brokerPid !== null ? readOpenFileLimit(join(root, `proc/${brokerPid}/limits`)) : null) ?? host.openFiles;
  const maxOpenFilesEffective = o.maxOpenFiles > 0 ? o.maxOpenFiles : limit.soft === null ? 1_000 : Math.max(64, Math.min(10_000, Math.floor(limit.soft / 2)));
  for (const d of dirs) {
    d.durableFits = d.fsync === null ? null : d.fsync.p99Ms <= o.fsyncP99TargetMs;
    // Log dirs on one block device share its write rate (each was measured alone).
    const sharing = d.device === null ? 1 : dirs.filter((x) => x.device?.name === d.device!.name).length;
    d.partitionsPerDisk = partitionsPerDisk(d, host, dirs.length, sharing, maxOpenFilesEffective);
  }
  const checks = [
    ...hostChecks(host, limit, brokerPid, o, maxOpenFilesEffective),
    ...dirs.flatMap((d) => dirChecks(d, o)),
  ];
  const summary = { ok: 0, warn: 0, fail: 0 };
  for (const c of checks) summary[c.status]++;
  return {
    version: 1,
    generatedAt: new Date().toISOString(),
    quick: o.quick,
    assumptions: { fsyncP99TargetMs: o.fsyncP99TargetMs, ...ASSUMPTIONS },
    config: { logDirs: o.logDirs, durable: o.durable, maxOpenFiles: o.maxOpenFiles, maxOpenFilesEffective },
    host,
    dirs,
    checks,
    summary,
  };
}

// ---- the host ----

function readText(path: string): string | null {
  try { return readFileSync(path, 'utf8'); } catch { return null; }
}

function readNumber(path: string): number | null {
  const t = readText(path);
  if (t === null) return null;
  const n = Number(t.trim().split(/\s+/)[0]);
  return Number.isFinite(n) ? n : null;
}

/** `Max open files  <soft>  <hard>  files` of /proc/<pid>/limits. */
function readOpenFileLimit(path: string): { soft: number | null; hard: number | null } | null {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readText(path) ?? '');
  if (!m) return null;
  const num = (s: string) => (s === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(s));
  return { soft: num(m[1]!), hard: num(m[2]!) };
}

function readHost(root: string): HostReport {
  const meminfo = readText(join(root, 'proc/meminfo')) ?? '';
  const kib = (key: string) => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(meminfo);
    return m ? Number(m[1]) * 1024 : null;
  };
  const cs = join(root, 'sys/devices/system/clocksource/clocksource0');
  return {
    hostname: os.hostname(),
    kernel: os.release(),
    cores: os.availableParallelism(),
    memTotalBytes: kib('MemTotal') ?? os.totalmem(),
    memAvailableBytes: kib('MemAvailable'),
    swapTotalBytes: kib('SwapTotal'),
    openFiles: readOpenFileLimit(join(root, 'proc/self/limits')) ?? { soft: null, hard: null },
    fileMax: readNumber(join(root, 'proc/sys/fs/file-max')),
    swappiness: readNumber(join(root, 'proc/sys/vm/swappiness')),
    dirtyRatio: readNumber(join(root, 'proc/sys/vm/dirty_ratio')),
    dirtyBackgroundRatio: readNumber(join(root, 'proc/sys/vm/dirty_background_ratio')),
    dirtyBytes: readNumber(join(root, 'proc/sys/vm/dirty_bytes')),
    dirtyBackgroundBytes: readNumber(join(root, 'proc/sys/vm/dirty_background_bytes')),
    clocksource: readText(join(cs, 'current_clocksource'))?.trim() ?? null,
    availableClocksources: (readText(join(cs, 'available_clocksource')) ?? '').trim().split(/\s+/).filter((s) => s !== ''),
  };
}

const SYSCTL_FILE = '/etc/sysctl.d/90-runnel.conf';
const sysctlFix = (key: string, value: number) => `sysctl -w ${key}=${value} && echo '${key}=${value}' >> ${SYSCTL_FILE}`;

function hostChecks(h: HostReport, limit: { soft: number | null; hard: number | null }, brokerPid: number | null, o: DoctorOptions, maxOpenFilesEffective: number): Check[] {
  const out: Check[] = [];
  const add = (check: string, value: string, recommended: string, status: Status, fix: string | null, why: string) => out.push({ scope: 'host', check, value, recommended, status, fix, why });
  add('cpu cores', String(h.cores), '>= 2', h.cores >= 2 ? 'ok' : 'warn', h.cores >= 2 ? null : 'give the broker at least 2 cores',
    'the broker runs its event loop on one core; record validation, compression and compaction run on worker threads beside it');
  const perCore = h.memTotalBytes / Math.max(1, h.cores);
  add('memory', `${gib(h.memTotalBytes)} (${gib(perCore)} per core)`, '>= 2 GiB per core', perCore >= 2 * GiB ? 'ok' : 'warn', perCore >= 2 * GiB ? null : 'add memory: the page cache serves consumers near the log end',
    'Runnel, like Kafka, writes and reads through the page cache; memory the broker does not use keeps the tail of every partition cached');

  const who = brokerPid !== null ? ` (broker pid ${brokerPid})` : ' (this shell)';
  const soft = limit.soft;
  add('open files (ulimit -n)', soft === null ? 'unknown' : `${fmtLimit(soft)}${who}`, '>= 100000', soft !== null && soft >= 100_000 ? 'ok' : 'warn',
    soft !== null && soft >= 100_000 ? null : 'ulimit -n 100000 in the broker\'s shell, LimitNOFILE=100000 in its systemd unit, or docker run --ulimit nofile=100000:100000',
    `every connection and open segment file takes a descriptor; Kafka asks for at least 100000. runnel.log.max.open.files is ${o.maxOpenFiles > 0 ? o.maxOpenFiles : `-1: half of it, here ${maxOpenFilesEffective}`}`);
  if (h.fileMax !== null) {
    add('fs.file-max', fmtLimit(h.fileMax), '>= 200000', h.fileMax >= 200_000 ? 'ok' : 'warn', h.fileMax >= 200_000 ? null : sysctlFix('fs.file-max', 200_000),
      'the whole system\'s descriptors; ENFILE fails every process, not just the broker');
  }
  if (o.maxOpenFiles > 0 && soft !== null) {
    const ok = o.maxOpenFiles <= soft / 2;
    add('runnel.log.max.open.files', String(o.maxOpenFiles), `<= ${Math.floor(soft / 2)} (half of ulimit -n)`, ok ? 'ok' : 'warn',
      ok ? null : `runnel.log.max.open.files=${Math.max(64, Math.floor(soft / 2))} or raise ulimit -n to ${o.maxOpenFiles * 2}`,
      'segment files and sockets share the descriptor limit: half is left for connections, checkpoints and replication');
  }

  const noSwap = h.swapTotalBytes === 0;
  if (h.swappiness !== null) {
    const ok = h.swappiness <= 1 || noSwap;
    add('vm.swappiness', `${h.swappiness}${noSwap ? ' (no swap configured)' : ''}`, '1', ok ? 'ok' : 'warn', ok ? null : sysctlFix('vm.swappiness', 1),
      'a swapped-out broker heap stalls every request; 1 (not 0) still lets the kernel swap before the OOM killer (Kafka\'s recommendation)');
  }
  if (h.dirtyBackgroundBytes || h.dirtyBytes) {
    add('vm.dirty_bytes', `${h.dirtyBytes} (background ${h.dirtyBackgroundBytes})`, 'ratios instead (vm.dirty_background_ratio=5, vm.dirty_ratio=60)', 'warn',
      `${sysctlFix('vm.dirty_background_ratio', 5)}; ${sysctlFix('vm.dirty_ratio', 60)}`, 'the bytes settings replace the ratios; fixed byte limits rarely match the machine\'s memory');
  } else {
    if (h.dirtyBackgroundRatio !== null) {
      const ok = h.dirtyBackgroundRatio <= 5;
      add('vm.dirty_background_ratio', String(h.dirtyBackgroundRatio), '<= 5', ok ? 'ok' : 'warn', ok ? null : sysctlFix('vm.dirty_background_ratio', 5),
        'background writeback starts early and runs steadily instead of in bursts that delay reads and fsyncs');
    }
    if (h.dirtyRatio !== null) {
      const ok = h.dirtyRatio >= 60;
      add('vm.dirty_ratio', String(h.dirtyRatio), '>= 60', ok ? 'ok' : 'warn', ok ? null : sysctlFix('vm.dirty_ratio', 60),
        'a writer is throttled once this much memory is dirty; a high ceiling absorbs produce bursts without blocking the broker');
    }
  }
  if (h.clocksource !== null) {
    const tscAvailable = h.availableClocksources.includes('tsc');
    const ok = h.clocksource === 'tsc' || !tscAvailable;
    add('clock source', h.clocksource, tscAvailable ? 'tsc' : `tsc (not offered here: ${h.availableClocksources.join(' ') || 'none'})`, ok ? 'ok' : 'warn',
      ok ? null : 'echo tsc > /sys/devices/system/clocksource/clocksource0/current_clocksource (boot: clocksource=tsc)',
      'timestamps, timeouts and latency metrics read the clock on every request; tsc is read without a system call');
  }
  return out;
}

// ---- a log dir ----

interface Mount { device: string; mountPoint: string; fsType: string; options: string[] }

/** The mount a path lives on: the longest mount point of /proc/self/mounts that contains it. */
function mountOf(path: string, root: string): Mount | null {
  const text = readText(join(root, 'proc/self/mounts')) ?? readText(join(root, 'proc/mounts')) ?? '';
  const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  let best: Mount | null = null;
  for (const line of text.split('\n')) {
    const [device, mp, fsType, options] = line.split(' ');
    if (!device || !mp || !fsType || !options) continue;
    const mountPoint = unescape(mp);
    const inside = mountPoint === '/' || path === mountPoint || path.startsWith(`${mountPoint}/`);
    // Later lines win a tie: a mount over an earlier one hides it.
    if (inside && (best === null || mountPoint.length >= best.mountPoint.length)) best = { device, mountPoint, fsType, options: options.split(',') };
  }
  return best;
}

/** The block device under a dir (major:minor of its st_dev in /sys/dev/block), with its queue settings. */
function deviceOf(path: string, root: string): DirReport['device'] {
  const dev = statSync(path, { bigint: true }).dev;
  const major = Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
  const minor = Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
  const sys = join(root, `sys/dev/block/${major}:${minor}`);
  if (!existsSync(sys)) return null;
  let name = `${major}:${minor}`;
  try { name = realpathSync(sys).split('/').pop() ?? name; } catch { /* keep major:minor */ }
  // A partition's queue is its disk's.
  const queue = existsSync(join(sys, 'queue')) ? join(sys, 'queue') : join(sys, '..', 'queue');
  const rot = readNumber(join(queue, 'rotational'));
  const sched = /\[(\S+)\]/.exec(readText(join(queue, 'scheduler')) ?? '')?.[1] ?? null;
  return { name, rotational: rot === null ? null : rot === 1, scheduler: sched };
}

/** The pid holding an flock on `<dir>/.lock` (the broker's log dir lock), from /proc/locks. */
function lockHolder(dir: string, root: string): number | null {
  let st;
  try { st = statSync(join(dir, '.lock'), { bigint: true }); } catch { return null; }
  const major = ((st.dev >> 8n) & 0xfffn) | ((st.dev >> 32n) & ~0xfffn);
  const minor = (st.dev & 0xffn) | ((st.dev >> 12n) & ~0xffn);
  for (const line of (readText(join(root, 'proc/locks')) ?? '').split('\n')) {
    const m = /^\d+:\s+(?:->\s+)?FLOCK\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)/.exec(line);
    if (m && BigInt(`0x${m[2]}`) === major && BigInt(`0x${m[3]}`) === minor && BigInt(m[4]!) === st.ino) return Number(m[1]);
  }
  return null;
}

async function measureDir(path: string, o: DoctorOptions, root: string, signal: AbortSignal): Promise<DirReport> {
  const started = performance.now();
  const mount = mountOf(realpathSync(path), root);
  const fs = statfsSync(path);
  const report: DirReport = {
    path,
    writable: false,
    error: null,
    filesystem: mount?.fsType ?? null,
    mountPoint: mount?.mountPoint ?? null,
    mountOptions: mount?.options ?? [],
    device: deviceOf(path, root),
    totalBytes: fs.blocks * fs.bsize,
    freeBytes: fs.bavail * fs.bsize,
    inUseByPid: lockHolder(path, root),
    direct: false,
    writeBytes: 0,
    writeMiBps: null,
    readMiBps: null,
    readFromPageCache: false,
    fsync: null,
    durableFits: null,
    partitionsPerDisk: null,
    elapsedMs: 0,
  };
  const seqFile = join(path, `.runnel-doctor-${process.pid}-seq.tmp`);
  const syncFile = join(path, `.runnel-doctor-${process.pid}-sync.tmp`);
  try {
    // Never fill the disk of a live broker: at most 5 % of what is free, leaving 1 GiB.
    const size = Math.floor(Math.min(o.sizeBytes, report.freeBytes * 0.05, Math.max(0, report.freeBytes - GiB)) / MiB) * MiB;
    let fd: number;
    try {
      fd = openSync(syncFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    } catch (err) {
      report.error = `not writable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      return report;
    }
    report.writable = true;
    try {
      report.fsync = await fsyncLatency(fd, o.quick ? 50 : 200, o.quick ? 500 : 2_000, signal);
    } finally {
      closeSync(fd);
      unlinkQuietly(syncFile);
    }
    if (signal.aborted) return report;
    if (size < 4 * MiB) {
      report.error = `sequential write and read not measured: ${mib(report.freeBytes)} free`;
      return report;
    }
    await sequential(seqFile, size, o.quick ? 1_000 : 3_000, report, signal);
  } catch (err) {
    // A dir that fails mid-measurement (EIO, ENOSPC from someone else) is reported, not a crash.
    report.error = `${(err as NodeJS.ErrnoException).code ?? ''} ${(err as Error).message}`.trim();
  } finally {
    unlinkQuietly(seqFile);
    unlinkQuietly(syncFile);
    report.elapsedMs = Math.round(performance.now() - started);
  }
  return report;
}

function unlinkQuietly(file: string): void {
  try { unlinkSync(file); } catch { /* not created, or already gone */ }
}

/** N appends of 4 KiB, each followed by fdatasync: what a durable produce waits for (the file grows, as a segment does). */
async function fsyncLatency(fd: number, n: number, maxMs: number, signal: AbortSignal): Promise<FsyncStats> {
  const block = Buffer.alloc(4096, 0x5a);
  const samples: number[] = [];
  const start = performance.now();
  for (let i = 0; i < n && !signal.aborted; i++) {
    writeSync(fd, block);
    const t = performance.now();
    fdatasyncSync(fd);
    samples.push(performance.now() - t);
    if (performance.now() - start > maxMs && samples.length >= 10) break;
    await turn();
  }
  samples.sort((a, b) => a - b);
  const pick = (q: number) => round2(samples[Math.min(samples.length - 1, Math.ceil(q * samples.length) - 1)] ?? 0);
  return { samples: samples.length, p50Ms: pick(0.5), p99Ms: pick(0.99), maxMs: round2(samples.at(-1) ?? 0) };
}

/**
 * Sequential write then read of `size` bytes in 1 MiB chunks (random bytes: a compressing
 * filesystem gains nothing), bounded by `maxMs` each. O_DIRECT bypasses the page cache; where it is
 * refused (tmpfs, some FUSE) the write goes through the page cache and ends with an fdatasync (so it
 * still counts the disk), and the read then comes from the page cache (flagged).
 */
async function sequential(file: string, size: number, maxMs: number, r: DirReport, signal: AbortSignal): Promise<void> {
  const CHUNK = MiB;
  let fd: number;
  let buf: Buffer | null = null;
  try {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600);
    buf = alignedBuffer(fd, CHUNK);
    if (buf === null) {
      closeSync(fd);
      unlinkSync(file);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  }
  r.direct = buf !== null;
  if (buf === null) {
    fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    buf = Buffer.allocUnsafeSlow(CHUNK);
  }
  randomFillSync(buf);
  let written = 0;
  try {
    const start = performance.now();
    while (written < size && !signal.aborted) {
      written += writeSync(fd!, buf, 0, CHUNK, written);
      if (performance.now() - start > maxMs) break;
      await turn();
    }
    fdatasyncSync(fd!);
    r.writeBytes = written;
    r.writeMiBps = round2(written / MiB / ((performance.now() - start) / 1000));
  } finally {
    closeSync(fd!);
  }
  if (signal.aborted || written === 0) return;
  const rfd = openSync(file, constants.O_RDONLY | (r.direct ? constants.O_DIRECT : 0));
  try {
    let read = 0;
    const start = performance.now();
    while (read < written && !signal.aborted) {
      const n = readSync(rfd, buf, 0, CHUNK, read);
      if (n <= 0) break;
      read += n;
      if (performance.now() - start > maxMs) break;
      await turn();
    }
    r.readMiBps = round2(read / MiB / ((performance.now() - start) / 1000));
    r.readFromPageCache = !r.direct;
  } finally {
    closeSync(rfd);
  }
}

/**
 * A `size`-byte view that O_DIRECT accepts. Node cannot ask for aligned memory, so this probes:
 * O_DIRECT refuses (EINVAL) a buffer not aligned to the device's logical block, and one of the
 * offsets 0, 8, ... 4088 into a slightly larger buffer is aligned. Null when none is (O_DIRECT
 * writes refused altogether).
 */
function alignedBuffer(fd: number, size: number): Buffer | null {
  const raw = Buffer.allocUnsafeSlow(size + 4096);
  raw.fill(0);
  for (let off = 0; off < 4096; off += 8) {
    try {
      writeSync(fd, raw, off, 4096, 0);
      return raw.subarray(off, off + size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }
  return null;
}

/**
 * How many partitions (leaders and followers) one log dir takes: the least of what its measured
 * write rate carries at `partitionWriteMiBps` each with 30 % headroom (split between the `sharing`
 * dirs on the same device), what half the memory keeps cached
 * (each partition's last `tailSeconds` of writes, so consumers near the end never read the disk),
 * and the segment files the broker keeps open.
 */
function partitionsPerDisk(d: DirReport, h: HostReport, dirs: number, sharing: number, maxOpenFiles: number): PartitionsPerDisk | null {
  if (!d.writable) return null;
  const a = ASSUMPTIONS;
  const byThroughput = d.writeMiBps === null ? null : Math.max(1, Math.floor((d.writeMiBps * a.diskUtilisation) / a.partitionWriteMiBps / sharing));
  const byMemory = Math.max(1, Math.floor((h.memTotalBytes * 0.5) / dirs / (a.partitionWriteMiBps * MiB * a.tailSeconds)));
  const byOpenFiles = Math.max(1, Math.floor(maxOpenFiles / dirs));
  const bounds: Array<[number, PartitionsPerDisk['limitedBy']]> = [[byMemory, 'memory'], [byOpenFiles, 'open files']];
  if (byThroughput !== null) bounds.unshift([byThroughput, 'throughput']);
  const [recommended, limitedBy] = bounds.reduce((a, b) => (b[0] < a[0] ? b : a));
  return { recommended, byThroughput, byMemory, byOpenFiles, limitedBy };
}

const GOOD_FS = new Set(['xfs', 'ext4']);
const VOLATILE_FS = new Set(['tmpfs', 'ramfs']);

function dirChecks(d: DirReport, o: DoctorOptions): Check[] {
  const out: Check[] = [];
  const add = (check: string, value: string, recommended: string, status: Status, fix: string | null, why: string) => out.push({ scope: d.path, check, value, recommended, status, fix, why });
  if (d.inUseByPid !== null) {
    add('in use', `by pid ${d.inUseByPid} (its .lock)`, '-', 'ok', null, 'measured beside a running broker: its I/O and the doctor\'s share the disk, so figures are lower than on an idle disk');
  }
  add('writable', d.writable ? 'yes' : (d.error ?? 'no'), 'yes', d.writable ? 'ok' : 'fail', d.writable ? null : `chown/chmod the dir for the broker's user, or remount it read-write (mount -o remount,rw ${d.mountPoint ?? d.path})`,
    'the broker writes segments, indexes and checkpoints here; a dir it cannot write is offline');
  const fs = d.filesystem ?? 'unknown';
  const fsStatus: Status = GOOD_FS.has(fs) ? 'ok' : 'warn';
  add('filesystem', `${fs}${d.mountPoint ? ` on ${d.mountPoint}` : ''}`, 'xfs or ext4', fsStatus,
    fsStatus === 'ok' ? null : VOLATILE_FS.has(fs) ? 'put the log dir on a disk: this filesystem is lost at reboot' : fs === 'overlay' ? 'mount a volume for the log dir (a container\'s writable layer is slow and goes with the container)' : 'use xfs or ext4 for log dirs',
    'xfs and ext4 are what Kafka and Redpanda run on; copy-on-write, network and in-memory filesystems change fsync cost or lose data');
  const opts = d.mountOptions;
  if (opts.length > 0) {
    const problems: string[] = [];
    if (!opts.includes('noatime')) problems.push('noatime missing');
    if (opts.includes('sync') || opts.includes('dirsync')) problems.push('sync makes every write synchronous');
    if (opts.includes('ro')) problems.push('read-only');
    if (opts.some((x) => x === 'data=journal')) problems.push('data=journal writes every byte twice');
    const status: Status = opts.includes('ro') ? 'fail' : problems.length > 0 && !VOLATILE_FS.has(fs) ? 'warn' : 'ok';
    add('mount options', opts.join(','), 'noatime', status,
      status === 'ok' ? null : `mount -o remount,noatime${opts.includes('ro') ? ',rw' : ''} ${d.mountPoint} and the same options in /etc/fstab`,
      `${problems.length > 0 ? `${problems.join('; ')}. ` : ''}noatime saves a metadata write per read (Kafka's recommendation); relatime still updates atime once a day per file`);
  }
  if (d.device !== null && d.device.scheduler !== null) {
    const ssd = d.device.rotational === false;
    const ok = !ssd || d.device.scheduler === 'none' || d.device.scheduler === 'noop' || d.device.scheduler === 'mq-deadline';
    add('i/o scheduler', `${d.device.scheduler} (${d.device.name}, ${d.device.rotational === null ? 'unknown type' : ssd ? 'ssd' : 'rotational'})`, ssd ? 'none or mq-deadline' : 'mq-deadline', ok ? 'ok' : 'warn',
      ok ? null : `echo none > /sys/block/${d.device.name}/queue/scheduler`, 'an SSD or NVMe device orders requests itself; a reordering scheduler adds latency (rpk\'s disk_scheduler tuner)');
  }
  const freePct = d.totalBytes > 0 ? d.freeBytes / d.totalBytes : 0;
  const spaceStatus: Status = d.freeBytes < GiB || freePct < 0.05 ? 'fail' : freePct < 0.2 ? 'warn' : 'ok';
  add('free space', `${gib(d.freeBytes)} of ${gib(d.totalBytes)} (${Math.round(freePct * 100)} %)`, '>= 20 % free', spaceStatus,
    spaceStatus === 'ok' ? null : 'lower retention.ms / retention.bytes, move partitions to another dir (kafka-reassign-partitions with log dirs), or add disk',
    'a full dir fails produce with KAFKA_STORAGE_ERROR until space returns; segments roll and retention frees space only a segment at a time');
  if (!d.writable) return out;
  if (d.writeMiBps !== null) {
    add('sequential write', `${d.writeMiBps} MiB/s (${mib(d.writeBytes)}${d.direct ? ', O_DIRECT' : ', page cache + fdatasync'})`, '-', 'ok', null,
      'what one disk can absorb; every partition on it shares this');
  }
  if (d.readMiBps !== null) {
    add('sequential read', `${d.readMiBps} MiB/s${d.readFromPageCache ? ' (from the page cache: no O_DIRECT here)' : ' (O_DIRECT)'}`, '-', 'ok', null,
      'consumers behind the page cache (catch-up reads, new replicas) read at this rate');
  }
  if (d.error !== null) add('measurement', d.error, '-', 'warn', null, 'free space or errors kept the doctor from measuring this dir in full');
  if (d.fsync !== null) {
    const f = d.fsync;
    const fits = d.durableFits === true;
    add('fdatasync latency', `p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, max ${f.maxMs} ms (${f.samples} x 4 KiB)`, `p99 <= ${o.fsyncP99TargetMs} ms for runnel.durable`, 'ok', null,
      'each durable produce waits for one fdatasync (shared by the appends that arrive during the previous one: group commit)');
    const status: Status = fits || !o.durable ? 'ok' : 'warn';
    add('runnel.durable', `${fits ? 'fits' : 'does not fit'} this disk (configured: ${o.durable})`, fits ? 'true if you want fsync before acks' : 'false, with replication (acks=all, min.insync.replicas=2)', status,
      status === 'ok' ? null : 'runnel.durable=false, or move the log dir to a disk with power-loss-protected write cache (datacenter SSD/NVMe)',
      fits
        ? `durable mode adds about ${f.p50Ms} ms (p99 ${f.p99Ms} ms) to each acknowledgement; runnel.group.commit.ms trades a little more latency for fewer fdatasyncs`
        : `p99 ${f.p99Ms} ms > ${o.fsyncP99TargetMs} ms: every durable produce would wait that long; Kafka relies on replication rather than fsync`);
  }
  const p = d.partitionsPerDisk;
  if (p !== null) {
    add('partitions per disk', `up to ${p.recommended} (limited by ${p.limitedBy})`, '-', 'ok', null,
      `at ${ASSUMPTIONS.partitionWriteMiBps} MiB/s per partition: write rate x ${ASSUMPTIONS.diskUtilisation} gives ${p.byThroughput ?? 'unmeasured'}, half the memory keeps ${ASSUMPTIONS.tailSeconds} s of each cached for ${p.byMemory}, open segment files allow ${p.byOpenFiles}`);
  }
  return out;
}

// ---- output ----

const round2 = (n: number) => Math.round(n * 100) / 100;
const gib = (b: number) => `${(b / GiB).toFixed(1)} GiB`;
const mib = (b: number) => `${Math.round(b / MiB)} MiB`;
const fmtLimit = (n: number) => (n >= Number.MAX_SAFE_INTEGER ? 'unlimited' : String(n));

/** Plain columns as Kafka's tools print them, then what to fix, then the recommendations. */
export function formatReport(r: DoctorReport): string {
  const header = ['SCOPE', 'CHECK', 'VALUE', 'RECOMMENDED', 'STATUS'];
  const rows = r.checks.map((c) => [c.scope, c.check, c.value, c.recommended, c.status.toUpperCase()]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) => `${cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`;
  let out = line(header) + rows.map(line).join('');
  const todo = r.checks.filter((c) => c.status !== 'ok');
  if (todo.length > 0) {
    out += `\nTO FIX (${r.summary.fail} fail, ${r.summary.warn} warn)\n`;
    for (const c of todo) {
      out += `${c.status.toUpperCase()} ${c.scope === 'host' ? '' : `${c.scope}: `}${c.check} is ${c.value}, recommended ${c.recommended}\n`;
      if (c.fix) out += `  fix: ${c.fix}\n`;
      out += `  why: ${c.why}\n`;
    }
  }
  out += '\nRECOMMENDATIONS\n';
  for (const d of r.dirs) {
    if (d.fsync !== null) {
      out += d.durableFits
        ? `${d.path}: runnel.durable=true fits (fdatasync p99 ${d.fsync.p99Ms} ms <= ${r.assumptions.fsyncP99TargetMs} ms); it adds about ${d.fsync.p50Ms} ms to each acknowledgement\n`
        : `${d.path}: keep runnel.durable=false (fdatasync p99 ${d.fsync.p99Ms} ms > ${r.assumptions.fsyncP99TargetMs} ms); use replication (acks=all, min.insync.replicas=2) for durability\n`;
    }
    if (d.partitionsPerDisk !== null) out += `${d.path}: up to ${d.partitionsPerDisk.recommended} partitions on this disk (limited by ${d.partitionsPerDisk.limitedBy}, at ${r.assumptions.partitionWriteMiBps} MiB/s each)\n`;
  }
  out += `runnel.log.max.open.files: ${r.config.maxOpenFiles > 0 ? r.config.maxOpenFiles : `-1 (half of ulimit -n: ${r.config.maxOpenFilesEffective})`}\n`;
  out += `${r.summary.ok} ok, ${r.summary.warn} warn, ${r.summary.fail} fail${r.quick ? ' (--quick)' : ''}\n`;
  return out;
}
