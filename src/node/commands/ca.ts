import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { Command } from '../commands.js';
import type { GenesisDocument } from '../../consensus/genesis.js';
import type { NodeRpcClient } from '../../consensus/net/index.js';
import { bytesEqual, fromHex, toHex } from '../../crypto/bytes.js';
import { encodeTrustBundle } from '../../trustchain/ca/bundle.js';
import {
  CA_MODULE_NAME,
  approvalQuorumReached,
  caAddIntermediateBody,
  caApproveIntermediateBody,
  intermediateHash,
  readIntermediates,
  trustBundleInEffect,
  type IntermediateListing,
} from '../../trustchain/ca-module/index.js';
import { CliError } from '../cli-error.js';
import { checkOutputPath, writeFileAtomically } from '../io.js';
import { CLUSTER_FILES } from '../cluster-init.js';
import { readGenesisFile } from '../cluster-layout.js';
import {
  DEFAULT_CLUSTER_FILE,
  findNode,
  loadClusterTarget,
  openOperatorSession,
} from '../operator.js';
import { notCommittedReason, stoqFailure, submitTransaction } from '../tx-submit.js';
import { parseWithPositionals } from './block.js';
import { integerOption } from './cluster.js';

/**
 * `hypermesh ca intermediate issue|approve|list`: the governed addition of a validator's
 * intermediate (docs/ca.md, "Adding a validator's intermediate"; docs/cli.md).
 */

const commonOptions = {
  cluster: { type: 'string' },
  via: { type: 'string' },
  'timeout-ms': { type: 'string' },
  json: { type: 'boolean' },
} as const;

const COMMON_HELP = `  --cluster DIR       the "cluster init" directory (default: the directory of ${DEFAULT_CLUSTER_FILE})
  --via NAME|ADDR     node to submit to and read from (default: the first genesis validator)
  --timeout-ms MS     how long to wait for the commit (default 60000)
  --json              print one JSON document`;

async function clusterDirOf(value: string | undefined): Promise<string> {
  const dir = path.resolve(value ?? path.dirname(DEFAULT_CLUSTER_FILE));
  if (!(await stat(dir).catch(() => null))?.isDirectory()) {
    throw new CliError(
      `--cluster ${dir} must be a "cluster init" directory (it holds the node keys)`,
    );
  }
  return dir;
}

async function withNode<T>(
  dir: string,
  via: string | undefined,
  work: (client: NodeRpcClient, genesis: GenesisDocument) => Promise<T>,
  loaded?: Awaited<ReturnType<typeof loadClusterTarget>>,
): Promise<T> {
  const target = loaded ?? (await loadClusterTarget(dir));
  const node =
    via === undefined ? (target.nodes[0] as (typeof target.nodes)[number]) : findNode(target, via);
  const genesis = await readGenesisFile(target.genesisFile);
  const session = await openOperatorSession(target);
  try {
    return await work(session.client(node.name), genesis).catch(stoqFailure(node.name));
  } finally {
    await session.close();
  }
}

/** Submits a `ca` transaction and waits for its commit; a refusal is a CliError with its code. */
async function submitCa(
  client: NodeRpcClient,
  genesis: GenesisDocument,
  privateKey: KeyObject,
  body: Uint8Array,
  timeoutMs: number,
): Promise<{ txHash: string; height: number }> {
  const outcome = await submitTransaction({
    client,
    genesis,
    privateKey,
    module: CA_MODULE_NAME,
    body,
    wait: true,
    timeoutMs,
  });
  if (!outcome.admitted) {
    throw new CliError(`the node refused the transaction: ${outcome.code}: ${outcome.message}`, 1);
  }
  if (outcome.status.status !== 'committed') {
    throw new CliError(`tx ${outcome.txHash} ${notCommittedReason(outcome.status, timeoutMs)}`, 1);
  }
  if (outcome.status.code !== 0) {
    throw new CliError(
      `tx ${outcome.txHash} refused at height ${outcome.status.height}: ${outcome.status.log}`,
      1,
    );
  }
  return { txHash: outcome.txHash, height: outcome.status.height };
}

function timeoutOf(value: string | undefined): number {
  return integerOption(value, 'timeout-ms', { min: 100, max: 3_600_000 }, 60_000);
}

