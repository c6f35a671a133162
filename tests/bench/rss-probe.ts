/** Preloaded with -r into a measured process: writes its peak RSS (KiB) where BENCH_RSS_FILE says. */
import * as fs from 'node:fs';

process.on('exit', () => {
  const file = process.env.BENCH_RSS_FILE;
  if (file) fs.writeFileSync(file, String(process.resourceUsage().maxRSS));
});
