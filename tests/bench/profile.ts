/**
 * BENCH_PROFILE=1: where a task's time goes, next to its baseline's. Each measured process runs with
 * --cpu-prof; every sample of its .cpuprofile is attributed to one category by its stack:
 *   1. a frame of Node's CJS loader `wrapSafe` anywhere on the stack: V8 parsing and compiling a
 *      file ('compiling JavaScript'); else `compileForInternalLoader` anywhere: a Node module being
 *      compiled and run for the first time ('loading Node modules');
 *   2. else the first frame from the leaf in a file (not Node's own code): task-lib, MSAL, the task's
 *      own code, the baseline script's own code, or the bench's probe (preloaded into both); a file
 *      not known here makes the sample 'other', not the known file that called it;
 *   3. else the first frame from the leaf that Node's internals name: start-up, loading Node
 *      modules, TLS/HTTP/sockets; or V8's pseudo-frames (garbage collector), (idle), (program);
 *   4. else 'other' (kept small; its largest frames are printed so that a gap shows).
 * V8 compiles most functions lazily, on their first call, and its profiler counts that compiling to
 * the calling frame: a category's time includes compiling the functions its code calls first.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const CATEGORIES = [
  'Node start-up',
  'loading Node modules',
  'compiling JavaScript',
  'task-lib',
  'MSAL',
  "the task's own code",
  "the script's own code",
  "the bench's probe",
  'TLS, HTTP and sockets',
  'GC',
  'waiting (idle)',
  'V8 and native (program)',
  'other',
] as const;
export type Category = (typeof CATEGORIES)[number];

export interface CpuProfile {
  nodes: { id: number; callFrame: { url: string; functionName: string }; children?: number[] }[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One profiled run: ms per category, the total sampled, and the 'other' time by the frame that made it so. */
export interface Attribution {
  ms: Record<Category, number>;
  totalMs: number;
  other: Map<string, number>;
}

/** The files whose frames count as a run's own code, by URL: a task folder's bundles, or a script. */
export function ownFiles(entry: string, probe: string, isTask: boolean): Map<string, Category> {
  const url = (f: string) => pathToFileURL(f).href;
  const own = new Map<string, Category>([[url(probe), "the bench's probe"]]);
  if (!isTask) {
    own.set(url(entry), "the script's own code");
    return own;
  }
  const dir = path.dirname(entry);
  const byName: Record<string, Category> = {
    'index.js': "the task's own code",
    'post.js': "the task's own code",
    'refresher.js': "the task's own code",
    'task-lib.js': 'task-lib',
    'task-lib-extras.js': 'task-lib',
    'msal.js': 'MSAL',
    'jsonwebtoken.js': 'MSAL',
  };
  // A bundle not named here stays unknown: its frames count as 'other', and the report names it.
  for (const [f, c] of Object.entries(byName)) own.set(url(path.join(dir, f)), c);
  return own;
}

const STARTUP = /^node:internal\/(bootstrap\/|process\/pre_execution$|main\/|modules\/run_main$)/;
const NET = /^node:(_tls_\w+|tls|net|_http_\w+|https?|dns|internal\/(tls\/\w+|http|net|dns\/\w+|stream_base_commons))$/;

/** Rule 3: what a frame of Node (or V8) says about the sample, if anything. */
function internal(frame: { url: string; functionName: string }): Category | undefined {
  const { url, functionName: fn } = frame;
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(idle)') return 'waiting (idle)';
  if (fn === '(program)') return 'V8 and native (program)';
  if (url === 'node:internal/bootstrap/realm' && /^(requireBuiltin|compileForInternalLoader|requireWithFallbackInDeps)$/.test(fn)) return 'loading Node modules';
  if (NET.test(url)) return 'TLS, HTTP and sockets';
  if (STARTUP.test(url)) return 'Node start-up';
  return undefined;
}