const issue: Command = {
  name: 'ca intermediate issue',
  summary: "issue a new validator's intermediate with the root keys and propose it to the cluster",
  help: `
usage: hypermesh ca intermediate issue --node NAME [--cluster DIR] [--passphrase-env VAR]
                                       [--validity-days N] [--via NAME|ADDR] [--timeout-ms MS]
                                       [--json]

The root key holders' step of the governed procedure (docs/ca.md, "Adding a validator's
intermediate"). Reads DIR/NAME/ca-intermediate-request.json (written by "cluster add-node":
the node's P-256 CSR, its FALCON key and proof, its node key), decrypts the root keys in
DIR/operator/ with the passphrase (DIR/operator/ca-root-passphrase.txt, or the variable named by
--passphrase-env), issues and endorses the intermediate, submits "ca add-intermediate" from the
operator key and, once that is committed, writes DIR/NAME/ca-intermediate.pem (atomically). Every
option, the operator key and the output directory are checked first: a refusal writes and
submits nothing. The intermediate takes effect once more than 2/3 of the current intermediate
holders have run "ca intermediate approve".

options:
  --node NAME         the node the intermediate is for (its directory DIR/NAME)
  --passphrase-env V  environment variable holding the root key passphrase
  --validity-days N   intermediate validity (default 1095, at least 91, cut at the root's end)
${COMMON_HELP}
`,
  async run(args, io) {
    const { values } = parseWithPositionals(
      args,
      {
        ...commonOptions,
        node: { type: 'string' },
        'passphrase-env': { type: 'string' },
        'validity-days': { type: 'string' },
      },
      [],
    );
    if (values.node === undefined) throw new CliError('--node NAME is required (see --help)');
    // Everything that can be refused is, before the root keys issue anything.
    const timeoutMs = timeoutOf(values['timeout-ms']);
    const tools = await import('../ca-intermediate.js');
    const validityDays =
      values['validity-days'] === undefined
        ? undefined
        : integerOption(
            values['validity-days'],
            'validity-days',
            { min: tools.MIN_INTERMEDIATE_VALIDITY_DAYS, max: 36_500 },
            1,
          );
    const dir = await clusterDirOf(values.cluster);
    const target = await loadClusterTarget(dir);
    if (values.via !== undefined) findNode(target, values.via);
    const certificateFile = tools.intermediateCertificateFile(dir, values.node);
    await checkOutputPath(certificateFile, `--node ${values.node}`);
    const { genesisTrustBundle } = await import('../cert-tools.js');
    const { operatorKey } = await import('../kv-tools.js');
    const privateKey = await operatorKey(target.operator.keyFile);
    const genesis = await readGenesisFile(path.join(dir, CLUSTER_FILES.genesis));
    const bundle = genesisTrustBundle(genesis);
    const issued = await tools.issueNodeIntermediate({
      clusterDir: dir,
      node: values.node,
      bundle,
      passphrase: await tools.rootPassphrase(dir, values['passphrase-env']),
      now: new Date(),
      ...(validityDays === undefined ? {} : { validityDays }),
    });
    const committed = await withNode(
      dir,
      values.via,
      (client, g) =>
        submitCa(
          client,
          g,
          privateKey,
          caAddIntermediateBody({
            name: issued.name,
            account: issued.account,
            certificate: issued.certificate,
            endorsement: issued.endorsement,
          }),
          timeoutMs,
        ),
      target,
    );
    await tools.writeIssuedIntermediate(issued).catch((error: Error) => {
      throw new CliError(
        `intermediate ${toHex(issued.hash)} for ${issued.name} was proposed (tx ${committed.txHash} at height ${committed.height}) ` +
          `but cannot be written to ${issued.certificateFile}: ${error.message}`,
        1,
      );
    });
    const hash = toHex(issued.hash);
    if (values.json === true) {
      io.out(
        `${JSON.stringify({ name: issued.name, hash, account: toHex(issued.account), certificateFile: issued.certificateFile, ...committed })}\n`,
      );
    } else {
      io.out(
        `intermediate for ${issued.name} proposed (hash ${hash}; tx ${committed.txHash} at height ${committed.height})\n` +
          `  wrote ${issued.certificateFile}\n` +
          `  each intermediate holder approves: hypermesh ca intermediate approve --node HOLDER --hash ${hash} --cluster ${dir}\n`,
      );
    }
    return 0;
  },
};

