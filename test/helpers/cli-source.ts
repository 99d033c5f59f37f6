import { main } from '../../src/node/cli.js';

/**
 * `hypermesh` run from this tree's sources (under tsx) rather than the built dist/: what a test
 * spawns when the process under test must be the code it tests. The processes that one starts
 * itself (`dev`'s nodes) still run bin/hypermesh.js.
 */
process.exitCode = await main(process.argv.slice(2));
