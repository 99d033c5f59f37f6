// Loaded with `--import` into node processes by bench/trustchain/fixed-rate.ts --profile:
// samples the process with the inspector's CPU profiler and writes the profile when it exits.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.HYPERMESH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.on('exit', () => {
    // The same-thread session answers synchronously, so this runs before the process ends.
    session.post('Profiler.stop', (error, result) => {
      if (error) return;
      writeFileSync(
        path.join(dir, `node-${process.pid}.cpuprofile`),
        JSON.stringify(result.profile),
      );
    });
  });
}
