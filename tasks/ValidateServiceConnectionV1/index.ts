/** ValidateServiceConnection@1: what holds and what does not, check by check, with the fix. */
import * as tl from 'azure-pipelines-task-lib/task';
import { readPipelineContext } from '../core/pipeline-context';
import { describeScheme, readConnection } from '../core/connection';
import { choiceInput, stringInput } from '../core/inputs';
import { InputError } from '../core/failures';
import { splitList } from '../core/registries';
import { portalLinks, validateConnection } from '../core/validation';
import { logLines, renderSummary, writeSummary } from '../core/summary';
import { setOutput } from '../core/variables';
import { Outcome, runTask } from '../core/task-runner';
import { endGroup, group, log, safe } from '../core/output';

function scopeInput(): string | undefined {
  const raw = stringInput('scope');
  if (raw === undefined) return undefined;
  const scope = raw.replace(/\/+$/, '');
  if (!/^\/(subscriptions\/[0-9a-f-]{36}|providers\/Microsoft\.Management\/managementGroups\/[^/]+)(\/.*)?$/i.test(scope)) {
    throw new InputError('scope', safe`'${raw}' is not an Azure resource id`, 'Give a resource id such as /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.ContainerRegistry/registries/<name> (the "Resource ID" on the resource\'s Properties page).');
  }
  return scope;
}

function daysInput(): number {
  const raw = stringInput('secretExpiryWarningDays');
  if (raw === undefined) return 30;
  if (!/^\d+$/.test(raw) || Number(raw) > 3650) throw new InputError('secretExpiryWarningDays', safe`'${raw}' is not a whole number of days from 0 to 3650`, 'Set secretExpiryWarningDays to a number of days, e.g. 30.');
  return Number(raw);
}

async function main(): Promise<Outcome> {
  const ctx = readPipelineContext();
  const conn = readConnection('connectedServiceNameARM', 'azureSubscription');
  const scope = scopeInput();
  const requiredRoles = splitList(stringInput('requiredRoles'));
  if (requiredRoles.length && !scope) throw new InputError('requiredRoles', 'roles are given without a scope to check them on', 'Set scope to the resource id the roles must hold on, or remove requiredRoles.');
  const secretExpiryWarningDays = daysInput();
  const failOn = choiceInput('failOn', ['error', 'warning'] as const, 'error');

  const result = await validateConnection(ctx, conn, {
    scope,
    requiredRoles,
    secretExpiryWarningDays,
    armUrl: conn.resourceManagerUrl,
    armResource: tl.getEndpointDataParameter(conn.id, 'activeDirectoryServiceEndpointResourceId', true) || conn.cloud.resourceManager,
    scopeLevel: tl.getEndpointDataParameter(conn.id, 'scopeLevel', true) || undefined,
  });

  const name = result.endpoint?.name ?? conn.id;
  group(safe`Service connection '${name}' (${conn.id}): ${describeScheme(conn.scheme)}`);
  for (const line of logLines(result.rows)) log(line);
  endGroup();

  const facts: [string, string][] = [['Connection id', conn.id], ['Scheme', describeScheme(conn.scheme)], ['Tenant', conn.tenantId]];
  if (conn.clientId) facts.push(['Client id', conn.clientId]);
  if (conn.subscriptionId) facts.push(['Subscription', conn.subscriptionId]);
  const markdown = renderSummary({ title: `Service connection ${name}`, status: result.status, facts, links: portalLinks(conn, ctx) }, result.rows);
  const file = writeSummary(ctx.tempDirectory || process.cwd(), `service-connection-${conn.id}.md`, markdown);
  tl.uploadSummary(file);
  setOutput('validationStatus', result.status);

  const fails = result.rows.filter((r) => r.status === 'fail').map((r) => r.check);
  const warnings = result.rows.filter((r) => r.status === 'warning').map((r) => r.check);
  if (fails.length) {
    return { result: tl.TaskResult.Failed, message: safe`Service connection '${name}' failed: ${fails.join(', ')}${warnings.length ? `; warnings: ${warnings.join(', ')}` : ''}. See the fixes above and in the run's summary tab.` };
  }
  if (warnings.length && failOn === 'warning') return { result: tl.TaskResult.Failed, message: safe`Service connection '${name}' has warnings (failOn: warning): ${warnings.join(', ')}.` };
  if (warnings.length) return safe`Service connection '${name}' works, with warnings: ${warnings.join(', ')}.`;
  log(safe`Service connection '${name}' works: every check passed.`);
}

void runTask('ValidateServiceConnection', main);
