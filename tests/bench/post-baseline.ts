/**
 * The yardstick of a post-job step: a dependency-free Node script that deletes the same files. The
 * agent hands the post-job step the state its main step left as VSTS_TASKVARIABLE_<NAME> (the
 * name upper-cased, dots and spaces as underscores); every folder named there (…_DIR, the token file
 * folders; …_JOBCONFIGDIR, AcrLoginFederated's registry logins) is removed.
 */
import * as fs from 'node:fs';

for (const [name, value] of Object.entries(process.env)) {
  if (value && /^VSTS_TASKVARIABLE_\w*(_DIR|JOBCONFIGDIR)$/.test(name)) fs.rmSync(value, { recursive: true, force: true });
}
process.stdout.write('##vso[task.complete result=Succeeded;]\n');