const approve: Command = {
  name: 'ca intermediate approve',
  summary: "approve a proposed intermediate with an intermediate holder's node key",
  help: `
usage: hypermesh ca intermediate approve --node NAME (--hash HEX | --for NAME) [--cluster DIR]
                                         [--via NAME|ADDR] [--timeout-ms MS] [--json]

Submits "ca approve-intermediate" for the proposal HEX (the hash of the intermediate and the node
key it is bound to, as "ca intermediate issue" and "ca intermediate list" print it), or for the open proposal of
validator NAME (--for; only when its certificate is DIR/NAME/ca-intermediate.pem), signed with the node key of NAME (DIR/NAME/config.json's identity key):
NAME must hold an intermediate. The proposal takes effect with the approval that makes more
than 2/3 of the current holders. The node key is also the one the node publishes with; if the
node refuses the approval for its sequence number, run the command again.

options:
  --node NAME         the approving intermediate holder (its directory DIR/NAME)
  --hash HEX          the proposal's hash
  --for NAME          the proposal for this validator (instead of --hash)
${COMMON_HELP}
`,
  async run(args, io) {
    const { values } = parseWithPositionals(
      args,
      {
        ...commonOptions,
        node: { type: 'string' },
        hash: { type: 'string' },
        for: { type: 'string' },
      },
      [],
    );
    if (values.node === undefined) throw new CliError('--node NAME is required (see --help)');
    if ((values.hash === undefined) === (values.for === undefined)) {
      throw new CliError('give exactly one of --hash HEX and --for NAME (see --help)');
    }
    if (values.hash !== undefined && !/^[0-9a-f]{64}$/.test(values.hash)) {
      throw new CliError('--hash must be 64 lowercase hex digits');
    }
    const timeoutMs = timeoutOf(values['timeout-ms']);
    const dir = await clusterDirOf(values.cluster);
    const tools = await import('../ca-intermediate.js');
    const privateKey = await tools.nodeIdentityKey(dir, values.node);
    const forFile =
      values.for === undefined ? null : tools.intermediateCertificateFile(dir, values.for);
    let issuedFor: Uint8Array = new Uint8Array();
    if (forFile !== null) {
      try {
        issuedFor = await tools.readIntermediateCertificate(forFile);
      } catch (error) {
        throw new CliError(
          `--for ${values.for} compares the proposal with ${forFile}, which cannot be read (${(error as Error).message}): use --hash`,
        );
      }
    }
    const via = values.via ?? values.node;
    const { committedCaCheck } = await import('../cert-tools.js');
    const result = await withNode(dir, via, async (client, genesis) => {
      let hash: Uint8Array;
      if (values.hash !== undefined) hash = fromHex(values.hash);
      else {
        const listing = await readIntermediates(
          (request) => client.query(request),
          committedCaCheck(client),
        );
        const open = listing.proposals.find((p) => p.name === values.for && !p.expired);
        if (open === undefined)
          throw new CliError(`no open intermediate proposal for ${values.for}`);
        // Anyone may propose: approve by name only the certificate this cluster directory issued.
        if (!bytesEqual(open.certificate, issuedFor)) {
          throw new CliError(
            `the open proposal for ${values.for} (${toHex(open.hash)}) is not the intermediate in ${forFile}: approve it with --hash only if you mean it`,
          );
        }
        hash = open.hash;
      }
      const committed = await submitCa(
        client,
        genesis,
        privateKey,
        caApproveIntermediateBody(hash),
        timeoutMs,
      );
      const after = await readIntermediates(
        (request) => client.query(request),
        committedCaCheck(client),
      );
      const hex = toHex(hash);
      const active = after.added.find(
        (record) => toHex(intermediateHash(record.certificate, record.account)) === hex,
      );
      return { hash: hex, ...committed, active: active?.name ?? null };
    });
    if (values.json === true) {
      io.out(
        `${JSON.stringify({ hash: result.hash, txHash: result.txHash, height: result.height, active: result.active })}\n`,
      );
    } else {
      io.out(
        `approved ${result.hash} as ${values.node} (tx ${result.txHash} at height ${result.height})` +
          (result.active === null
            ? '\n'
            : `: the intermediate of ${result.active} is now in effect\n`),
      );
    }
    return 0;
  },
};

interface ListedIntermediate {
  readonly name: string;
  readonly status: 'genesis' | 'active' | 'pending' | 'expired';
  readonly hash: string;
  readonly account: string | null;
  readonly height: number | null;
  readonly approvals: readonly string[];
  readonly expiresAt: number | null;
}

