/**
 * The environment the agent gives a task, laid out as the agent lays it out for each kind of job:
 * a build job, a YAML deployment job, a classic release job and a deployment-group job.
 *
 * - Variables per Microsoft's predefined-variable pages ("Predefined variables", "Classic release and
 *   artifacts variables"): the ~100 a real job carries, so that task-lib loads as many as it does on
 *   an agent. In a release the Build.* variables describe the primary artifact's build.
 * - Each variable as the agent's Handler.cs writes it: NAME with '.' and ' ' as '_', upper case;
 *   secret ones as SECRET_<NAME>; the names in VSTS_PUBLIC_VARIABLES / VSTS_SECRET_VARIABLES (JSON).
 * - Endpoints by AddEndpointsToEnvironment: a connection by its id (lower case), the system
 *   connection as SYSTEMVSSCONNECTION (upper case). In a classic release or deployment-group job its
 *   URL and System.TeamFoundationServerUri are the Release Management host, while System.CollectionUri
 *   is the collection; System.OidcRequestUri may be on either, or unset.
 * - casing 'windows': Windows' environment is case-insensitive, so task-lib's
 *   getEndpointUrl('SystemVssConnection') finds the upper-case name there. On a POSIX test machine
 *   the lookups a Windows agent would answer are added under the names task-lib asks for. The
 *   Windows leg runs the same layout under Windows Node.js, where the folding is real.
 *
 * Nothing here knows about the emulator: tests/helpers/agent.ts points it at one.
 */
import * as crypto from 'node:crypto';
import * as path from 'node:path';

export type JobKind = 'build' | 'deployment' | 'release' | 'deploymentGroup';
export const JOB_KINDS: readonly JobKind[] = ['build', 'deployment', 'release', 'deploymentGroup'];

/** Where System.OidcRequestUri points: the collection's host, the Release Management host, or not set. */
export type OidcRequestHost = 'collection' | 'releaseManagement' | 'none';

export interface AgentJobOptions {
  kind?: JobKind;
  /** https://dev.azure.com/<org>/ (or an Azure DevOps Server collection), with a trailing slash. */
  collectionUri: string;
  /**
   * The Release Management URL of a release or deployment-group job. Default: https://vsrm.dev.azure.com/<org>/
   * for https://dev.azure.com/<org>/, https://<org>.vsrm.visualstudio.com/ for https://<org>.visualstudio.com/,
   * and the collection itself on Azure DevOps Server, which serves both.
   */
  releaseManagementUri?: string;
  projectId: string;
  projectName: string;
  /** The job's OAuth token (the SystemVssConnection endpoint's AccessToken). */
  accessToken: string;
  tempDirectory: string;
  /** Agent.WorkFolder: by default the folder that holds tempDirectory, as on an agent. */
  workFolder?: string;
  planId?: string;
  jobId?: string;
  oidcRequestHost?: OidcRequestHost;
  casing?: 'posix' | 'windows';
  /** Agent.OS: Linux, Windows_NT or Darwin. */
  agentOs?: 'Linux' | 'Windows_NT' | 'Darwin';
  debug?: boolean;
  /** Further pipeline variables (name as written in the pipeline: value); public. */
  variables?: Record<string, string>;
  /** Further secret pipeline variables. */
  secretVariables?: Record<string, string>;
}

export interface AgentJob {
  env: Record<string, string>;
  kind: JobKind;
  /** System.HostType: build, release or deployment (a deployment-group job). */
  hostType: string;
  planId: string;
  jobId: string;
  collectionUri: string;
  /** The SystemVssConnection endpoint's URL. */
  systemVssConnectionUrl: string;
  oidcRequestUri?: string;
}

/** How the agent names a variable in the environment (VarUtil.ConvertToEnvVariableFormat). */
export function environmentName(variable: string): string {
  return variable.replace(/[. ]/g, '_').toUpperCase();
}