/** Attributes every sample of `profile`; `own` maps file URLs to the run's own categories. */
export function attribute(profile: CpuProfile, own: Map<string, Category>): Attribution {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const fileUrl = (u: string) => (u.startsWith('/') ? pathToFileURL(u).href : u);

  const frameName = (f: { url: string; functionName: string }) => `${f.url || '(no url)'} ${f.functionName || '(anonymous)'}`;
  /** A sample's category, and for 'other' the frame that made it so (an unknown file's, or the leaf). */
  const memo = new Map<number, { c: Category; why?: string }>();
  const categorise = (leaf: number): { c: Category; why?: string } => {
    const known = memo.get(leaf);
    if (known) return known;
    let compile: Category | undefined;
    let code: { c: Category; why?: string } | undefined;
    let node: Category | undefined;
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) {
      const f = byId.get(id)!.callFrame;
      if (f.url === 'node:internal/modules/cjs/loader' && f.functionName === 'wrapSafe') compile = 'compiling JavaScript';
      else if (!compile && f.url === 'node:internal/bootstrap/realm' && f.functionName === 'compileForInternalLoader') compile = 'loading Node modules';
      if (!code && (f.url.startsWith('file:') || f.url.startsWith('/'))) {
        const c = own.get(fileUrl(f.url));
        code = c ? { c } : { c: 'other', why: `${path.relative(process.cwd(), fileURLToPath(fileUrl(f.url)))} (a file the bench does not know)` };
      }
      node ??= internal(f);
    }
    const r = compile ? { c: compile } : code ?? (node ? { c: node } : { c: 'other' as const, why: frameName(byId.get(leaf)!.callFrame) });
    memo.set(leaf, r);
    return r;
  };

  const ms = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const other = new Map<string, number>();
  // Sample i lasts until sample i + 1 (the last one until the profile's end), as DevTools counts it.
  const times: number[] = [];
  let t = profile.startTime;
  for (const d of profile.timeDeltas) times.push((t += d));
  let totalMs = 0;
  profile.samples.forEach((id, i) => {
    const dur = Math.max(0, (i + 1 < times.length ? times[i + 1] : profile.endTime) - times[i]) / 1000;
    const { c, why } = categorise(id);
    ms[c] += dur;
    totalMs += dur;
    if (why) other.set(why, (other.get(why) ?? 0) + dur);
  });
  return { ms, totalMs, other };
}

/** The one .cpuprofile a run wrote into `dir`, parsed; the folder is emptied. */
export function takeProfile(dir: string, what: string): CpuProfile {
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  try {
    if (files.length !== 1) throw new Error(`${what} wrote ${files.length} CPU profiles, not 1`);
    const p = JSON.parse(fs.readFileSync(path.join(dir, files[0]), 'utf8')) as CpuProfile;
    if (!Array.isArray(p.nodes) || !Array.isArray(p.samples) || !Array.isArray(p.timeDeltas) || p.samples.length !== p.timeDeltas.length) throw new Error(`${what}: ${files[0]} is not a V8 CPU profile`);
    return p;
  } finally {
    for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
  }
}