function describe(
  genesis: GenesisDocument,
  listing: IntermediateListing,
): {
  readonly holders: number;
  readonly needed: number;
  readonly entries: readonly ListedIntermediate[];
} {
  const app = genesis.app?.[CA_MODULE_NAME] as { trustBundle?: unknown } | undefined;
  const bundleValidators =
    (app?.trustBundle as { validators?: { name: string }[] } | undefined)?.validators ?? [];
  const byName = new Map(genesis.validators.map((v) => [v.name, toHex(v.publicKey)]));
  const entries: ListedIntermediate[] = [];
  for (const v of bundleValidators) {
    entries.push({
      name: v.name,
      status: 'genesis',
      hash: '',
      account: byName.get(v.name) ?? null,
      height: 0,
      approvals: [],
      expiresAt: null,
    });
  }
  for (const record of listing.added) {
    entries.push({
      name: record.name,
      status: 'active',
      hash: toHex(intermediateHash(record.certificate, record.account)),
      account: toHex(record.account),
      height: record.activatedAt,
      approvals: record.approvals,
      expiresAt: null,
    });
  }
  for (const proposal of listing.proposals) {
    entries.push({
      name: proposal.name,
      status: proposal.expired ? 'expired' : 'pending',
      hash: toHex(proposal.hash),
      account: toHex(proposal.account),
      height: proposal.height,
      approvals: proposal.approvals,
      expiresAt: proposal.expiresAt,
    });
  }
  const holders = bundleValidators.length + listing.added.length;
  let needed = 1;
  while (!approvalQuorumReached(needed, holders)) needed++;
  return { holders, needed, entries };
}

const list: Command = {
  name: 'ca intermediate list',
  summary: 'list the intermediates in effect and the open proposals',
  help: `
usage: hypermesh ca intermediate list [--cluster FILE|DIR] [--via NAME|ADDR] [--json]
                                      [--write-bundle FILE]

Reads the "ca" module's committed state from a node, all at one height: every answer's state
proof is checked against its state root, and that root against the header of its height, which
the validator quorum's commit must sign (a node that lies is refused with a ROOT_* error). It
prints each intermediate: genesis (in the genesis trust bundle), active (added and approved, with
the height it took effect and its approvers), pending (with its approvals so far and the last
height approvals are accepted) or expired. --write-bundle writes the trust bundle in effect (the
genesis bundle with the added intermediates) for offline verification of their certificates.

options:
  --cluster FILE|DIR  cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --via NAME|ADDR     node to read from (default: the first)
  --json              print one JSON document
  --write-bundle FILE write the trust bundle in effect
`,
  async run(args, io) {
    const { values } = parseWithPositionals(
      args,
      { ...commonOptions, 'write-bundle': { type: 'string' } },
      [],
    );
    const bundleFile = values['write-bundle'];
    if (bundleFile !== undefined) await checkOutputPath(bundleFile, `--write-bundle ${bundleFile}`);
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const { committedCaCheck, genesisTrustBundle } = await import('../cert-tools.js');
    const { listing, genesis } = await withNode(target.source, values.via, async (client, g) => ({
      listing: await readIntermediates(
        (request) => client.query(request),
        committedCaCheck(client),
      ),
      genesis: g,
    }));
    const bundle = genesisTrustBundle(genesis);
    const summary = describe(genesis, listing);
    if (bundleFile !== undefined) {
      const current = trustBundleInEffect(bundle, listing.added);
      await writeFileAtomically(bundleFile, encodeTrustBundle(current));
    }
    if (values.json === true) {
      io.out(`${JSON.stringify({ height: listing.height, ...summary })}\n`);
      return 0;
    }
    io.out(
      `intermediates at height ${listing.height}: ${summary.holders} holder(s), a proposal needs ${summary.needed} approval(s)\n`,
    );
    for (const entry of summary.entries) {
      const detail =
        entry.status === 'genesis'
          ? 'in the genesis trust bundle'
          : entry.status === 'active'
            ? `since height ${entry.height}, approved by ${entry.approvals.join(', ')}`
            : `proposed at height ${entry.height}, approvals ${entry.approvals.length}/${summary.needed}` +
              `${entry.approvals.length > 0 ? ` (${entry.approvals.join(', ')})` : ''}, ` +
              `${entry.status === 'expired' ? 'expired after' : 'open until'} height ${entry.expiresAt}`;
      const key = entry.account === null ? '' : `, node key ${entry.account}`;
      io.out(
        `  ${entry.name.padEnd(12)} ${entry.status.padEnd(8)} ${detail}${key}${entry.hash === '' ? '' : `  ${entry.hash}`}\n`,
      );
    }
    if (bundleFile !== undefined) io.out(`  wrote ${bundleFile}\n`);
    return 0;
  },
};

export const caCommands: readonly Command[] = [issue, approve, list];