/** The Release Management URL of the collection's organisation (see AgentJobOptions.releaseManagementUri). */
export function releaseManagementUriOf(collectionUri: string): string {
  const u = new URL(collectionUri);
  if (u.hostname.toLowerCase() === 'dev.azure.com') return `https://vsrm.dev.azure.com${u.pathname}`;
  const old = /^([a-z0-9-]+)\.visualstudio\.com$/i.exec(u.hostname);
  if (old) return `https://${old[1]}.vsrm.visualstudio.com${u.pathname}`;
  return collectionUri;
}

const HOST_TYPE: Record<JobKind, string> = { build: 'build', deployment: 'build', release: 'release', deploymentGroup: 'deployment' };

/** The agent's environment for one step of a job of `kind`. */
export function agentJob(o: AgentJobOptions): AgentJob {
  const kind = o.kind ?? 'build';
  const hostType = HOST_TYPE[kind];
  const planId = o.planId ?? crypto.randomUUID();
  const jobId = o.jobId ?? crypto.randomUUID();
  const isRelease = kind === 'release' || kind === 'deploymentGroup';
  const rm = o.releaseManagementUri ?? releaseManagementUriOf(o.collectionUri);
  const systemVssConnectionUrl = isRelease ? rm : o.collectionUri;
  const agentOs = o.agentOs ?? 'Linux';
  const windows = agentOs === 'Windows_NT';
  const sep = windows ? '\\' : '/';
  // Agent.TempDirectory is <work folder>/_temp on an agent; task-lib keeps its vault key in the first
  // of Agent.TempDirectory and Agent.WorkFolder that is set, so the work folder must exist.
  const work = o.workFolder ?? (o.tempDirectory ? (windows ? path.win32 : path.posix).dirname(o.tempDirectory) : process.cwd());
  const join = (...p: string[]) => p.join(sep);
  const buildId = String(4000 + crypto.randomInt(1000));
  const buildNumber = `20261207.${crypto.randomInt(1, 9)}`;
  const releaseId = String(300 + crypto.randomInt(100));
  const oidcHost = o.oidcRequestHost ?? 'collection';
  const oidcBase = oidcHost === 'none' ? undefined : oidcHost === 'releaseManagement' ? rm : o.collectionUri;
  const oidcRequestUri = oidcBase ? `${oidcBase}${o.projectId}/_apis/distributedtask/hubs/${hostType}/plans/${planId}/jobs/${jobId}/oidctoken` : undefined;

  const pub: [string, string][] = [
    ['agent.homeDirectory', windows ? 'C:\\agents\\2' : '/home/vsts/agents/4.266.2'],
    ['agent.id', '17'],
    ['agent.jobName', isRelease ? 'Run on agent' : 'Job'],
    ['agent.jobstatus', 'Succeeded'],
    ['agent.machineName', windows ? 'fv-az1029-17' : 'fv-az512-304'],
    ['agent.name', kind === 'deploymentGroup' ? 'web-prod-01' : 'Azure Pipelines 3'],
    ['agent.os', agentOs],
    ['agent.osArchitecture', 'X64'],
    ['agent.ToolsDirectory', windows ? 'C:\\hostedtoolcache\\windows' : '/opt/hostedtoolcache'],
    ['agent.version', '4.266.2'],
    ['agent.workFolder', work],
    ['agent.rootDirectory', work],
    ['agent.TempDirectory', o.tempDirectory],
    ['agent.retainDefaultEncoding', 'false'],
    ['agent.disablelogplugin.TestResultLogPlugin', 'true'],
    ['agent.disablelogplugin.TestFilePublisherPlugin', 'true'],
    ['AZURE_HTTP_USER_AGENT', 'VSTS_d0e9a5e8-3a07-4a26-8d5b-7f2b3c6a9e11_build_42_0'],
    ['MSDEPLOY_HTTP_USER_AGENT', 'VSTS_d0e9a5e8-3a07-4a26-8d5b-7f2b3c6a9e11_build_42_0'],
    ['common.testResultsDirectory', join(work, '1', 'TestResults')],
    ['system.artifactsDirectory', join(work, isRelease ? 'r1' : '1', 'a')],
    ['system.collectionId', 'd0e9a5e8-3a07-4a26-8d5b-7f2b3c6a9e11'],
    ['system.collectionUri', o.collectionUri],
    ['system.culture', 'en-US'],
    ['system.debug', o.debug === false ? 'false' : 'true'],
    ['system.defaultWorkingDirectory', join(work, isRelease ? 'r1' : '1', isRelease ? 'a' : 's')],
    ['system.definitionId', isRelease ? '7' : '42'],
    ['system.definitionName', isRelease ? 'web-deploy' : 'web-ci'],
    ['system.enableAccessToken', 'SecretVariable'],
    ['system.hostType', hostType],
    ['system.isScheduled', 'False'],
    ['system.jobAttempt', '1'],
    ['system.jobDisplayName', isRelease ? 'Run on agent' : 'Job'],
    ['system.jobId', jobId],
    ['system.jobName', isRelease ? 'Job_1' : kind === 'deployment' ? 'Deploy' : 'Job'],
    ['system.jobParallelismTag', 'Public'],
    ['system.jobPositionInPhase', '1'],
    ['system.parallelExecutionType', 'None'],
    ['system.phaseAttempt', '1'],
    ['system.phaseDisplayName', isRelease ? (kind === 'deploymentGroup' ? 'Deployment group job' : 'Agent job') : 'Job'],
    ['system.phaseId', crypto.randomUUID()],
    ['system.phaseName', isRelease ? 'Phase_1' : 'Job'],
    ['system.planId', planId],
    ['system.pullRequest.isFork', 'False'],
    ['system.serverType', 'Hosted'],
    ['system.stageAttempt', '1'],
    ['system.stageDisplayName', isRelease ? 'Production' : kind === 'deployment' ? 'Deploy to production' : '__default'],
    ['system.stageName', isRelease ? 'Production' : kind === 'deployment' ? 'Deploy' : '__default'],
    ['system.taskDefinitionsUri', o.collectionUri],
    ['system.teamFoundationCollectionUri', o.collectionUri],
    ['system.teamFoundationServerUri', systemVssConnectionUrl],
    ['system.teamProject', o.projectName],
    ['system.teamProjectId', o.projectId],
    ['system.timelineId', planId],
    ['system.totalJobsInPhase', '1'],
    ['system.workFolder', work],
    ['task.displayname', 'Workload identity task'],
    ['TF_BUILD', 'True'],
    ['pipeline.workspace', join(work, '1')],
    // Build.* describe this run in a build or YAML deployment job; in a release, the primary artifact's build.
    ['build.artifactStagingDirectory', join(work, '1', 'a')],
    ['build.binariesDirectory', join(work, '1', 'b')],
    ['build.buildId', buildId],
    ['build.buildNumber', buildNumber],
    ['build.buildUri', `vstfs:///Build/Build/${buildId}`],
    ['build.containerId', '9999001'],
    ['build.definitionName', 'web-ci'],
    ['build.definitionVersion', '12'],
    ['build.queuedBy', 'Contoso Admin'],
    ['build.queuedById', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'],
    ['build.reason', 'IndividualCI'],
    ['build.repository.clean', 'False'],
    ['build.repository.git.submoduleCheckout', 'False'],
    ['build.repository.id', 'a1b2c3d4-0000-4000-8000-000000000042'],
    ['build.repository.localPath', join(work, '1', 's')],
    ['build.repository.name', 'web'],
    ['build.repository.provider', 'TfsGit'],
    ['build.repository.uri', `${o.collectionUri}${o.projectName}/_git/web`],
    ['build.requestedFor', 'Contoso Admin'],
    ['build.requestedForEmail', 'admin@contoso.com'],
    ['build.requestedForId', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'],
    ['build.sourceBranch', 'refs/heads/main'],
    ['build.sourceBranchName', 'main'],
    ['build.sourceVersion', 'd3adb33fd3adb33fd3adb33fd3adb33fd3adb33f'],
    ['build.sourceVersionAuthor', 'Contoso Admin'],
    ['build.sourceVersionMessage', 'Deploy the web app'],
    ['build.sourcesDirectory', join(work, '1', 's')],
    ['build.stagingDirectory', join(work, '1', 'a')],
  ];
  if (kind === 'deployment') {
    pub.push(
      ['environment.id', '3'],
      ['environment.name', 'production'],
      ['environment.resourceId', '0'],
      ['environment.resourceName', 'production'],
      ['strategy.name', 'runOnce'],
      ['strategy.cycleName', 'deploy'],
    );
  }
  if (isRelease) {
    pub.push(
      ['agent.releaseDirectory', join(work, 'r1', 'a')],
      ['release.artifacts._web-ci.buildId', buildId],
      ['release.artifacts._web-ci.buildNumber', buildNumber],
      ['release.artifacts._web-ci.definitionName', 'web-ci'],
      ['release.artifacts._web-ci.type', 'Build'],
      ['release.attemptNumber', '1'],
      ['release.definitionEnvironmentId', '11'],
      ['release.definitionId', '7'],
      ['release.definitionName', 'web-deploy'],
      ['release.deployment.requestedFor', 'Contoso Admin'],
      ['release.deployment.requestedForEmail', 'admin@contoso.com'],
      ['release.deployment.requestedForId', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'],
      ['release.deploymentID', '912'],
      ['release.deployPhaseID', '1204'],
      ['release.environmentId', '1417'],
      ['release.environmentName', 'Production'],
      ['release.environmentUri', `vstfs:///ReleaseManagement/Environment/1417`],
      ['release.environments.Production.status', 'InProgress'],
      ['release.primaryArtifactSourceAlias', '_web-ci'],
      ['release.reason', 'ContinuousDeployment'],
      ['release.releaseDescription', 'Triggered by web-ci'],
      ['release.releaseId', releaseId],
      ['release.releaseName', `Release-${releaseId}`],
      ['release.releaseUri', `vstfs:///ReleaseManagement/Release/${releaseId}`],
      ['release.releaseWebURL', `${o.collectionUri}${o.projectName}/_releaseProgress?_a=release-pipeline-progress&releaseId=${releaseId}`],
      ['release.requestedFor', 'Contoso Admin'],
      ['release.requestedForEmail', 'admin@contoso.com'],
      ['release.requestedForId', '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d'],
      ['release.skipArtifactsDownload', 'False'],
      ['release.triggeringArtifact.alias', '_web-ci'],
      ['release.attempt', '1'],
    );
  }
  if (oidcRequestUri) pub.push(['system.oidcRequestUri', oidcRequestUri]);
  for (const [k, v] of Object.entries(o.variables ?? {})) pub.push([k, v]);

  const secret: [string, string][] = Object.entries(o.secretVariables ?? {});
  // A YAML job maps System.AccessToken as a secret variable; a classic release only with "Allow
  // scripts to access the OAuth token", which is off by default.
  if (!isRelease) secret.push(['system.accessToken', o.accessToken]);

  const env: Record<string, string> = {};
  for (const [k, v] of pub) env[environmentName(k)] = v;
  for (const [k, v] of secret) env[`SECRET_${environmentName(k)}`] = v;
  env.VSTS_PUBLIC_VARIABLES = JSON.stringify(pub.map(([k]) => k));
  env.VSTS_SECRET_VARIABLES = JSON.stringify(secret.map(([k]) => k));
  env.ENDPOINT_URL_SYSTEMVSSCONNECTION = systemVssConnectionUrl;
  env.ENDPOINT_AUTH_SYSTEMVSSCONNECTION = JSON.stringify({ parameters: { AccessToken: o.accessToken }, scheme: 'OAuth' });
  env.ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION = 'OAuth';
  env.ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN = o.accessToken;
  if (o.casing === 'windows') {
    // What a case-insensitive environment answers to task-lib's mixed-case lookups.
    env.ENDPOINT_URL_SystemVssConnection = systemVssConnectionUrl;
  }
  return { env, kind, hostType, planId, jobId, collectionUri: o.collectionUri, systemVssConnectionUrl, oidcRequestUri };
}
