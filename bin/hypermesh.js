#!/usr/bin/env node
// Entry point of the `hypermesh` command. The TypeScript sources are compiled to dist/ by
// `npm install` (the `prepare` script) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '..', 'dist', 'node', 'cli.js');
if (!existsSync(cli)) {
  process.stderr.write(
    `hypermesh: ${cli} is missing; build it with "npm run build" (npm install does this too).\n`,
  );
  process.exit(1);
}
const { main } = await import(pathToFileURL(cli).href);
process.exitCode = await main(process.argv.slice(2));
