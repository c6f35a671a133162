/**
 * Which run a step belongs to, for the names and texts that say so (an AWS role session name in
 * CloudTrail, a summary's heading). In a classic release or deployment-group job the Build.*
 * variables describe the primary artifact's build, not this run: the release names it there.
 */
import { variable } from './pipeline-variables';

export interface RunIdentity {
  kind: 'build' | 'release';
  /** The pipeline or release pipeline. */
  pipeline?: string;
  /** The run's name: the build number, or the release's name. */
  name?: string;
  /** The run's id: Build.BuildId or Release.ReleaseId. */
  id?: string;
  /** The release's stage (Release.EnvironmentName), in a release. */
  stage?: string;
}

/**
 * System.HostType is release for a classic release's agent jobs, deployment for its
 * deployment-group jobs (and gates while gates run); a YAML deployment job is a build.
 */
export function currentRun(): RunIdentity {
  const hostType = (variable('System.HostType') ?? '').toLowerCase();
  const releaseId = variable('Release.ReleaseId');
  if (releaseId && (hostType === 'release' || hostType === 'deployment' || hostType === 'gates' || !hostType)) {
    return { kind: 'release', pipeline: variable('Release.DefinitionName'), name: variable('Release.ReleaseName'), id: releaseId, stage: variable('Release.EnvironmentName') };
  }
  return { kind: 'build', pipeline: variable('Build.DefinitionName'), name: variable('Build.BuildNumber'), id: variable('Build.BuildId') };
}

/** "pipeline 'web-ci', run 20261207.3" or "release 'Release-12' of 'web-deploy', stage 'Production'"; undefined outside a pipeline. */
export function describeRun(run: RunIdentity): string | undefined {
  if (run.kind === 'release') {
    const what = run.name ? `release '${run.name}'` : run.id ? `release ${run.id}` : 'a release';
    return `${what}${run.pipeline ? ` of '${run.pipeline}'` : ''}${run.stage ? `, stage '${run.stage}'` : ''}`;
  }
  if (!run.pipeline && !run.name && !run.id) return undefined;
  return `${run.pipeline ? `pipeline '${run.pipeline}', ` : ''}run ${run.name ?? run.id ?? '(unknown)'}`;
}
