/**
 * How the values read reach later steps. A one-line value becomes a secret variable. The agent
 * refuses a secret variable that holds a line break (unless SYSTEM_UNSAFEALLOWMULTILINESECRET is
 * true, [azure-pipelines-agent TaskCommandExtension.cs]), and masks secrets line by line, so a PEM
 * key or other multi-line value gets what `multilineValues` says:
 *  - file (default): an owner-only (0600) file under Agent.TempDirectory, its path the variable's
 *    value, removed by the post-job step; every line of the value is masked;
 *  - variable: the value itself in a secret variable, as Microsoft's Key Vault task does it: every
 *    line masked first, then SYSTEM_UNSAFEALLOWMULTILINESECRET set to true for the job.
 * Everything is prepared before the first variable is set, so a failure sets none.
 */
import path = require('node:path');
import { makeSecretDir, removeSecretPath, writeSecretFile } from '../files/secret-files';
import { setJobVariable, setTaskState } from '../agent/variables';
import { neutralize, safe } from '../agent/output';
import { SecretValue } from './secret-reader';

export type MultilineMode = 'file' | 'variable';

export const MULTILINE_KNOB = 'SYSTEM_UNSAFEALLOWMULTILINESECRET';

const hasLineBreak = (v: string) => /[\r\n]/.test(v);

/** Sets the variables; returns the log lines that say what each became. */
export function deliverSecrets(given: SecretValue[], mode: MultilineMode, tempDirectory: string, filesState: string): string[] {
  const lines: string[] = [];
  // One line break at the end (a value written from a file) is not what makes a value multi-line:
  // it is dropped, as a shell's $(cat file) drops it, and the value stays a secret variable.
  const values = given.map((v) => {
    const m = /^([^\r\n]*)(\r?\n)$/.exec(v.value);
    if (!m) return v;
    lines.push(safe`  ${v.spec.variable}: the line break at the end of the value was dropped (a secret variable holds one line).`);
    return { ...v, value: m[1] };
  });
  const multiline = values.filter((v) => hasLineBreak(v.value));
  const files = new Map<SecretValue, string>();
  if (multiline.length && mode === 'file') {
    const dir = makeSecretDir(tempDirectory, 'vault-secrets');
    // Recorded first: the post-job step removes the folder even if a write below fails.
    setTaskState(filesState, dir);
    try {
      for (const v of multiline) {
        // A prefix keeps Windows' device names (CON, NUL, ...) from ever being a file name; '.' as '_' keeps a name
        // ending in '.' from being one: Windows drops that dot when a later step opens the path, and opens another
        // file or none. Still one file per variable: names that differ only in '.' and '_' are refused as one.
        const file = path.join(dir, `value-${v.spec.variable.replace(/\./g, '_')}`);
        writeSecretFile(file, v.value);
        files.set(v, file);
      }
    } catch (e) {
      removeSecretPath(dir);
      throw e;
    }
  }
  if (multiline.length && mode === 'variable') {
    // task-lib checks the process's environment, the agent its job variable.
    process.env[MULTILINE_KNOB] = 'true';
    setJobVariable(MULTILINE_KNOB, 'true');
    lines.push(`Set ${MULTILINE_KNOB}=true for this job (multilineValues: variable): ${multiline.map((v) => neutralize(v.spec.variable)).join(', ')} hold line breaks; every line of them is masked.`);
  }
  for (const v of values) {
    const file = files.get(v);
    if (file) {
      setJobVariable(v.spec.variable, file);
      lines.push(safe`  ${v.spec.variable} = the path of a 0600 file holding ${v.apiPath}${v.spec.key !== undefined ? ` key ${v.spec.key}` : ''} (a multi-line value; removed when the job ends)`);
    } else {
      setJobVariable(v.spec.variable, v.value, true);
      lines.push(safe`  ${v.spec.variable} (secret) = ${v.apiPath}${v.spec.key !== undefined ? ` key ${v.spec.key}` : ' (the whole secret, as JSON)'}`);
    }
  }
  return lines;
}
