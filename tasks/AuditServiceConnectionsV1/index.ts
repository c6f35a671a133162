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
import { endGroup, group, log, safe, warn } from '../core/agent/output';
import { variable } from '../core/agent/pipeline-variables';
import { Gates, Pool } from '../core/devops/throttle';
import { DEVOPS_SCOPE, OrganizationReader } from '../core/devops/organization';
import { ACTION_TITLES, GraphAccess, reachOf, runAudit } from '../core/devops/audit';
import { auditLogLines, countsByAction, needingAction, Publication, writeReports } from '../core/devops/audit-report';

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

/** Letters, digits, '.', '_' and '-' (no ';' or ']' that could end a logging command's property, no path separator), not ending with '.'. */
const ARTIFACT_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9_-])?$/;

/**
 * Where the reports are published (README: AuditServiceConnections@1, Reports). The agent sets the
 * input's default (service-connection-audit) when a pipeline leaves it out, so an empty value is
 * one the pipeline set: not published. Only a build job (YAML jobs, deployment jobs and classic
 * builds: System.HostType build) takes artifact.upload; the agent refuses it in a classic release or
 * deployment group job, where the files go to the job's log download instead. A re-run of a job
 * (System.JobAttempt 2 or more) publishes under <name>-attempt<N>: the first attempt's artifact
 * already has the name, and the service refuses a second artifact of the same name in a run.
 */
function publicationOf(hostType: string): Publication {
  const name = stringInput('reportArtifactName');
  if (name === undefined) return { kind: 'none' };
  if (!ARTIFACT_NAME.test(name)) {
    throw new InputError('reportArtifactName', safe`'${name}' is not an artifact name`, 'Use letters, digits, dots, dashes and underscores (at most 100, not ending with a dot), e.g. service-connection-audit; leave it empty to not publish the reports.');
  }
  if (hostType.toLowerCase() !== 'build') return { kind: 'log' };
  const attempt = Number(variable('System.JobAttempt') ?? '1');
  return { kind: 'artifact', name: Number.isInteger(attempt) && attempt > 1 ? `${name}-attempt${attempt}` : name };
}