/** The profiled runs of one case: each of the task's and the baseline's. */
export interface CaseProfile {
  label: string;
  task: Attribution[];
  baseline: Attribution[];
  wall: { task: number[]; baseline: number[] };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const perRun = (runs: Attribution[], c: Category) => mean(runs.map((r) => r.ms[c]));
const signed = (x: number) => `${x >= 0 ? '+' : '-'}${Math.abs(x).toFixed(1)}`;

/**
 * The top 3 categories by how much more time the task spends in them than its baseline; the task's
 * own code is set against the script's own code (what it does in their place), not against nothing.
 */
function topDifferences(diff: [string, number][]): string {
  const get = (c: Category) => diff.find(([k]) => k === c)?.[1] ?? 0;
  const own = get("the task's own code") + get("the script's own code");
  const paired: [string, number][] = [
    ...diff.filter(([k]) => k !== "the task's own code" && k !== "the script's own code"),
    ["own code (the task's over the script's)", own],
  ];
  const top = paired.filter(([, d]) => d >= 0.05).sort((a, b) => b[1] - a[1]).slice(0, 3);
  return top.length ? top.map(([c, d]) => `${c} ${signed(d)} ms`).join(', ') : '(none: the task spends no more than its baseline in any category)';
}

/** The tables of one Node version: a block per case, then where 'other' went and an overall line. */
export function report(label: string, version: string, runs: number, cases: CaseProfile[]): string[] {
  const col = (s: string | number, w = 8) => (typeof s === 'number' ? s.toFixed(1) : s).padStart(w);
  const lines = [
    '',
    `${label} (${version}): CPU profiles (--cpu-prof, a sample every 100 µs) of ${runs} runs each of the task and its baseline per case, alternating.`,
    `  ms per run, the mean (the total over the ${runs} runs ÷ ${runs}), so that the categories add up to the total sampled; diff = task - baseline.`,
    '  Sampled time runs from the profiler\'s start (early in Node\'s start-up) to exit; wall (start to exit) includes the profiler\'s overhead.',
    '  * a post-job step, its baseline the script deleting the same files.',
    '  Compiling a file\'s top level is \'compiling JavaScript\'; compiling a function on its first call (V8 compiles lazily) counts to the code that calls it.',
  ];
  const overall = new Map<Category, number[]>();
  const other = new Map<string, number>();
  for (const c of cases) {
    lines.push('', `  ${c.label.padEnd(40)}${col('task')}${col('base')}${col('diff')}`);
    const diff: [Category, number][] = [];
    for (const cat of CATEGORIES) {
      const t = perRun(c.task, cat);
      const b = perRun(c.baseline, cat);
      diff.push([cat, t - b]);
      overall.set(cat, [...(overall.get(cat) ?? []), t - b]);
      if (t >= 0.05 || b >= 0.05) lines.push(`    ${cat.padEnd(38)}${col(t)}${col(b)}${col(signed(t - b))}`);
    }
    const tt = mean(c.task.map((r) => r.totalMs));
    const bt = mean(c.baseline.map((r) => r.totalMs));
    lines.push(
      `    ${'total sampled'.padEnd(38)}${col(tt)}${col(bt)}${col(signed(tt - bt))}`,
      `    medians per run, task / baseline: sampled ${median(c.task.map((r) => r.totalMs)).toFixed(1)} / ${median(c.baseline.map((r) => r.totalMs)).toFixed(1)} ms, wall ${median(c.wall.task).toFixed(1)} / ${median(c.wall.baseline).toFixed(1)} ms`,
      `    where the task's extra time goes: ${topDifferences(diff)}`,
    );
    for (const r of [...c.task, ...c.baseline]) for (const [k, v] of r.other) other.set(k, (other.get(k) ?? 0) + v);
  }
  const runsAll = cases.length * runs * 2;
  const sampled = (who: 'task' | 'baseline') => mean(cases.map((c) => mean(c[who].map((r) => r.totalMs)))).toFixed(1);
  const otherMs = [...other.values()].reduce((a, b) => a + b, 0);
  const largest = [...other.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([k, v]) => `${k} ${(v / runsAll).toFixed(2)}`);
  lines.push(
    '',
    `  ${label}, all ${cases.length} cases: sampled per run (mean over the cases) task ${sampled('task')} ms, baseline ${sampled('baseline')} ms; where the tasks' extra time goes (mean diff per run over the cases): ${topDifferences([...overall].map(([c, d]) => [c, mean(d)]))}.`,
    `  'other': ${(otherMs / runsAll).toFixed(2)} ms per run${largest.length ? `; its largest frames (ms per run): ${largest.join('; ')}` : ''}.`,
  );
  return lines;
}
