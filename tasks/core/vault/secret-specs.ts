/**
 * The `secrets` input, in hashicorp/vault-action's form: one entry per line (or separated by `;`,
 * so a vault-action block pastes as it is):
 *   <path> <key> | <VARIABLE>   one key of the secret
 *   <path> <key>                the same, the variable named after the key as vault-action names it
 *   <path> | <VARIABLE>         the whole secret, as one line of JSON (our own form)
 * Blank lines and lines starting with # are skipped. Each entry is checked before any request; a
 * malformed one is an input error naming its line.
 */
import { InputError } from '../http/failures';
import { safe } from '../agent/output';
// The name the agent gives a variable in a script's environment: '.' and spaces as '_', upper case.
import { environmentKey as environmentName } from '../agent/agent-channel';

export interface SecretSpec {
  /** 1-based line of the input, for messages. */
  line: number;
  /** The entry as written, for messages. */
  text: string;
  /** The secret's path as written, without leading or trailing slashes: <mount>/<path>. */
  path: string;
  /** The key to take; undefined: the whole secret as JSON. */
  key?: string;
  variable: string;
}

const INPUT = 'secrets';
const FORMS = 'Write one secret per line as `<path> <key> | <VARIABLE>` (e.g. `secret/data/ci/db password | DB_PASSWORD`), `<path> <key>`, or `<path> | <VARIABLE>` for the whole secret as JSON.';

// Characters a Vault path uses in practice; '?', '#', '%' and spaces never reach a URL.
const PATH = /^[A-Za-z0-9_.@+=:,~!*()'$&-]+(?:\/[A-Za-z0-9_.@+=:,~!*()'$&-]+)*$/;
const KEY = /^[^\s|;]+$/;
// The agent's variable names: letters, digits, '.', '_' and '-'; nothing that could end a logging command.
const VARIABLE = /^[A-Za-z_][A-Za-z0-9_.-]{0,254}$/;
// Namespaces the agent and Azure Pipelines own.
const RESERVED_PREFIX = /^(system|agent|build|release|pipeline|environment|resources|task|endpoint|secret|vsts|input|tf_build|azure_http_user_agent)(\.|_|$)/i;
/** Set by exportToken; never a secret's name. */
export const VAULT_VARIABLES = ['VAULT_ADDR', 'VAULT_TOKEN', 'VAULT_NAMESPACE', 'VAULT_CACERT'];

/**
 * vault-action's name for a variable named after its key (normalizeOutputKey): '.' as '__', '-'
 * dropped, other characters but letters, digits and '_' dropped, upper case; '_' first where it
 * would start with a digit, which a variable name may not.
 */
export function variableForKey(key: string): string {
  const name = key.replace(/\./g, '__').replace(/[^A-Za-z0-9_]/g, '').toUpperCase();
  return /^[A-Za-z_]/.test(name) ? name : `_${name}`;
}


export function parseSecretSpecs(raw: string | undefined): SecretSpec[] {
  const specs: SecretSpec[] = [];
  const byEnv = new Map<string, SecretSpec>();
  (raw ?? '').split(/\r\n|\r|\n/).forEach((lineText, i) => {
    const line = i + 1;
    if (lineText.trim().startsWith('#')) return;
    for (const piece of lineText.split(';')) {
      const text = piece.trim();
      if (!text) continue;
      const spec = parseEntry(text, line);
      const env = environmentName(spec.variable);
      const earlier = byEnv.get(env);
      if (earlier) {
        throw new InputError(INPUT, safe`line ${line} ('${text}') sets ${spec.variable}, which line ${earlier.line} ('${earlier.text}') sets already`, 'Give each secret its own variable name (names that differ only in case or in . and _ are the same variable in a script\'s environment).');
      }
      byEnv.set(env, spec);
      specs.push(spec);
    }
  });
  return specs;
}

function parseEntry(text: string, line: number): SecretSpec {
  const refuse = (problem: string, fix: string) => new InputError(INPUT, safe`line ${line} ('${text}'): ` + problem, fix);
  const bar = text.split('|');
  if (bar.length > 2) throw refuse('has more than one |', FORMS);
  const left = bar[0].trim().split(/\s+/).filter(Boolean);
  const right = bar.length === 2 ? bar[1].trim() : undefined;
  if (left.length === 0) throw refuse('names no path', FORMS);
  if (left.length > 2) throw refuse(safe`has ${left.length} words before the |, not a path and a key`, FORMS);
  if (right !== undefined && !right) throw refuse('names no variable after the |', FORMS);
  if (right !== undefined && /\s/.test(right)) throw refuse(safe`'${right}' is not one variable name`, FORMS);

  const path = left[0].replace(/^\/+|\/+$/g, '');
  if (!path.includes('/') || !PATH.test(path) || path.split('/').some((s) => s === '.' || s === '..')) {
    throw refuse(safe`'${left[0]}' is not a secret's path`, 'Give the path as the Vault CLI reads it, starting with the secrets engine\'s mount: `secret/ci/db` (KV version 2 also as `secret/data/ci/db`), with no spaces, ?, # or %. ' + FORMS);
  }
  const key = left[1];
  if (key !== undefined && !KEY.test(key)) throw refuse(safe`'${key}' is not a key`, FORMS);
  if (key === undefined && right === undefined) {
    throw refuse('names neither a key nor a variable', 'For the whole secret as JSON add `| <VARIABLE>`; for one key add the key: ' + FORMS);
  }
  const variable = right ?? variableForKey(key as string);
  if (!VARIABLE.test(variable)) {
    throw refuse(safe`'${variable}' is not a valid variable name`, 'Use letters, digits, _ . and -, starting with a letter or _, e.g. DB_PASSWORD.');
  }
  // Checked as a script's environment sees the name too: vault.token is VAULT_TOKEN there.
  if (RESERVED_PREFIX.test(variable) || RESERVED_PREFIX.test(environmentName(variable)) || VAULT_VARIABLES.includes(environmentName(variable))) {
    throw refuse(safe`the variable name '${variable}' belongs to Azure Pipelines or to exportToken`, 'Choose a name of your own, e.g. APP_DB_PASSWORD: names starting with System, Agent, Build, Release, Pipeline, Environment, Resources, Task, Endpoint, Secret, VSTS, Input, TF_BUILD or AZURE_HTTP_USER_AGENT, and VAULT_ADDR, VAULT_TOKEN, VAULT_NAMESPACE and VAULT_CACERT (also written with . for _, in any case), are not taken.');
  }
  return { line, text, path, ...(key !== undefined ? { key } : {}), variable };
}
