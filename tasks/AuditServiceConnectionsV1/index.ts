/** AuditServiceConnections@1: every service connection of the project or organisation, what to do about each. Read-only. */
import tl = require('azure-pipelines-task-lib/task');
import { readPipelineContext } from '../core/agent/pipeline-context';
import { readConnection } from '../core/devops/connection';
import { acquireAccessToken } from '../core/azure/entra';
import { OidcTokenClient } from '../core/devops/oidc-token';
import { graphScope, graphUrl } from '../core/azure/graph';
import { boolInput, choiceInput, stringInput } from '../core/agent/inputs';
import { InputError, TaskFailure } from '../core/http/failures';
import { splitList } from '../core/acr/registries';
import { checkAzureDevOpsUrl } from '../core/http/token-hosts';
import { setOutput } from '../core/agent/variables';
import { Outcome, runTask } from '../core/agent/task-runner';
import { endGroup, group, log, safe } from '../core/agent/output';
import { Gates, Pool } from '../core/devops/throttle';
import { DEVOPS_SCOPE, OrganizationReader } from '../core/devops/organization';
import { ACTION_TITLES, GraphAccess, runAudit } from '../core/devops/audit';
import { auditLogLines, countsByAction, needingAction, writeReports } from '../core/devops/audit-report';

/** Requests in flight at once: enough to hide latency, few enough not to be throttled. */
export const CONCURRENCY = 8;

function daysInput(name: string, fallback: number, min: number): number {
  const raw = stringInput(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > 3650) throw new InputError(name, safe`'${raw}' is not a whole number of days from ${min} to 3650`, `Set ${name} to a number of days, e.g. ${fallback}.`);
  return Number(raw);
}

function typesInput(): string[] | undefined {
  const raw = stringInput('connectionTypes') ?? 'azurerm, dockerregistry';
  if (/^all$/i.test(raw)) return undefined;
  const types = splitList(raw).map((t) => t.toLowerCase());
  const bad = types.find((t) => !/^[a-z0-9_.-]+$/.test(t));
  if (bad !== undefined || !types.length) throw new InputError('connectionTypes', safe`'${raw}' is not a list of connection types`, 'Give types such as azurerm, dockerregistry (comma-separated), or all.');
  return types;
}

