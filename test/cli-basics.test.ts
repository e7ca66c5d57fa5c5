// The small things a newcomer meets in the first hour: `runnel --version`; an unknown
// configuration key is one warning line naming the key it resembles, and the start goes on (as
// Kafka does); logs are readable lines on a terminal and JSON otherwise, and a bad log level is one
// line; `runnel perf ... | head` ends quietly.
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runKcat } from './helpers/kcat.ts';
import { freePort } from './helpers/ports.ts';
import { startProcess, type Started } from './helpers/process.ts';
import { until } from './helpers/until.ts';
import { descendants } from './helpers/wrappers.ts';

const runnel = join(import.meta.dirname, '../packages/cli/bin/runnel.ts');
const run = promisify(execFile);
const failed = (p: Promise<unknown>) => p.then(() => null, (e: { code: number; stdout: string; stderr: string }) => e);
const readyLine = /"listener":"PLAINTEXT:\/\/127\.0\.0\.1:(\d+)"[^\n]*runnel is ready/;

let dir: string;
beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'runnel-cli-basics-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('runnel --version', () => {
  it('prints the version of the cli package', async () => {
    const { version } = JSON.parse(readFileSync(join(import.meta.dirname, '../packages/cli/package.json'), 'utf8')) as { version: string };
    const { stdout } = await run(process.execPath, [runnel, '--version']);
    expect(stdout).toBe(`${version}\n`);
  });
});

describe('unknown configuration keys', () => {
  it('warn one line each, with the known key a typo resembles, and the start goes on', async () => {
    const props = join(dir, 'server.properties');
    writeFileSync(props, 'zookeeper.connect=localhost:2181\nnum.partiton=3\n');
    const broker = await startProcess(process.execPath, [runnel, 'start', '--config', props,
      '--set', 'listeners=PLAINTEXT://127.0.0.1:0', '--set', `log.dirs=${join(dir, 'unknown')}`, '--set', 'retention.ms=1000'],
    { env: { KAFKA_AUTO_CREATE_TOPIC_ENABLE: 'false' } });
    try {
      await broker.waitFor(readyLine, 30_000);
      const warnings = broker.output().split('\n').filter((l) => l.includes('"level":40')).map((l) => (JSON.parse(l) as { msg: string }).msg).sort();
      expect(warnings).toEqual([
        'unknown configuration key auto.create.topic.enable ignored (did you mean auto.create.topics.enable?)',
        'unknown configuration key num.partiton ignored (did you mean num.partitions?)',
        'unknown configuration key retention.ms ignored (did you mean log.retention.ms?)',
        'unknown configuration key zookeeper.connect ignored',
      ]);
    } finally {
      expect(await broker.stop()).toBe(0);
    }
  });
});

describe('logs', () => {
  it('are readable lines when stderr is a terminal, JSON otherwise', async () => {
    // script(1) gives the broker a pseudo-terminal, as a person's shell has.
    const logDir = join(dir, 'tty');
    const cmd = `exec ${process.execPath} ${runnel} start --set listeners=PLAINTEXT://127.0.0.1:0 --set log.dirs=${logDir}`;
    const term = await startProcess('script', ['-qec', cmd, '/dev/null'], { env: { RUNNEL_LOG_FORMAT: undefined } });
    try {
      const m = await term.waitFor(/^\d\d:\d\d:\d\d\.\d{3} INFO  runnel: runnel is ready listener=PLAINTEXT:\/\/127\.0\.0\.1:\d+ /m, 30_000);
      expect(m).not.toBeNull();
      expect(term.output()).not.toMatch(/^\{"level"/m);
      const broker = await until('the broker under script', () => descendants(term.child.pid!).find((p) => p.cmd.includes('runnel.ts start')), 5_000);
      process.kill(broker.pid, 'SIGTERM');
      await term.waitFor(/^\d\d:\d\d:\d\d\.\d{3} INFO  runnel: runnel stopped/m, 30_000);
    } finally {
      await term.stop();
    }
  });

  it('take RUNNEL_LOG_FORMAT and RUNNEL_LOG_LEVEL; a bad value is one line and exit code 2', async () => {
    const badLevel = await failed(run(process.execPath, [runnel, 'start'], { env: { ...process.env, RUNNEL_LOG_LEVEL: 'verbose' } }));
    expect(badLevel?.code).toBe(2);
    expect(badLevel?.stderr).toBe('runnel: RUNNEL_LOG_LEVEL=verbose: expected one of fatal, error, warn, info, debug, trace, silent\n');
    const badFormat = await failed(run(process.execPath, [runnel, 'broker'], { env: { ...process.env, RUNNEL_LOG_FORMAT: 'xml' } }));
    expect(badFormat?.code).toBe(2);
    expect(badFormat?.stderr).toBe('runnel: RUNNEL_LOG_FORMAT=xml: expected json or pretty\n');

    // warn: the info lines (ready) are gone, the warning stays, and it is a pretty line on a pipe.
    const port = await freePort();
    const broker = await startProcess(process.execPath, [runnel, 'start', '--set', `listeners=PLAINTEXT://127.0.0.1:${port}`, '--set', `log.dirs=${join(dir, 'levels')}`, '--set', 'num.partiton=2'],
      { env: { RUNNEL_LOG_LEVEL: 'warn', RUNNEL_LOG_FORMAT: 'pretty' } });
    try {
      await broker.waitFor(/WARN  runnel: unknown configuration key num\.partiton ignored \(did you mean num\.partitions\?\)\n/, 30_000);
      await until('the broker to serve', async () => (await runKcat(['-b', `127.0.0.1:${port}`, '-L', '-m', '2'])).code === 0, 30_000);
      expect(broker.output()).not.toContain('INFO');
    } finally {
      expect(await broker.stop()).toBe(0);
    }
    expect(broker.output()).not.toContain('INFO');
  });
});

describe('runnel perf | head', () => {
  let broker: Started;
  let bootstrap: string;
  beforeAll(async () => {
    broker = await startProcess(process.execPath, [runnel, 'start', '--set', 'listeners=PLAINTEXT://127.0.0.1:0', '--set', `log.dirs=${join(dir, 'perf')}`]);
    bootstrap = `127.0.0.1:${(await broker.waitFor(readyLine, 30_000))[1]}`;
    await run(process.execPath, [runnel, 'perf', 'produce', '--topic', 'piped', '--num-records', '20000', '--record-size', '100', '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${bootstrap}`]);
  });
  afterAll(async () => { await broker?.stop(); });

  it('ends quietly with exit code 0 when the reader goes away', async () => {
    // head takes the header and exits; perf's next line meets a closed pipe (EPIPE).
    const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${runnel}" perf consume --bootstrap-server ${bootstrap} --topic piped --messages 20000 --show-detailed-stats --reporting-interval 1 | head -1`], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toMatch(/^time, threadId, data\.consumed\.in\.MB/);
    expect(r.stdout.split('\n')).toHaveLength(2);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