async function main(): Promise<Outcome> {
  const ctx = readPipelineContext();
  const scope = choiceInput('scope', ['project', 'organization'] as const, 'project');
  const projects = splitList(stringInput('projects'));
  for (const name of projects) {
    // Azure DevOps' naming rules keep / and \ out of project names; the audit would put the name in a URL path, where neither can stand.
    if (/[\\/\u0000-\u001f\u007f-\u009f]/.test(name)) {
      throw new InputError('projects', safe`'${name}' holds a / or \\ or a control character, which no Azure DevOps project name has, and the audit could not address it`, 'Give project names as Azure DevOps shows them, or project ids, separated by commas or new lines.');
    }
  }
  if (projects.length && scope !== 'organization') throw new InputError('projects', 'projects are listed but scope is project', 'Set scope: organization to audit the listed projects, or remove projects.');
  const types = typesInput();
  const unusedDays = daysInput('unusedDays', 90, 1);
  const secretExpiryWarningDays = daysInput('secretExpiryWarningDays', 30, 0);
  const checkSecretExpiry = boolInput('checkSecretExpiry', true);
  const failOn = choiceInput('failOn', ['none', 'warning', 'error'] as const, 'none');
  const publication = publicationOf(ctx.hostType);
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
  let identityKind: 'job' | 'connection';
  let graph: GraphAccess;
  if (tl.getInput('azureDevOpsConnection', false)?.trim()) {
    const conn = readConnection('azureDevOpsConnection');
    const oidc = new OidcTokenClient(ctx, conn);
    const assertions = conn.scheme === 'WorkloadIdentityFederation' ? { fetch: () => oidc.fetch() } : undefined;
    token = (await acquireAccessToken(ctx, conn, DEVOPS_SCOPE, assertions)).token;
    identity = `service connection ${conn.id} (app ${conn.clientId || 'managed identity'})`;
    identityKind = 'connection';
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
    identityKind = 'job';
    graph = {
      enabled: false,
      reason: checkSecretExpiry
        ? 'reading end dates needs azureDevOpsConnection, whose identity has Microsoft Graph Application.Read.All (the job\'s token cannot read Microsoft Graph)'
        : 'checkSecretExpiry is false',
    };
  }

  const reader = new OrganizationReader(ctx, token, new Pool(CONCURRENCY), new Gates(ctx.policy.maxRetryAfterMs));
  const started = Date.now();
  const organization = ctx.collectionUri.replace(/\/+$/, '').split('/').pop() ?? ctx.collectionUri;
  const reach = reachOf(identityKind, organization, ctx.teamProject || ctx.teamProjectId);
  const result = await runAudit(ctx, reader, { scope, projects, types, unusedDays, secretExpiryWarningDays, graph, now: Date.now(), reach });
  const requests = Object.values(reader.requests).reduce((a, b) => a + b, 0);
  const header = {
    organization,
    scope: scope === 'project' ? `project ${ctx.teamProject || ctx.teamProjectId}` : projects.length ? `projects ${projects.join(', ')}` : 'every project',
    identity,
    projectsAudited: result.projectsAudited,
    generatedAt: new Date().toISOString(),
    requests,
  };
  const files = writeReports(ctx.tempDirectory, header, result, publication);

  const connections = result.rows.filter((r) => r.id).length;
  const needs = needingAction(result.rows).length;
  group(safe`Service connections of ${header.scope} (${connections}), read as ${identity}`);
  for (const line of auditLogLines(result.rows)) log(line);
  endGroup();
  for (const [action, n] of countsByAction(result.rows)) if (n) log(`${String(n).padStart(5)}  ${ACTION_TITLES[action]}`);
  log(`${requests} requests (${Object.entries(reader.requests).map(([k, v]) => `${k} ${v}`).join(', ')}) in ${((Date.now() - started) / 1000).toFixed(1)} s${reader.gates.totalPauses() ? `; throttled ${reader.gates.totalPauses()} time(s), requests paused as asked` : ''}.`);
  // What the audit covered; each gap is a warning on the run. Project names in them are outside text.
  log(safe`${result.coverage.statement}`);
  for (const w of result.coverage.warnings) warn(safe`${w}`);

  tl.uploadSummary(files.markdown);
  tl.addAttachment('WorkloadIdentity.Audit', 'service-connection-audit.csv', files.csv);
  tl.addAttachment('WorkloadIdentity.Audit', 'service-connection-audit.json', files.json);
  publish(publication, files);
  setOutput('auditStatus', result.status);
  setOutput('auditCoverage', result.coverage.extent);
  setOutput('connectionsAudited', String(connections));
  setOutput('connectionsNeedingAction', String(needs));
  setOutput('reportJsonPath', files.json);
  setOutput('reportCsvPath', files.csv);
  setOutput('reportArtifactName', publication.kind === 'artifact' ? publication.name : '');

  const verdict = `${needs} of ${result.rows.length} rows need action (${connections} connections audited); coverage ${result.coverage.extent}; status ${result.status}.`;
  if ((failOn === 'warning' && result.status !== 'ok') || (failOn === 'error' && result.status === 'error')) {
    return { result: 'Failed' as const, message: `${verdict} failOn is ${failOn}. See the summary on the run's Extensions tab for each fix.` };
  }
  // An audit that covered nothing is not a success: the run shows it (partially succeeded).
  if (result.coverage.extent === 'empty') return `${verdict} The audit covered nothing: see the warnings.`;
  log(verdict);
}

/** Publishes the report folder (the CSV, the JSON and the summary's markdown) as the run's artifact, or the two reports with the job's log. */
function publish(p: Publication, files: { dir: string; csv: string; json: string }): void {
  if (p.kind === 'artifact') {
    // The artifact name is the input's (checked above, never outside text): task-lib escapes the properties and the path anyway.
    tl.uploadArtifact(p.name, files.dir, p.name);
    log(`Reports: published as the artifact '${p.name}' of this run (the run's page: Related > Published; az pipelines runs artifact download --run-id <run> --artifact-name ${p.name} --path <folder>; a later job: download: current, artifact: ${p.name}).`);
  } else if (p.kind === 'log') {
    tl.uploadFile(files.csv);
    tl.uploadFile(files.json);
    log('Reports: a classic release or deployment group job cannot publish an artifact (the agent refuses artifact.upload there), so the CSV and JSON reports are attached to this job\'s log: the release\'s Logs > Download all logs.');
  } else {
    log('Reports: not published (reportArtifactName is empty); they are on the agent at reportCsvPath and reportJsonPath until the job ends.');
  }
}

void runTask('AuditServiceConnections', main);
