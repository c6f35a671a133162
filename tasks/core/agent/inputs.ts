/** Reading and validating task inputs: every message names the input and the fix. */
import tl = require('azure-pipelines-task-lib/task');
import { InputError } from '../http/failures';
import { safe } from './output';

export function stringInput(name: string): string | undefined {
  const v = tl.getInput(name, false);
  return v && v.trim() ? v.trim() : undefined;
}

/** A boolean that refuses anything but true/false, where task-lib would read "yes" as false. */
export function boolInput(name: string, fallback: boolean): boolean {
  const raw = stringInput(name);
  if (raw === undefined) return fallback;
  if (/^true$/i.test(raw)) return true;
  if (/^false$/i.test(raw)) return false;
  throw new InputError(name, safe`'${raw}' is not a boolean`, `Set ${name} to true or false.`);
}

const GUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';
const SCOPE = new RegExp(`^(?:https://[^\\s/?#]+(?:/[^\\s?#]*?)?|api://[^\\s?#]+|${GUID})/\\.default$`);

/**
 * An Entra scope for the client-credentials grant: one resource followed by /.default,
 * e.g. https://management.azure.com/.default or 499b84ac-1321-427f-aa17-267ca6975798/.default.
 */
export function scopeInput(name: string): string | undefined {
  const raw = stringInput(name);
  if (raw === undefined) return undefined;
  if (/[\s,]/.test(raw)) {
    throw new InputError(name, safe`'${raw}' holds more than one scope`, 'Give exactly one scope: a token is issued for one resource at a time. Run the task once per resource.');
  }
  if (SCOPE.test(raw)) return raw;
  let hint = '';
  if (!raw.endsWith('/.default')) {
    const base = raw.replace(/\/+$/, '').replace(/\/(user_impersonation|\.default)$/i, '');
    if (/^(https:\/\/|api:\/\/)/.test(base) || new RegExp(`^${GUID}$`).test(base)) hint = safe` Did you mean '${base}/.default'?`;
  }
  throw new InputError(
    name,
    safe`'${raw}' is not a valid scope`,
    `Give one resource followed by /.default, e.g. https://management.azure.com/.default, or 499b84ac-1321-427f-aa17-267ca6975798/.default for the Azure DevOps REST API.${hint}`,
  );
}

/** One of a fixed set of values (pickList inputs), case-insensitive. */
export function choiceInput<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const raw = stringInput(name);
  if (raw === undefined) return fallback;
  const hit = allowed.find((a) => a.toLowerCase() === raw.toLowerCase());
  if (!hit) throw new InputError(name, safe`'${raw}' is not one of ${allowed.map((a) => `'${a}'`).join(', ')}`, `Set ${name} to ${allowed.join(' or ')} (default ${fallback}).`);
  return hit;
}
