/**
 * Preloaded with -r into every measured process: at exit, writes its CPU time (user + system, µs)
 * and peak RSS (KiB) as JSON where BENCH_PROBE_FILE says. Wall time on a shared 2-core machine is
 * noisy; CPU time is what the process itself costs.
 */
import * as fs from 'node:fs';

process.on('exit', () => {
  const file = process.env.BENCH_PROBE_FILE;
  if (!file) return;
  const cpu = process.cpuUsage();
  fs.writeFileSync(file, JSON.stringify({ cpuMicros: cpu.user + cpu.system, maxRssKiB: process.resourceUsage().maxRSS }));
});
