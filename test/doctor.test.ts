// `runnel doctor` (issue 15, item 2): it measures real temp dirs (O_DIRECT write and read,
// fdatasync latency) and the host, prints a table or JSON, removes its temp files (also on Ctrl-C),
// stays within seconds with --quick, refuses a dir that does not exist in one line (exit 2), reports
// a read-only dir instead of crashing, and runs beside a live broker without disturbing it.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DoctorReport } from '../packages/cli/src/doctor.ts';
import { startBroker } from './helpers/broker.ts';
import { runKcat } from './helpers/kcat.ts';
import { mountTmpfs } from './helpers/tmpfs.ts';
import { until } from './helpers/until.ts';

const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');

interface Run { code: number; stdout: string; stderr: string; ms: number }

/** Runs `runnel doctor ...` (optionally under `prlimit --nofile=N`) and collects its exit code and output. */
function doctor(args: string[], nofile?: number): Promise<Run> {
  const [cmd, argv] = nofile === undefined
    ? [process.execPath, [runnel, 'doctor', ...args]]
    : ['prlimit', [`--nofile=${nofile}:${nofile}`, process.execPath, runnel, 'doctor', ...args]];
  const start = performance.now();
  return new Promise((resolve) => {
    execFile(cmd, argv, { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr, ms: performance.now() - start });
    });
  });
}

let root: string;
let a: string;
let b: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'runnel-doctor-'));
  a = join(root, 'a');
  b = join(root, 'b');
  mkdirSync(a);
  mkdirSync(b);
});
afterAll(async () => { await rm(root, { recursive: true, force: true }); });

/** The filesystem type /proc/self/mounts gives for the longest mount point containing `path`. */
function fsTypeOf(path: string): string {
  let best = { mp: '', type: '' };
  for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
    const [, mp, type] = line.split(' ');
    if (mp && type && (mp === '/' || path === mp || path.startsWith(`${mp}/`)) && mp.length >= best.mp.length) best = { mp, type };
  }
  return best.type;
}

