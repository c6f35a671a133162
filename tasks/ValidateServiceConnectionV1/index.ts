/** ValidateServiceConnection@1: what holds and what does not, check by check, with the fix. */
import tl = require('azure-pipelines-task-lib/task');
import { readPipelineContext } from '../core/agent/pipeline-context';
import { currentRun, describeRun } from '../core/agent/run-identity';
import { Connection, describeScheme, readConnection } from '../core/devops/connection';
import { choiceInput, stringInput } from '../core/agent/inputs';
import { InputError, TaskFailure } from '../core/http/failures';
import { splitList } from '../core/acr/registries';
import { failureRow, Link, portalLinks, Row, validateConnection, ValidationResult } from '../core/azure/validation';
import { logLines, renderSummary, writeSummary } from '../core/agent/summary';
import { setOutput } from '../core/agent/variables';
import { Outcome, runTask } from '../core/agent/task-runner';
import { endGroup, group, log, safe } from '../core/agent/output';

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

/**
 * Where the summary goes: Agent.TempDirectory, which the agent empties after the job; never the
 * working directory, which may be the sources.
 */
function summaryDirectory(tempDirectory: string): string {
  if (!tempDirectory) {
    throw new TaskFailure({
      what: 'The pipeline variable Agent.TempDirectory is not set, so the task has nowhere to write the validation summary.',
      cause: 'The task is not running in an Azure Pipelines job: the agent sets Agent.TempDirectory for every job.',
      fix: 'Run the task in an Azure Pipelines job; to run it by hand, set AGENT_TEMPDIRECTORY to an empty folder that only this run uses.',
      code: 'NO_TEMP_DIRECTORY',
    });
  }
  return tempDirectory;
}

interface Report {
  title: string;
  fileName: string;
  status: ValidationResult['status'];
  facts: [string, string][];
  links: Link[];
  rows: Row[];
}

/** The log lines, validationStatus, and the summary written under Agent.TempDirectory and uploaded. */
function report(dir: string, groupTitle: string, r: Report): void {
  group(groupTitle);
  for (const line of logLines(r.rows)) log(line);
  endGroup();
  setOutput('validationStatus', r.status);
  const markdown = renderSummary({ title: r.title, status: r.status, facts: r.facts, links: r.links }, r.rows);
  tl.uploadSummary(writeSummary(dir, r.fileName, markdown));
}

async function main(): Promise<Outcome> {
  const ctx = readPipelineContext();
  const scope = scopeInput();
  const requiredRoles = splitList(stringInput('requiredRoles'));
  if (requiredRoles.length && !scope) throw new InputError('requiredRoles', 'roles are given without a scope to check them on', 'Set scope to the resource id the roles must hold on, or remove requiredRoles.');
  const secretExpiryWarningDays = daysInput();
  const failOn = choiceInput('failOn', ['error', 'warning'] as const, 'error');
  const dir = summaryDirectory(ctx.tempDirectory);

  // From here on, every run logs its rows, sets validationStatus and uploads a summary, even when
  // the connection itself cannot be read.
  let conn: Connection;
  try {
    conn = readConnection('connectedServiceNameARM', 'azureSubscription');
  } catch (e) {
    const given = tl.getInput('connectedServiceNameARM', false)?.trim() || '(none)';
    report(dir, safe`Service connection '${given}': could not be read`, {
      title: `Service connection ${given}`,
      fileName: `service-connection-${given}`,
      status: 'error',
      facts: [['Connection', given]],
      links: [],
      rows: [failureRow('Service connection', e)],
    });
    throw e;
  }

  let result: ValidationResult;
  try {
    result = await validateConnection(ctx, conn, {
      scope,
      requiredRoles,
      secretExpiryWarningDays,
      armUrl: conn.resourceManagerUrl,
      armResource: tl.getEndpointDataParameter(conn.id, 'activeDirectoryServiceEndpointResourceId', true) || conn.cloud.resourceManager,
      scopeLevel: tl.getEndpointDataParameter(conn.id, 'scopeLevel', true) || undefined,
    });
  } catch (e) {
    // The checks catch their own failures; this is the last net, so the run still reports.
    result = { rows: [failureRow('Validation', e)], status: 'error' };
  }

  const name = result.endpoint?.name ?? conn.id;
  const facts: [string, string][] = [['Connection id', conn.id], ['Scheme', describeScheme(conn.scheme)], ['Tenant', conn.tenantId]];
  if (conn.clientId) facts.push(['Client id', conn.clientId]);
  if (conn.subscriptionId) facts.push(['Subscription', conn.subscriptionId]);
  const run = describeRun(currentRun());
  if (run) facts.push(['Checked in', run]);
  report(dir, safe`Service connection '${name}' (${conn.id}): ${describeScheme(conn.scheme)}`, {
    title: `Service connection ${name}`,
    fileName: `service-connection-${conn.id}`,
    status: result.status,
    facts,
    links: portalLinks(conn, ctx),
    rows: result.rows,
  });

  const fails = result.rows.filter((r) => r.status === 'fail').map((r) => r.check);
  const warnings = result.rows.filter((r) => r.status === 'warning').map((r) => r.check);
  if (fails.length) {
    return { result: 'Failed' as const, message: safe`Service connection '${name}' failed: ${fails.join(', ')}${warnings.length ? `; warnings: ${warnings.join(', ')}` : ''}. See the fixes above and in the run's summary tab.` };
  }
  if (warnings.length && failOn === 'warning') return { result: 'Failed' as const, message: safe`Service connection '${name}' has warnings (failOn: warning): ${warnings.join(', ')}.` };
  if (warnings.length) return safe`Service connection '${name}' works, with warnings: ${warnings.join(', ')}.`;
  log(safe`Service connection '${name}' works: every check passed.`);
}

void runTask('ValidateServiceConnection', main);