async function main(): Promise<Outcome> {
  const ctx = readPipelineContext();
  const scope = choiceInput('scope', ['project', 'organization'] as const, 'project');
  const projects = splitList(stringInput('projects'));
  if (projects.length && scope !== 'organization') throw new InputError('projects', 'projects are listed but scope is project', 'Set scope: organization to audit the listed projects, or remove projects.');
  const types = typesInput();
  const unusedDays = daysInput('unusedDays', 90, 1);
  const secretExpiryWarningDays = daysInput('secretExpiryWarningDays', 30, 0);
  const checkSecretExpiry = boolInput('checkSecretExpiry', true);
  const failOn = choiceInput('failOn', ['none', 'warning', 'error'] as const, 'none');
  if (!ctx.tempDirectory) {
    throw new TaskFailure({
      what: 'The pipeline variable Agent.TempDirectory is not set, so the task has nowhere to write its reports.',
      cause: 'The task is not running in an Azure Pipelines job: the agent sets Agent.TempDirectory for every job.',
      fix: 'Run the task in an Azure Pipelines job; to run it by hand, set AGENT_TEMPDIRECTORY to an empty folder.',
      code: 'NO_TEMP_DIRECTORY',
    });
  }
  if (!ctx.collectionUri) {
    throw new TaskFailure({ what: 'The agent did not set System.CollectionUri, so the task does not know the organization.', cause: 'The task is not running in an Azure Pipelines job.', fix: 'Run the task in an Azure Pipelines job.', code: 'NO_COLLECTION' });
  }
  // Before any token: every Azure DevOps URL is built on this one, which must be this organization's.
  checkAzureDevOpsUrl(ctx.collectionUri, ctx.azureDevOps, 'System.CollectionUri');
  if (scope === 'project' && !ctx.teamProjectId && !ctx.teamProject) {
    throw new TaskFailure({ what: 'The agent did not set System.TeamProjectId, so the task does not know the project to audit.', cause: 'The task is not running in an Azure Pipelines job.', fix: 'Run the task in a pipeline of the project, or set scope: organization.', code: 'NO_PROJECT' });
  }

  let token: string;
  let identity: string;
  let graph: GraphAccess;
  if (tl.getInput('azureDevOpsConnection', false)?.trim()) {
    const conn = readConnection('azureDevOpsConnection');
    const oidc = new OidcTokenClient(ctx, conn);
    const assertions = conn.scheme === 'WorkloadIdentityFederation' ? { fetch: () => oidc.fetch() } : undefined;
    token = (await acquireAccessToken(ctx, conn, DEVOPS_SCOPE, assertions)).token;
    identity = `service connection ${conn.id} (app ${conn.clientId || 'managed identity'})`;
    const base = graphUrl(conn.cloud);
    if (!checkSecretExpiry) graph = { enabled: false, reason: 'checkSecretExpiry is false' };
    else if (!base) graph = { enabled: false, reason: `no Microsoft Graph host is known for the cloud ${conn.cloud.name}` };
    else {
      let graphToken: Promise<string> | undefined;
      graph = { enabled: true, baseUrl: base, cloud: conn.cloud.name, tenantId: conn.tenantId, token: () => (graphToken ??= acquireAccessToken(ctx, conn, graphScope(base), assertions).then((t) => t.token)) };
    }
  } else {
    token = ctx.jobAccessToken();
    identity = 'the job\'s access token';
    graph = {
      enabled: false,
      reason: checkSecretExpiry
        ? 'reading end dates needs azureDevOpsConnection, whose identity has Microsoft Graph Application.Read.All (the job\'s token cannot read Microsoft Graph)'
        : 'checkSecretExpiry is false',
    };
  }

  const reader = new OrganizationReader(ctx, token, new Pool(CONCURRENCY), new Gates(ctx.policy.maxRetryAfterMs));
  const started = Date.now();
  const result = await runAudit(ctx, reader, { scope, projects, types, unusedDays, secretExpiryWarningDays, graph, now: Date.now() });
  const requests = Object.values(reader.requests).reduce((a, b) => a + b, 0);
  const organization = ctx.collectionUri.replace(/\/+$/, '').split('/').pop() ?? ctx.collectionUri;
  const header = {
    organization,
    scope: scope === 'project' ? `project ${ctx.teamProject || ctx.teamProjectId}` : projects.length ? `projects ${projects.join(', ')}` : 'every project',
    identity,
    projectsAudited: result.projectsAudited,
    generatedAt: new Date().toISOString(),
    requests,
  };
  const files = writeReports(ctx.tempDirectory, header, result);

  const connections = result.rows.filter((r) => r.id).length;
  const needs = needingAction(result.rows).length;
  group(safe`Service connections of ${header.scope} (${connections}), read as ${identity}`);
  for (const line of auditLogLines(result.rows)) log(line);
  endGroup();
  for (const [action, n] of countsByAction(result.rows)) if (n) log(`${String(n).padStart(5)}  ${ACTION_TITLES[action]}`);
  log(`${requests} requests (${Object.entries(reader.requests).map(([k, v]) => `${k} ${v}`).join(', ')}) in ${((Date.now() - started) / 1000).toFixed(1)} s${reader.gates.totalPauses() ? `; throttled ${reader.gates.totalPauses()} time(s), requests paused as asked` : ''}.`);

  tl.uploadSummary(files.markdown);
  tl.addAttachment('WorkloadIdentity.Audit', 'service-connection-audit.csv', files.csv);
  tl.addAttachment('WorkloadIdentity.Audit', 'service-connection-audit.json', files.json);
  setOutput('auditStatus', result.status);
  setOutput('connectionsAudited', String(connections));
  setOutput('connectionsNeedingAction', String(needs));
  setOutput('reportJsonPath', files.json);
  setOutput('reportCsvPath', files.csv);

  const verdict = `${needs} of ${result.rows.length} rows need action (${connections} connections audited); status ${result.status}.`;
  if ((failOn === 'warning' && result.status !== 'ok') || (failOn === 'error' && result.status === 'error')) {
    return { result: 'Failed' as const, message: `${verdict} failOn is ${failOn}. See the summary on the run's Extensions tab for each fix.` };
  }
  log(verdict);
}

void runTask('AuditServiceConnections', main);