describe('runnel doctor', () => {
  it('measures two dirs and the host as JSON, removes its temp files, and takes seconds with --quick', async () => {
    const r = await doctor(['--log-dirs', `${a},${b}`, '--quick', '--json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(30_000);
    const report = JSON.parse(r.stdout) as DoctorReport;
    expect(report.version).toBe(1);
    expect(report.quick).toBe(true);
    expect(report.config.logDirs).toEqual([a, b]);
    expect(report.host.cores).toBeGreaterThan(0);
    expect(report.host.memTotalBytes).toBeGreaterThan(0);
    expect(report.host.swappiness).toBe(Number(readFileSync('/proc/sys/vm/swappiness', 'utf8')));
    expect(report.host.clocksource).toBe(readFileSync('/sys/devices/system/clocksource/clocksource0/current_clocksource', 'utf8').trim());
    expect(report.dirs.map((d) => d.path)).toEqual([a, b]);
    for (const d of report.dirs) {
      expect(d.writable).toBe(true);
      expect(d.error).toBeNull();
      expect(d.filesystem).toBe(fsTypeOf(d.path));
      expect(d.freeBytes).toBeGreaterThan(0);
      expect(d.inUseByPid).toBeNull();
      // --quick: at most 32 MiB and a second each way.
      expect(d.writeBytes).toBeGreaterThan(0);
      expect(d.writeBytes).toBeLessThanOrEqual(32 * 1024 * 1024);
      expect(d.writeMiBps).toBeGreaterThan(0);
      expect(d.readMiBps).toBeGreaterThan(0);
      expect(d.readFromPageCache).toBe(!d.direct);
      expect(d.fsync!.samples).toBeGreaterThanOrEqual(10);
      expect(d.fsync!.p50Ms).toBeLessThanOrEqual(d.fsync!.p99Ms);
      expect(d.fsync!.p99Ms).toBeLessThanOrEqual(d.fsync!.maxMs);
      expect(d.durableFits).toBe(d.fsync!.p99Ms <= report.assumptions.fsyncP99TargetMs);
      const p = d.partitionsPerDisk!;
      expect(p.recommended).toBe(Math.min(p.byThroughput!, p.byMemory, p.byOpenFiles));
      // Both dirs are on one device: each gets half of its write rate (a dir whose device is not
      // known, e.g. on tmpfs, counts alone).
      expect(d.device?.name).toBe(report.dirs[0]!.device?.name);
      const sharing = d.device === null ? 1 : 2;
      expect(p.byThroughput).toBe(Math.max(1, Math.floor((d.writeMiBps! * report.assumptions.diskUtilisation) / report.assumptions.partitionWriteMiBps / sharing)));
      expect(readdirSync(d.path)).toEqual([]);
    }
    const names = report.checks.filter((c) => c.scope === 'host').map((c) => c.check);
    expect(names).toEqual(expect.arrayContaining(['cpu cores', 'memory', 'open files (ulimit -n)', 'vm.swappiness', 'clock source']));
    expect(names.some((n) => n.startsWith('vm.dirty'))).toBe(true);
    for (const dir of [a, b]) {
      const checks = report.checks.filter((c) => c.scope === dir).map((c) => c.check);
      expect(checks).toEqual(expect.arrayContaining(['writable', 'filesystem', 'free space', 'sequential write', 'sequential read', 'fdatasync latency', 'runnel.durable', 'partitions per disk']));
    }
    for (const c of report.checks) {
      expect(['ok', 'warn', 'fail']).toContain(c.status);
      expect(c.why.length).toBeGreaterThan(0);
      // Whatever is not ok says how to fix it.
      if (c.status !== 'ok' && c.check !== 'measurement') expect(c.fix).toMatch(/\S/);
    }
    const counted = { ok: 0, warn: 0, fail: 0 };
    for (const c of report.checks) counted[c.status]++;
    expect(report.summary).toEqual(counted);
  }, 60_000);

  it('prints a table with a row per check, what to fix and the recommendations; reads log.dirs and limits from the config', async () => {
    // Under a known descriptor limit: runnel.log.max.open.files=800 is more than half of 1000.
    const r = await doctor(['--set', `log.dirs=${a},${b}`, '--set', 'runnel.durable=true', '--set', 'runnel.log.max.open.files=800', '--quick'], 1000);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const lines = r.stdout.split('\n');
    expect(lines[0]).toMatch(/^SCOPE\s+CHECK\s+VALUE\s+RECOMMENDED\s+STATUS$/);
    const statusColumn = lines[0]!.indexOf('STATUS');
    const rows = lines.slice(1, lines.indexOf(''));
    for (const row of rows) expect(row.slice(statusColumn)).toMatch(/^(OK|WARN|FAIL)$/);
    expect(rows.find((l) => l.startsWith('host') && l.includes('open files (ulimit -n)'))).toMatch(/1000 \(this shell\)\s+>= 100000\s+WARN$/);
    expect(rows.find((l) => l.includes('runnel.log.max.open.files'))).toMatch(/800\s+<= 500 \(half of ulimit -n\)\s+WARN$/);
    for (const dir of [a, b]) {
      expect(rows.filter((l) => l.startsWith(dir)).map((l) => l.slice(dir.length).trim().split(/\s{2,}/)[0])).toEqual(
        expect.arrayContaining(['writable', 'filesystem', 'sequential write', 'fdatasync latency', 'runnel.durable', 'partitions per disk']));
      expect(rows.find((l) => l.startsWith(dir) && /\s{2}runnel\.durable\s{2}/.test(l))).toMatch(/\(configured: true\)/);
    }
    expect(r.stdout).toMatch(/\nTO FIX \(\d+ fail, \d+ warn\)\nWARN open files \(ulimit -n\) is 1000 \(this shell\), recommended >= 100000\n {2}fix: ulimit -n 100000/);
    expect(r.stdout).toContain('  fix: runnel.log.max.open.files=500 or raise ulimit -n to 1600\n');
    const recs = r.stdout.slice(r.stdout.indexOf('\nRECOMMENDATIONS\n'));
    for (const dir of [a, b]) {
      expect(recs).toMatch(new RegExp(`\n${dir}: (runnel\\.durable=true fits|keep runnel\\.durable=false) \\(fdatasync p99 [\\d.]+ ms`));
      expect(recs).toMatch(new RegExp(`\n${dir}: up to \\d+ partitions on this disk \\(limited by (throughput|memory|open files), at 1 MiB/s each\\)`));
    }
    expect(recs).toContain('\nrunnel.log.max.open.files: 800\n');
    expect(recs).toMatch(/\n\d+ ok, \d+ warn, \d+ fail \(--quick\)\n$/);
    expect(readdirSync(a)).toEqual([]);
    expect(readdirSync(b)).toEqual([]);
  }, 60_000);

  it('refuses a log dir that does not exist in one line, exit code 2, measuring nothing', async () => {
    const missing = join(root, 'missing');
    const r = await doctor(['--log-dirs', `${a},${missing}`, '--quick']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(`runnel: log dir ${missing} does not exist (runnel start creates it; doctor measures an existing dir on the disk it will use)\n`);
    const bad = await doctor(['--quick', '--fsync-target-ms', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
  }, 60_000);

  it('reports a read-only dir as a failed check and still measures the others', async () => {
    // Root ignores permission bits, so a read-only mount it is (as the full-disk tests do).
    const ro = process.getuid?.() === 0 ? mountTmpfs(1, 'runnel-doctor-ro-') : null;
    let dir = ro?.path;
    if (ro) {
      execFileSync('mount', ['-o', 'remount,ro', ro.path]);
    } else {
      dir = join(root, 'readonly');
      mkdirSync(dir, { mode: 0o555 });
    }
    try {
      const r = await doctor(['--log-dirs', `${dir},${a}`, '--quick', '--json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const report = JSON.parse(r.stdout) as DoctorReport;
      const [bad, good] = report.dirs;
      expect(bad!.writable).toBe(false);
      expect(bad!.error).toMatch(/^not writable: (EROFS|EACCES)$/);
      expect(bad!.fsync).toBeNull();
      expect(bad!.partitionsPerDisk).toBeNull();
      const writable = report.checks.find((c) => c.scope === dir && c.check === 'writable')!;
      expect(writable.status).toBe('fail');
      expect(writable.fix).toMatch(/chmod|remount/);
      expect(good!.writable).toBe(true);
      expect(good!.fsync!.samples).toBeGreaterThan(0);
    } finally {
      ro?.unmount();
    }
  }, 60_000);

  it('Ctrl-C mid-measurement removes its temp file and exits 130', async () => {
    const dir = join(root, 'interrupted');
    mkdirSync(dir);
    // Not --quick, and 1 GiB: 200 fdatasyncs, then up to 3 s of writing and 3 s of reading, long enough to interrupt.
    const child = spawn(process.execPath, [runnel, 'doctor', '--log-dirs', dir, '--size-mib', '1024'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => { stderr += c.toString(); });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until('a doctor temp file', () => readdirSync(dir).some((n) => n.startsWith('.runnel-doctor-')), 30_000);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toBe('runnel doctor: interrupted; its temp files are removed\n');
    expect(readdirSync(dir)).toEqual([]);
  }, 60_000);

  it('runs beside a live broker: finds it by its .lock, leaves the lock and the data alone, and the broker keeps serving', async () => {
    const broker = await startBroker({ set: ['num.partitions=1'] });
    try {
      const produced = await runKcat(['-b', broker.bootstrap, '-P', '-t', 'doctor', '-K:'], { input: 'k1:before\n' });
      expect(produced.code, produced.stderr).toBe(0);
      const before = readdirSync(broker.logDir).sort();
      const r = await doctor(['--log-dirs', broker.logDir, '--quick', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const report = JSON.parse(r.stdout) as DoctorReport;
      expect(report.dirs[0]!.inUseByPid).toBe(broker.process.child.pid);
      expect(report.checks.find((c) => c.check === 'in use')!.value).toBe(`by pid ${broker.process.child.pid} (its .lock)`);
      // The broker's own descriptor limit is the one that counts.
      expect(report.checks.find((c) => c.check === 'open files (ulimit -n)')!.value).toMatch(new RegExp(`\\(broker pid ${broker.process.child.pid}\\)$`));
      expect(readdirSync(broker.logDir).sort()).toEqual(before);
      const more = await runKcat(['-b', broker.bootstrap, '-P', '-t', 'doctor', '-K:'], { input: 'k2:after\n' });
      expect(more.code, more.stderr).toBe(0);
      const consumed = await runKcat(['-b', broker.bootstrap, '-C', '-t', 'doctor', '-e', '-f', '%k=%s\n']);
      expect(consumed.stdout).toBe('k1=before\nk2=after\n');
    } finally {
      await broker.cleanup();
    }
    expect(broker.process.output()).not.toMatch(/"level":(50|60)/);
  }, 90_000);
});
