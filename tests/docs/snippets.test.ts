/**
 * Every snippet a user may copy from the docs (README.md, overview.md, docs/*.md) runs as written.
 *
 * - Shell blocks (sh, bash, shell, console): `bash -n`, then run under `set -euo pipefail` in a
 *   folder of their own, with placeholders such as `<organization id>` replaced by sample values and
 *   a PATH that holds only stubs of the tools the docs call (tests/docs/cli-stub.ts). Each stub
 *   checks the subcommand and flags it received against the tools' references, so a line
 *   continuation lost in a comment, a missing flag or a misspelt one fails here, named by the line
 *   of the docs the command starts on.
 * - YAML blocks: parsed; pipeline steps checked against the tasks' task.json (tests/docs/pipeline-yaml.ts);
 *   each step's script passes `bash -n`.
 * - JSON blocks: complete documents that parse; an AWS trust policy's condition keys name its provider.
 * - HCL blocks that are Vault policies: each rule's capabilities are Vault's; a block whose first
 *   line is `# <file>` is that file for the shell blocks of the same document (`vault policy write`).
 * - Other blocks (no language: program output, a file tree): not run, listed as pending with the reason.
 */
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { load as loadYaml, YAMLException } from 'js-yaml';
import { parseSecretSpecs } from '../../tasks/core/vault/secret-specs';
import { DOCUMENTED_VARIABLES } from '../helpers/e2e';
import { COMMANDS, Invocation, STUBBED, tfxArguments } from './cli-stub';
import { classifyYaml, JOB_VARIABLES, loadTasks, PipelineChecker, scriptsOf, stepLinesOf, stepsOf } from './pipeline-yaml';

const REPO = path.resolve(__dirname, '..', '..', '..');
const STUB = path.join(__dirname, 'cli-stub.js');

interface Block {
  /** The document, relative to the repository. */
  file: string;
  /** 1-based line of the opening fence. */
  line: number;
  lang: string;
  content: string;
}

/** The line of the docs that line n (1-based) of a block's content is on. */
const docLine = (b: Block, n: number) => b.line + n;
const where = (b: Block, n: number) => `${b.file}:${docLine(b, n)}`;

