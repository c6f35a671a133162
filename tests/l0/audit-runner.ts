/**
 * L0 runner for AuditServiceConnections@1 under TaskMockRunner: the audit itself is mocked (rows
 * from L0_ROWS), so this tests what the task makes of them: inputs, log, summary, reports, outputs, result.
 */
import * as path from 'node:path';
import { TaskMockRunner } from 'azure-pipelines-task-lib/mock-run';
import { layL0Job } from './federated-harness';

const tmr = new TaskMockRunner(path.join(__dirname, '..', '..', 'tasks', 'AuditServiceConnectionsV1', 'index.js'));
layL0Job();
for (const [k, v] of Object.entries(JSON.parse(process.env.L0_INPUTS ?? '{}') as Record<string, string>)) tmr.setInput(k, v);

const rows = JSON.parse(process.env.L0_ROWS ?? '[]') as { severity: string }[];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const real = require(path.join(__dirname, '..', '..', 'tasks', 'core', 'devops', 'audit')) as typeof import('../../tasks/core/devops/audit');
tmr.registerMock('../core/devops/audit', {
  ...real,
  runAudit: async (_ctx: unknown, _reader: unknown, o: { scope: string; projects: string[]; types?: string[]; unusedDays: number; secretExpiryWarningDays: number; graph: { enabled: boolean; reason?: string } }) => {
    console.log(`L0: audit scope=${o.scope} projects=${o.projects.join('+') || '-'} types=${o.types?.join('+') ?? 'all'} unused=${o.unusedDays} warn=${o.secretExpiryWarningDays} graph=${o.graph.enabled ? 'on' : `off (${o.graph.reason})`}`);
    const status = rows.some((r) => r.severity === 'error') ? 'error' : rows.some((r) => r.severity === 'warning') ? 'warning' : 'ok';
    return { rows, projectsAudited: 1, status };
  },
});

tmr.run();
