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
import { endGroup, group, log, safe, warn } from '../core/agent/output';
import { detailLines } from '../core/agent/summary';
import { ENDPOINT_TYPE_LABELS, FederatedEndpoint, readFederatedEndpoint } from '../core/devops/federated-endpoint';
import { validateFederatedEndpoint } from './federated';

type ConnectionType = 'azureResourceManager' | 'aws' | 'gcp' | 'oidc';
const TYPES = ['azureResourceManager', 'aws', 'gcp', 'oidc'] as const;

/** Each connection type's input (task.json name, YAML name), as FetchOidcToken@1's. */
const CONNECTION_INPUTS: Record<ConnectionType, { input: string; yaml: string }> = {
  azureResourceManager: { input: 'connectedServiceNameARM', yaml: 'azureSubscription' },
  aws: { input: 'awsConnection', yaml: 'awsConnection' },
  gcp: { input: 'gcpConnection', yaml: 'gcpConnection' },
  oidc: { input: 'oidcConnection', yaml: 'oidcConnection' },
};

/**
 * Which connection to check: exactly one. connectionType is the classic editor's selector; the
 * agent hands its default (azureResourceManager) when YAML leaves it out, so then the type is the
 * one connection input that is set (two set: an error naming both; none: an error naming
 * azureSubscription). An explicit other type wins; a stale input of another type is ignored with
 * a warning.
 */
function selectConnectionType(): ConnectionType {
  const raw = stringInput('connectionType') ?? 'azureResourceManager';
  const type = TYPES.find((t) => t.toLowerCase() === raw.toLowerCase());
  if (!type) throw new InputError('connectionType', safe`'${raw}' is not a connection type`, `Set connectionType to one of ${TYPES.join(', ')}, or leave it out and set one connection input.`);
  const set = TYPES.filter((t) => stringInput(CONNECTION_INPUTS[t].input) !== undefined);
  if (type !== 'azureResourceManager') {
    for (const other of set.filter((t) => t !== type)) warn(`connectionType is ${type}: ${CONNECTION_INPUTS[other].yaml} is ignored.`);
    return type;
  }
  if (set.length > 1) {
    const names = set.map((t) => CONNECTION_INPUTS[t].yaml);
    throw new InputError(names[0], `${names.join(' and ')} are all set; the task checks one connection`, `Keep one of ${names.join(', ')} (or run the task once per connection).`);
  }
  if (!set.length) throw new InputError('azureSubscription', 'no service connection is given', 'Set one of azureSubscription, awsConnection, gcpConnection or oidcConnection to the connection to check.');
  return set[0];
}

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
  for (const line of detailLines(r.rows)) log(line);
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
  const type = selectConnectionType();
  if (type !== 'azureResourceManager') {
    if (scope || requiredRoles.length) throw new InputError(scope ? 'scope' : 'requiredRoles', `Azure roles are checked for Azure Resource Manager connections only, not for a connection of type ${ENDPOINT_TYPE_LABELS[type]}`, 'Remove scope and requiredRoles, or check an Azure Resource Manager connection (azureSubscription).');
    return otherConnection(ctx, dir, type, failOn);
  }

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
    return { result: 'Failed' as const, message: safe`Service connection '${name}' failed: ${fails.join(', ')}${warnings.length ? `; warnings: ${warnings.join(', ')}` : ''}. See the fixes above and in the summary on the run's Extensions tab.` };
  }
  if (warnings.length && failOn === 'warning') return { result: 'Failed' as const, message: safe`Service connection '${name}' has warnings (failOn: warning): ${warnings.join(', ')}.` };
  if (warnings.length) return safe`Service connection '${name}' works, with warnings: ${warnings.join(', ')}.`;
  log(safe`Service connection '${name}' works: every check passed.`);
}

/** The verdict of a run from its rows, as the task's result. */
function outcome(name: string, rows: Row[], failOn: 'error' | 'warning'): Outcome {
  const fails = rows.filter((r) => r.status === 'fail').map((r) => r.check);
  const warnings = rows.filter((r) => r.status === 'warning').map((r) => r.check);
  if (fails.length) {
    return { result: 'Failed' as const, message: safe`Service connection '${name}' failed: ${fails.join(', ')}${warnings.length ? `; warnings: ${warnings.join(', ')}` : ''}. See the fixes above and in the summary on the run's Extensions tab.` };
  }
  if (warnings.length && failOn === 'warning') return { result: 'Failed' as const, message: safe`Service connection '${name}' has warnings (failOn: warning): ${warnings.join(', ')}.` };
  if (warnings.length) return safe`Service connection '${name}' works, with warnings: ${warnings.join(', ')}.`;
  log(safe`Service connection '${name}' works: every check passed.`);
}

/** A connection of the extension's own types (AWS, Google Cloud, OpenID Connect). */
async function otherConnection(ctx: ReturnType<typeof readPipelineContext>, dir: string, type: Exclude<ConnectionType, 'azureResourceManager'>, failOn: 'error' | 'warning'): Promise<Outcome> {
  const { input, yaml } = CONNECTION_INPUTS[type];
  const label = ENDPOINT_TYPE_LABELS[type];
  let endpoint: FederatedEndpoint;
  try {
    endpoint = readFederatedEndpoint(input, type, yaml);
  } catch (e) {
    const given = tl.getInput(input, false)?.trim() || '(none)';
    report(dir, safe`Service connection '${given}': could not be read`, { title: `Service connection ${given}`, fileName: `service-connection-${given}`, status: 'error', facts: [['Connection', given], ['Type', label]], links: [], rows: [failureRow('Service connection', e)] });
    throw e;
  }
  let result: ValidationResult;
  try {
    result = await validateFederatedEndpoint(ctx, endpoint);
  } catch (e) {
    result = { rows: [failureRow('Validation', e)], status: 'error' };
  }
  const name = result.endpoint?.name ?? endpoint.id;
  const facts: [string, string][] = [['Connection id', endpoint.id], ['Type', label]];
  const run = describeRun(currentRun());
  if (run) facts.push(['Checked in', run]);
  const links = ctx.collectionUri && (ctx.teamProject || ctx.teamProjectId)
    ? [{ title: 'Service connection in Azure DevOps', url: `${ctx.collectionUri}${encodeURIComponent(ctx.teamProject || ctx.teamProjectId)}/_settings/adminservices?resourceId=${encodeURIComponent(endpoint.id)}` }]
    : [];
  report(dir, safe`Service connection '${name}' (${endpoint.id}): ${label}`, { title: `Service connection ${name}`, fileName: `service-connection-${endpoint.id}`, status: result.status, facts, links, rows: result.rows });
  return outcome(name, result.rows, failOn);
}

void runTask('ValidateServiceConnection', main);