function documents(): string[] {
  const docs = ['README.md', 'overview.md'];
  const dir = path.join(REPO, 'docs');
  if (fs.existsSync(dir)) docs.push(...fs.readdirSync(dir).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`));
  return docs;
}

interface MarkdownToken {
  type: string;
  info: string;
  content: string;
  map: [number, number] | null;
}

function fencedBlocks(file: string): Block[] {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const md = (require('markdown-it') as () => { parse(src: string, env: object): MarkdownToken[] })();
  return md.parse(fs.readFileSync(path.join(REPO, file), 'utf8'), {})
    .filter((t) => t.type === 'fence' && t.map)
    .map((t) => ({ file, line: (t.map as [number, number])[0] + 1, lang: t.info.trim().split(/\s+/)[0].toLowerCase(), content: t.content }));
}

const SHELL = ['sh', 'bash', 'shell', 'console'];
const YAML = ['yaml', 'yml'];
/** Not run, and why. */
const NOT_RUN: Record<string, string> = {
  '': 'no language: program output or a file tree',
  text: 'text: program output',
  powershell: 'PowerShell: no PowerShell on the test machine',
  pwsh: 'PowerShell: no PowerShell on the test machine',
  ts: 'TypeScript excerpt, not a whole program',
  typescript: 'TypeScript excerpt, not a whole program',
};

/** Sample values for the docs' placeholders. A placeholder not listed here fails its block. */
const PLACEHOLDERS: Record<string, string> = {
  'organization id': '8f2a0000-0000-4000-8000-000000000001',
  'org id': '8f2a0000-0000-4000-8000-000000000001',
  'tenant id': '72f988bf-86f1-41af-91ab-2d7cd011db47',
  organization: 'contoso',
  org: 'contoso',
  project: 'web',
  'project id': '5f3e2d1c-0b9a-4876-8543-210fedcba987',
  'project number': '123456789012',
  'pipeline id': '42',
  'connection name': 'vault-ci',
  connection: 'vault-ci',
  'connection id': '3c2b1a09-8f7e-4d6c-9b5a-49382716a5f4',
  'subject identifier': 'sc://contoso/web/gcp-prod',
  account: '123456789012',
  publisher: 'my-publisher',
  version: '1.0.0',
};
// <word> or <two words>: not `<<EOF`, `<<'EOF'`, `< file` or `<(command)`.
const PLACEHOLDER = /<([a-z][a-z0-9]*(?: [a-z0-9]+)*)>/g;

function substitute(b: Block): { text: string; unknown: string[] } {
  const unknown: string[] = [];
  const lines = b.content.split('\n').map((l, i) => {
    const cmd = b.lang === 'console' ? (l.startsWith('$ ') ? l.slice(2) : '') : l;
    return cmd.replace(PLACEHOLDER, (all, name: string) => {
      if (name in PLACEHOLDERS) return PLACEHOLDERS[name];
      unknown.push(`${where(b, i + 1)}: placeholder ${all} has no sample value in tests/docs/snippets.test.ts`);
      return all;
    });
  });
  return { text: lines.join('\n'), unknown };
}

/** A bash error's "line N" (of a file whose block starts after `offset` lines) as the docs' line. */
function mapBashLines(text: string, b: Block, offset: number, script: string): string {
  return text.split('\n').filter(Boolean).map((l) => l.replace(script, 'bash').replace(/\bline (\d+)/g, (_, n: string) => `${b.file}:${docLine(b, Number(n) - offset)}`)).join('\n');
}

function findBash(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, 'bash');
    if (dir && fs.existsSync(p)) return p;
  }
  return undefined;
}

/** `# <name>` on the first line of a block: a file the docs' commands use, e.g. `# ci-read.hcl`. */
function namedFile(b: Block): string | undefined {
  return /^#\s*([\w.-]+\.[a-z]+)\s*$/.exec(b.content.split('\n')[0])?.[1];
}

const VAULT_CAPABILITIES = ['create', 'read', 'update', 'patch', 'delete', 'list', 'sudo', 'deny', 'subscribe', 'recover'];

const BLOCKS = documents().flatMap(fencedBlocks);

describe('Docs: every snippet copied from the docs runs', function () {
  this.timeout(60000);
  const bash = findBash();
  let tmp = '';
  let bin = '';
  const usedCommands = new Set<string>();
  let shellBlocksRun = 0;
  let shellBlocksPassed = 0;
  const tasks = loadTasks(REPO);
  const pipelines = new PipelineChecker(tasks);

  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'wit-snippets-'));
    bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin);
    const wrapper = path.join(tmp, 'stub.sh');
    fs.writeFileSync(wrapper, '#!/bin/sh\nexec "$SNIPPET_NODE" "$SNIPPET_STUB" "${0##*/}" "$@"\n', { mode: 0o755 });
    for (const name of STUBBED) fs.symlinkSync(wrapper, path.join(bin, name));
  });

  after(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('finds the blocks, each with a language this test knows', () => {
    const byFile = new Map(documents().map((f) => [f, BLOCKS.filter((b) => b.file === f).length]));
    assert.ok((byFile.get('README.md') ?? 0) > 20 && (byFile.get('overview.md') ?? 0) > 10, `blocks found: ${JSON.stringify([...byFile])}`);
    const known = [...SHELL, ...YAML, 'json', 'hcl', ...Object.keys(NOT_RUN)];
    assert.deepEqual(BLOCKS.filter((b) => !known.includes(b.lang)).map((b) => `${b.file}:${b.line}: language '${b.lang}' is not one tests/docs/snippets.test.ts knows`), []);
  });

  for (const b of BLOCKS.filter((x) => SHELL.includes(x.lang))) {
    it(`${b.file}:${b.line} ${b.lang}: bash -n, then runs against stubs of the tools`, function () {
      if (!bash) this.skip();
      const n = ++shellBlocksRun;
      const { text, unknown } = substitute(b);
      assert.deepEqual(unknown, []);
      // The trap gives each command's stub the line it starts on.
      const header = ['set -euo pipefail', "trap 'export SNIPPET_LINE=$LINENO' DEBUG"];
      const script = path.join(tmp, `block-${n}.sh`);
      fs.writeFileSync(script, [...header, text].join('\n'));
      const syntax = spawnSync(bash as string, ['-n', script], { encoding: 'utf8' });
      assert.equal(syntax.status, 0, `bash -n:\n${mapBashLines(syntax.stderr, b, header.length, script)}`);

      const cwd = path.join(tmp, `block-${n}`);
      fs.mkdirSync(cwd);
      for (const f of BLOCKS.filter((x) => x.file === b.file && namedFile(x))) fs.writeFileSync(path.join(cwd, namedFile(f) as string), f.content);
      const log = path.join(tmp, `block-${n}.log`);
      fs.writeFileSync(log, '');
      const run = spawnSync(bash as string, [script], {
        cwd, encoding: 'utf8', timeout: 30000, input: '',
        // TMPDIR: a long here-document would be a temp file there, not in the system's temp folder.
        env: { PATH: bin, HOME: cwd, TMPDIR: cwd, LANG: 'C.UTF-8', SNIPPET_NODE: process.execPath, SNIPPET_STUB: STUB, SNIPPET_LOG: log, SNIPPET_REPO: REPO },
      });
      const calls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Invocation);
      for (const c of calls) if (c.spec) usedCommands.add(c.spec);
      const refused = calls.flatMap((c) => c.errors.map((e) => `${where(b, c.line - header.length)}: ${e}`));
      assert.deepEqual(refused, [], 'a tool would refuse the command');
      const hint = run.status === 127 ? '\n(a command with no stub in tests/docs/cli-stub.ts, or a line that a lost line continuation left on its own)' : '';
      assert.equal(run.status, 0, `the block stopped (exit ${run.status ?? run.signal}):\n${mapBashLines(run.stderr, b, header.length, script)}${hint}`);
      assert.ok(calls.length > 0, `${b.file}:${b.line}: the block ran no tool`);
      shellBlocksPassed++;
    });
  }

  for (const b of BLOCKS.filter((x) => YAML.includes(x.lang))) {
    it(`${b.file}:${b.line} ${b.lang}: parses; its tasks' inputs and outputs exist; its scripts pass bash -n`, function () {
      let doc: unknown;
      try {
        doc = loadYaml(b.content);
      } catch (e) {
        const mark = e instanceof YAMLException ? e.mark : undefined;
        assert.fail(`${where(b, (mark?.line ?? 0) + 1)}: not YAML: ${(e as Error).message.split('\n')[0]}`);
      }
      const lines = b.content.split('\n');
      const kind = classifyYaml(doc);
      assert.ok(kind, `${b.file}:${b.line}: neither a pipeline (steps), a GitHub Actions workflow nor a Kubernetes manifest`);
      const problems: string[] = [];
      if (kind === 'pipeline') problems.push(...pipelines.check(doc, lines).map((p) => `${where(b, p.line)}: ${p.message}`));
      if (kind === 'github-actions') {
        // The docs say vault-action's secrets list pastes into VaultSecretsFederated as it is.
        for (const s of stepsOf(doc)) {
          const st = s as { uses?: string; with?: { secrets?: string } };
          if (!st.uses?.startsWith('hashicorp/vault-action@') || !st.with?.secrets) continue;
          try {
            parseSecretSpecs(st.with.secrets);
          } catch (e) {
            problems.push(`${b.file}:${b.line}: vault-action's secrets do not parse as VaultSecretsFederated's: ${(e as Error).message}`);
          }
        }
      }
      if (bash) {
        const stepLines = stepLinesOf(lines);
        for (const s of scriptsOf(doc)) {
          const r = spawnSync(bash, ['-n'], { input: s.text, encoding: 'utf8' });
          if (r.status === 0) continue;
          const at = stepLines[s.stepIndex] ?? 1;
          // A block scalar (script: |) starts on the next line; a plain one on the step's.
          const first = /:\s*[|>][-+0-9]*\s*(#.*)?$/.test(lines[at - 1]) ? at + 1 : at;
          const message = r.stderr.trim().replace(/^.*?bash: /gm, '').replace(/\bline (\d+)/g, (_, n: string) => `${b.file}:${docLine(b, first + Number(n) - 1)}`);
          problems.push(`${where(b, at)}: the step's ${s.key} fails bash -n: ${message}`);
        }
      }
      assert.deepEqual(problems, []);
    });
  }

  for (const b of BLOCKS.filter((x) => x.lang === 'json')) {
    it(`${b.file}:${b.line} json: a complete document that parses; a trust policy names its provider`, () => {
      let doc: unknown;
      try {
        doc = JSON.parse(b.content);
      } catch (e) {
        assert.fail(`${b.file}:${b.line}: not a complete JSON document (tag a fragment as text): ${(e as Error).message}`);
      }
      const d = doc as { Statement?: unknown };
      const statements = (Array.isArray(d.Statement) ? d.Statement : d.Statement ? [d.Statement] : [doc]) as {
        Action?: string | string[]; Principal?: { Federated?: string }; Condition?: Record<string, Record<string, string>>;
      }[];
      for (const s of statements) {
        const provider = /:oidc-provider\/(.+)$/.exec(s.Principal?.Federated ?? '')?.[1];
        if (!provider) continue;
        const actions = ([] as string[]).concat(s.Action ?? []);
        assert.ok(actions.includes('sts:AssumeRoleWithWebIdentity'), `${b.file}:${b.line}: a web identity trust needs sts:AssumeRoleWithWebIdentity`);
        const keys = Object.values(s.Condition ?? {}).flatMap((c) => Object.entries(c));
        for (const [k] of keys) assert.ok(k.startsWith(`${provider}:`), `${b.file}:${b.line}: condition key ${k} is not of the provider ${provider}`);
        assert.equal(Object.fromEntries(keys)[`${provider}:aud`], 'api://AzureADTokenExchange', `${b.file}:${b.line}: the audience condition`);
        assert.ok(`${provider}:sub` in Object.fromEntries(keys), `${b.file}:${b.line}: no subject condition: any connection of the organisation could assume the role`);
      }
    });
  }

  for (const b of BLOCKS.filter((x) => x.lang === 'hcl')) {
    it(`${b.file}:${b.line} hcl: a Vault policy whose capabilities are Vault's`, () => {
      const rules = b.content.split('\n').map((l, i) => ({ l: l.replace(/\s+#.*$/, '').trim(), i })).filter(({ l }) => l && !l.startsWith('#'));
      for (const { l, i } of rules) {
        const m = /^path\s+"[^"]+"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}$/.exec(l);
        assert.ok(m, `${where(b, i + 1)}: not a one-line Vault policy rule (path "..." { capabilities = [...] })`);
        for (const c of m[1].split(',').map((x) => x.trim().replace(/^"|"$/g, '')).filter(Boolean)) {
          assert.ok(VAULT_CAPABILITIES.includes(c), `${where(b, i + 1)}: '${c}' is not a Vault capability (${VAULT_CAPABILITIES.join(', ')})`);
        }
      }
    });
  }

  for (const b of BLOCKS.filter((x) => x.lang in NOT_RUN)) {
    it.skip(`${b.file}:${b.line}: not run (${NOT_RUN[b.lang]})`);
  }

  it('the stubs\' table holds only commands the docs run', function () {
    // Only when every shell block ran to its end: a block that stopped early ran fewer commands.
    if (!bash || shellBlocksPassed !== BLOCKS.filter((x) => SHELL.includes(x.lang)).length) this.skip();
    assert.deepEqual(COMMANDS.map((c) => c.id).filter((id) => !usedCommands.has(id) && id !== 'tfx extension create'), [],
      'no shell block of the docs runs these: remove them from tests/docs/cli-stub.ts');
  });

  it('scripts/package.mjs runs tfx extension create with flags tfx has', () => {
    const text = fs.readFileSync(path.join(REPO, 'scripts', 'package.mjs'), 'utf8');
    const cmd = /\['extension', 'create', ([^\]]*)\]/.exec(text);
    assert.ok(cmd, 'scripts/package.mjs: no tfx extension create command found');
    const flags = [...cmd[1].matchAll(/'--([a-z0-9-]+)'/g)].map((m) => m[1]);
    assert.ok(flags.includes('root') && flags.includes('output-path'), `flags read: ${flags.join(', ')}`);
    const known = tfxArguments(REPO, 'tfx extension create');
    assert.deepEqual(flags.filter((f) => !(f in known)), [], 'flags tfx extension create does not register');
  });

  it('the job variables the YAML check knows are set by the tasks and documented in README', () => {
    const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
    const source = (dir: string) => fs.readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => fs.readFileSync(path.join(e.parentPath, e.name), 'utf8')).join('\n');
    const core = source(path.join(REPO, 'tasks', 'core'));
    const problems: string[] = [];
    for (const [name, groups] of Object.entries(JOB_VARIABLES)) {
      const task = tasks.get(name);
      if (!task) {
        problems.push(`${name}: no such task`);
        continue;
      }
      const code = source(task.sourceDir) + core;
      for (const v of groups.flatMap((g) => g.names)) {
        if (!code.includes(`'${v}'`)) problems.push(`${name}: '${v}' is not in the task's or the core's code`);
        if (!readme.includes(v)) problems.push(`${name}: README does not mention ${v}`);
      }
      for (const g of groups) for (const input of Object.keys(g.when ?? {})) if (!task.inputs.some((i) => i.name === input)) problems.push(`${name}: no input ${input}`);
    }
    assert.deepEqual(problems, []);
    // The same names as the end-to-end suite's list of what the tasks may set (tests/helpers/e2e.ts),
    // but its outputs and Vault's multi-line switch, which no step maps.
    const table = new Set(Object.values(JOB_VARIABLES).flatMap((gs) => gs.flatMap((g) => g.names)));
    const outputs = new Set([...tasks.values()].flatMap((t) => t.outputs));
    const e2e = [...DOCUMENTED_VARIABLES].filter((v) => !outputs.has(v) && v !== 'SYSTEM_UNSAFEALLOWMULTILINESECRET');
    assert.deepEqual([...table].sort(), e2e.sort(), 'JOB_VARIABLES (tests/docs/pipeline-yaml.ts) and DOCUMENTED_VARIABLES (tests/helpers/e2e.ts)');
  });

  it('every table that gives the classic editor\'s label names it as the task.json does', () => {
    const problems: string[] = [];
    for (const file of ['README.md', 'overview.md']) {
      const text = fs.readFileSync(path.join(REPO, file), 'utf8');
      // A table headed "| YAML name | Classic label | ..." under the task's "## <Task>@<major>" heading.
      let task: string | undefined;
      let labelColumn = -1;
      text.split('\n').forEach((line, i) => {
        const heading = /^## (\w+)@\d+/.exec(line);
        if (heading) task = heading[1];
        const cells = line.split('|').map((c) => c.trim());
        if (/^\|/.test(line) && cells.some((c) => /^classic (editor )?label$/i.test(c))) {
          labelColumn = cells.findIndex((c) => /^classic (editor )?label$/i.test(c));
          return;
        }
        if (!/^\|/.test(line)) {
          labelColumn = -1;
          return;
        }
        const name = /^`(\w+)`$/.exec(cells[1] ?? '')?.[1];
        if (labelColumn < 0 || !name || !task) return;
        const t = tasks.get(task);
        const input = t?.inputs.find((x) => x.name === name || (x.aliases ?? []).includes(name));
        if (!input) problems.push(`${file}:${i + 1}: ${task} has no input ${name}`);
        else if (cells[labelColumn] !== input.label) problems.push(`${file}:${i + 1}: ${name} is labelled '${cells[labelColumn]}', task.json says '${input.label}'`);
      });
    }
    assert.deepEqual(problems, []);
  });
});
