// A real Prometheus server (the Debian package hack/install-packages.sh installs) on loopback, scraping static
// targets and evaluating rule files, for tests of the chart's alert rules and dashboard queries.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { eventually } from './eventually.js';
import { freeLoopbackPort } from './free-port.js';

export const PROMETHEUS = '/usr/bin/prometheus';
export const PROMTOOL = '/usr/bin/promtool';

export function requirePrometheus(): void {
  for (const binary of [PROMETHEUS, PROMTOOL])
    if (!existsSync(binary))
      throw new Error(`${binary} not found: run npm run setup (it installs the Debian package prometheus)`);
}

export interface PrometheusOptions {
  /** Scratch directory: config, TSDB and log. */
  dir: string;
  /** job name -> host:port targets (plain HTTP /metrics). */
  jobs: Record<string, string[]>;
  /** Rule files (Prometheus rule-file YAML: {groups: [...]}) to load. */
  ruleFiles?: string[];
  /** Scrape and rule evaluation interval, e.g. '1s'. */
  interval: string;
}

export interface PromSeries {
  metric: Record<string, string>;
  values?: [number, string][];
  value?: [number, string];
}

export interface Prometheus {
  url: string;
  /** An instant query's result vector (throws on a query error). */
  query(expr: string): Promise<PromSeries[]>;
  /** A range query's matrix, as Grafana's time series panels run it. */
  queryRange(expr: string, startMs: number, endMs: number, stepSeconds: number): Promise<PromSeries[]>;
  /** GET /api/v1/<path>'s data. */
  api<T>(path: string): Promise<T>;
  stop(): Promise<void>;
}

async function apiGet<T>(url: string): Promise<T> {
  const response = await fetch(url);
  const body = (await response.json()) as { status: string; data: T; error?: string; errorType?: string };
  if (body.status !== 'success') throw new Error(`${url}: ${body.errorType ?? ''} ${body.error ?? ''}`);
  return body.data;
}

export async function startPrometheus(options: PrometheusOptions): Promise<Prometheus> {
  requirePrometheus();
  mkdirSync(options.dir, { recursive: true });
  const config = join(options.dir, 'prometheus.yml');
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: options.interval, evaluation_interval: options.interval },
      rule_files: options.ruleFiles ?? [],
      scrape_configs: Object.entries(options.jobs).map(([job, targets]) => ({
        job_name: job,
        scrape_timeout: options.interval,
        static_configs: [{ targets }],
      })),
    }),
  );
  const port = await freeLoopbackPort();
  const logPath = join(options.dir, 'prometheus.log');
  const log = createWriteStream(logPath);
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(options.dir, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--web.enable-lifecycle',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await eventually(
      'prometheus ready',
      async () => {
        if (exited !== undefined) throw new Error(`exited with ${exited}: ${readFileSync(logPath, 'utf8')}`);
        return (await fetch(`${url}/-/ready`)).ok ? true : undefined;
      },
      60_000,
      200,
    );
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    url,
    api: (path) => apiGet(`${url}/api/v1/${path}`),
    query: (expr) =>
      apiGet<{ result: PromSeries[] }>(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`).then(
        (d) => d.result,
      ),
    queryRange: (expr, startMs, endMs, step) =>
      apiGet<{ result: PromSeries[] }>(
        `${url}/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${startMs / 1000}&end=${endMs / 1000}&step=${step}`,
      ).then((d) => d.result),
    async stop() {
      if (exited === undefined) child.kill('SIGTERM');
      await exit;
      log.end();
    },
  };
}
