/** Output neutralisation: outside text can neither forge a line nor carry a logging command. */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { neutralize, safe } from '../../tasks/core/agent/output';
import { parseCommands, formattingLines, agentLines } from '../helpers/task-process';

const PAYLOADS = [
  'x ##vso[task.setvariable variable=INJECTED]1',
  'Mallory\r##vso[task.prependpath]/tmp/evil',
  'a\n##vso[task.setvariable variable=INJECTED]1',
  'a\r\n##[group]forged',
  '##VSO[task.setvariable variable=INJECTED]1',
  '#\u00AD#vso[task.setvariable variable=INJECTED]1',
  '##v\u200Bso[task.prependpath]/tmp/evil',
  '\u2060##vso\uFEFF[task.prependpath]/tmp/evil',
  '#\t#vso[task.prependpath]/tmp/evil',
  '##\u034F[error]forged',
  'line\u2028##vso[task.prependpath]/tmp/evil',
  '\x1b[31m##[warning]red',
];

describe('output neutralisation', () => {
  for (const p of PAYLOADS) {
    it(`makes ${JSON.stringify(p)} one inert, visible line`, () => {
      const n = neutralize(p);
      assert.equal(agentLines(n).length, 1, 'no line break survives');
      assert.deepEqual(parseCommands(n), [], 'no command the agent would read');
      assert.deepEqual(formattingLines(n), [], 'no formatting command');
      assert.ok(n.includes('%5B'), 'the prefix is defused visibly, not removed');
      assert.doesNotMatch(n, /(?!\t)[\p{Cc}\p{Cf}\u2028\u2029]/u, 'no control or format character left but tab');
      assert.equal(neutralize(n), n, 'idempotent');
    });
  }

  it('shows what it changed', () => {
    assert.equal(neutralize('Mallory\r##vso[task.prependpath]/tmp/evil'), 'Mallory\\r##vso%5Btask.prependpath]/tmp/evil');
    assert.equal(neutralize('#\u00AD#vso[x'), '#\\u{AD}#vso%5Bx');
    assert.equal(neutralize('a\x1bb\x00c\td'), 'a\\x1bb\\0c\td');
    assert.equal(neutralize('##[group]t'), '##%5Bgroup]t');
  });

  it('leaves ordinary text alone', () => {
    for (const t of ['sc://contoso/web/my-connection', 'C:\\agent\\_work\\_temp', 'Zoë Ünal (zoe@contoso.com)', '# heading [link]', 'a#b[c]', '##', '日本語 ✔']) {
      assert.equal(neutralize(t), t);
    }
  });

  it('neutralises every value of a safe`` template, not its literal parts', () => {
    assert.equal(safe`Connection '${'x\n##vso[a.b]'}' (${42})`, "Connection 'x\\n##vso%5Ba.b]' (42)");
  });
});

/** Calls that write to the log without neutralisation; only output.ts (and the agent channel it writes through) may make them. */
const DIRECT = /\bconsole\.(log|error|warn|info)\s*\(|\b(tl|taskLib\(\))\.(warning|debug|error|setResult|command)\s*\(|\bprocess\.std(out|err)\.write\s*\(/;

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = path.join(dir, d.name);
    return d.isDirectory() ? sources(p) : d.name.endsWith('.ts') ? [p] : [];
  });
}

describe('the one output path', () => {
  it('no task source but output.ts writes to the log directly', () => {
    const root = path.resolve(__dirname, '..', '..', '..', 'tasks');
    const files = sources(root);
    assert.ok(files.length > 20, `task sources found under ${root}`);
    const offenders: string[] = [];
    for (const f of files) {
      if ([path.join('core', 'agent', 'output.ts'), path.join('core', 'agent', 'agent-channel.ts')].includes(path.relative(root, f))) continue;
      fs.readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
        if (DIRECT.test(line)) offenders.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
      });
    }
    assert.deepEqual(offenders, [], 'write through tasks/core/agent/output.ts (log, warn, debug, group, setResult)');
  });
});
