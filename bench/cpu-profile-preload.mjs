// Loaded with `--import` into node processes by bench/fixed-rate.ts --profile: samples the
// process with the inspector's CPU profiler and writes the profile when it exits. With
// HYPERMESH_CPU_PROFILE_ON_SIGNAL set, sampling starts at the first SIGUSR2 instead of at once
// (so a profile can cover just the measured window).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.HYPERMESH_CPU_PROFILE_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  let started = false;
  const start = () => {
    started = true;
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: 500 });
    session.post('Profiler.start');
  };
  if (process.env.HYPERMESH_CPU_PROFILE_ON_SIGNAL) process.once('SIGUSR2', start);
  else start();
  process.on('exit', () => {
    if (!started) return;
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
