/**
 * L0 runner for AuditServiceConnections@1 under TaskMockRunner: the audit itself is mocked (rows
 * from L0_ROWS), so this tests what the task makes of them: inputs, log, summary, reports, outputs, result.
 */
import * as path from 'node:path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { layL0Job } from './federated-harness';

const tmr = new TaskMockRunner(path.join(__dirname, '..', '..', 'tasks', 'AuditServiceConnectionsV1', 'index.js'));
layL0Job();
// A re-run of the job (System.JobAttempt), as the agent sets it.
if (process.env.L0_JOB_ATTEMPT) process.env.SYSTEM_JOBATTEMPT = process.env.L0_JOB_ATTEMPT;
for (const [k, v] of Object.entries(JSON.parse(process.env.L0_INPUTS ?? '{}') as Record<string, string>)) tmr.setInput(k, v);

const rows = JSON.parse(process.env.L0_ROWS ?? '[]') as { severity: string }[];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const real = require(path.join(__dirname, '..', '..', 'tasks', 'core', 'devops', 'audit')) as typeof import('../../tasks/core/devops/audit');
tmr.registerMock('../core/devops/audit', {
  ...real,
  runAudit: async (_ctx: unknown, _reader: unknown, o: { scope: 'project' | 'organization'; projects: string[]; types?: string[]; unusedDays: number; secretExpiryWarningDays: number; graph: { enabled: boolean; reason?: string }; reach: string }) => {
    console.log(`L0: audit scope=${o.scope} projects=${o.projects.join('+') || '-'} types=${o.types?.join('+') ?? 'all'} unused=${o.unusedDays} warn=${o.secretExpiryWarningDays} graph=${o.graph.enabled ? 'on' : `off (${o.graph.reason})`}`);
    // What was read, as the real audit would count it from these rows; L0_COVERAGE overrides (a project not visible, none at all).
    const facts = {
      scope: o.scope, named: o.scope === 'project' ? ['web'] : o.projects, projectsRead: ['web'], projectsNotFound: [] as string[], projectsUnreadable: [] as string[], projectsIncomplete: [] as string[],
      types: o.types, connectionsRead: rows.filter((r) => (r as { id?: string }).id).length, connectionsUnread: 0, ...(JSON.parse(process.env.L0_COVERAGE ?? '{}') as object),
    };
    const coverage = real.assessCoverage(facts, o.reach);
    return { rows, projectsAudited: 1, status: real.auditStatus(rows as never, coverage), coverage };
  },
});

tmr.run();
