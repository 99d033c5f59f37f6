import type { Command } from '../commands.js';
import type { CliIo } from '../io.js';
import { parseCommandLine, passphraseFromEnv, type Options } from '../args.js';
import { CliError } from '../cli-error.js';
import { LOOPBACK_HOSTS } from '../config.js';
import { readGenesisFile } from '../cluster-layout.js';
import {
  DEFAULT_CLUSTER_FILE,
  loadClusterTarget,
  openOperatorSession,
  type ClusterTarget,
  type OperatorSession,
} from '../operator.js';
import { toHex } from '../../crypto/bytes.js';
import { readWalletKey, type WalletKey } from '../wallet.js';
import { integerOption } from './cluster.js';
import { pickNode, reportSubmission } from './wallet.js';
import type * as DnsToolsModule from '../dns-tools.js';

type DnsTools = typeof DnsToolsModule;

/**
 * `hypermesh dns set|get|delete|register|transfer|zone|zone-create|ds`: the DNS zones in
 * consensus state from the command line (docs/dns.md, "CLI"). Changes are signed `dns` module
 * transactions; reads check every answer's Merkle proof; `ds` derives the DS record and trust
 * anchor from the genesis file alone.
 */

type OptionSpec = Options;

function parse<O extends OptionSpec>(args: readonly string[], options: O) {
  return parseCommandLine(args, options);
}

const clusterOptions = {
  cluster: { type: 'string' },
  node: { type: 'string' },
} as const;

const changeOptions = {
  ...clusterOptions,
  key: { type: 'string' },
  'passphrase-env': { type: 'string' },
  wait: { type: 'boolean' },
  'timeout-ms': { type: 'string' },
} as const;

const CLUSTER_HELP = `  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --node NAME|ADDR      node to ask (default: the first)`;

const CHANGE_HELP = `  --key FILE            signing key: a wallet key or node identity (default: the cluster's
                        operator key, operator/operator.key, the admin of the cluster zone)
  --passphrase-env VAR  the key file's passphrase is in environment variable VAR
${CLUSTER_HELP}
  --wait                wait for the commit and print the result code
  --timeout-ms MS       how long --wait (and a registration) waits (default 30000)`;

interface Session {
  readonly target: ClusterTarget;
  readonly node: string;
  readonly session: OperatorSession;
}

async function openSession(values: { cluster?: string; node?: string }): Promise<Session> {
  const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
  const node = pickNode(target, values.node).name;
  return { target, node, session: await openOperatorSession(target) };
}

async function signerOf(
  values: { key?: string; 'passphrase-env'?: string },
  target: ClusterTarget,
): Promise<WalletKey> {
  const passphrase = passphraseFromEnv(values['passphrase-env']);
  return readWalletKey(
    values.key ?? target.operator.keyFile,
    passphrase === undefined ? {} : { passphrase },
  );
}

function timeoutOf(values: { 'timeout-ms'?: string }): number {
  return integerOption(values['timeout-ms'], 'timeout-ms', { min: 100, max: 3_600_000 }, 30_000);
}

type ChangeValues = {
  cluster?: string;
  node?: string;
  key?: string;
  'passphrase-env'?: string;
  wait?: boolean;
  'timeout-ms'?: string;
};

/** What a signed dns change runs with: the node's client, the signer, and submit + report. */
interface SignedChange {
  readonly node: string;
  readonly client: ReturnType<Session['session']['client']>;
  readonly signer: WalletKey;
  readonly context: Parameters<DnsTools['submitDnsBody']>[0];
  /** Signs and submits `body` (waiting for the commit with --wait); node errors as CliError. */
  submit(body: Uint8Array): ReturnType<DnsTools['submitDnsBody']>;
  /** Prints the outcome of a submission as `what`; the exit code. */
  report(outcome: Awaited<ReturnType<DnsTools['submitDnsBody']>>, what: string): number;
}

/** Opens a session to the chosen node with the signing key and runs one signed change. */
async function withSignedChange(
  values: ChangeValues,
  io: CliIo,
  run: (
    change: SignedChange,
    stoqFailure: (node: string) => (error: unknown) => never,
  ) => Promise<number>,
): Promise<number> {
  const tools = await import('../dns-tools.js');
  const wait = values.wait ?? false;
  const timeoutMs = timeoutOf(values);
  const { target, node, session } = await openSession(values);
  const { stoqFailure } = await import('../tx-submit.js');
  try {
    const signer = await signerOf(values, target);
    const genesis = await readGenesisFile(target.genesisFile);
    const client = session.client(node);
    const context = { client, genesis, signer, wait, timeoutMs };
    return await run(
      {
        node,
        client,
        signer,
        context,
        submit: (body) => tools.submitDnsBody(context, body).catch(stoqFailure(node)),
        report: (outcome, what) => reportSubmission(outcome, what, node, io, wait, timeoutMs),
      },
      stoqFailure,
    );
  } finally {
    await session.close();
  }
}

/**
 * A signed change of one name's ownership (`name-register`, `name-transfer`): checks the name's
 * zone with the node first (a name in no zone is refused before signing), submits `body`,
 * reports it, and once committed prints who owns the name.
 */
async function submitNameChange(
  values: ChangeValues,
  io: CliIo,
  change: {
    readonly name: string;
    readonly op: string;
    readonly body: Uint8Array;
    readonly announce: (apex: string, signer: WalletKey) => string;
    readonly owner: (signer: WalletKey) => Uint8Array;
  },
): Promise<number> {
  const tools = await import('../dns-tools.js');
  return withSignedChange(values, io, async ({ node, client, signer, submit, report }, failure) => {
    const apex = await tools.zoneOf(client, change.name).catch(failure(node));
    io.out(`${change.announce(apex, signer)}\n`);
    const outcome = await submit(change.body);
    const code = report(outcome, change.op);
    if (code === 0 && outcome.admitted && outcome.status.status === 'committed') {
      io.out(`${change.name} is owned by ${toHex(change.owner(signer))}\n`);
    }
    return code;
  });
}

function heightOf(values: { height?: string }): number | undefined {
  return values.height === undefined
    ? undefined
    : integerOption(values.height, 'height', { min: 1, max: Number.MAX_SAFE_INTEGER }, 1);
}

function json(io: CliIo, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

const setCommand: Command = {
  name: 'dns set',
  summary: "replace a name's records of one type: a signed dns transaction",
  help: `
usage: hypermesh dns set NAME TYPE VALUE... [--ttl S] [--no-register] [--key FILE]
                         [--cluster FILE|DIR] [--node NAME|ADDR] [--wait] [--timeout-ms MS]

Replaces the RRset of TYPE at NAME with one record per VALUE (records-set). NAME is absolute
(www.hypermesh or www.hypermesh.); only its owner may change it, and at a zone apex only the
zone's admins. If nobody owns NAME yet it is registered first with a name-register transaction
(the signer becomes its owner; in an "open" zone anyone may, unless a registered name above it
belongs to another key), and that transaction is waited for before the records are sent.

VALUE is one record's data in presentation form, quoted when it has spaces:
  A 192.0.2.7 | AAAA 2001:db8::7 | CNAME www.hypermesh. | NS ns1.example.
  MX "10 mail.hypermesh." | SRV "1 5 9292 node-1.hypermesh." | TXT "any text"
  CAA "0 issue hypermesh" | TLSA "3 1 1 HEX" | DS "KEYTAG 13 2 HEX"
  HTTPS "1 . alpn=h3,h2 port=443" | any type: the JSON form of its data, '{"address":"192.0.2.7"}'
SOA, NS at an apex and the DNSSEC types are managed, not set (DNS_ZONES_MANAGED_TYPE).

Refusals carry the module's code: exit 2 for input refused before sending
(DNS_ZONES_INVALID_RECORD, ...), exit 1 for a refusal by the node (DNS_ZONES_NOT_OWNER,
DNS_ZONES_CNAME_CONFLICT, ...; docs/dns.md lists them). With --wait, exit 0 only if applied.

options:
  --ttl S               TTL of the RRset in seconds (default 300)
  --no-register         do not register NAME; fail if it is not the signer's
${CHANGE_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parse(args, {
      ...changeOptions,
      ttl: { type: 'string' },
      'no-register': { type: 'boolean' },
    });
    const [nameText, typeText, ...recordValues] = positionals;
    if (nameText === undefined || typeText === undefined || recordValues.length === 0) {
      throw new CliError('expected NAME TYPE VALUE... (see --help)');
    }
    const tools = await import('../dns-tools.js');
    const name = tools.nameArgument(nameText);
    const ttl = integerOption(values.ttl, 'ttl', { min: 0, max: 2_147_483_647 }, 300);
    const records = tools.recordsFromArguments(name, typeText, recordValues, ttl);
    const body = tools.setBody(records);
    return withSignedChange(values, io, async (change, failure) => {
      const { node, client, signer, context, submit, report } = change;
      await tools.zoneOf(client, name).catch(failure(node));
      const read = await tools.readName(client, name).catch(failure(node));
      const registration = tools.registrationOf(read, signer);
      if (registration.kind === 'other-owner') {
        throw new CliError(
          `${name} is owned by ${registration.owner}, not by the signing key ${Buffer.from(signer.publicKey).toString('hex')} (${signer.file}) [DNS_ZONES_NOT_OWNER]`,
          1,
        );
      }
      if (registration.kind === 'unregistered') {
        if (values['no-register']) {
          throw new CliError(
            `${name} is not registered [DNS_ZONES_NOT_REGISTERED]; run "hypermesh dns set" without --no-register to register it first`,
            1,
          );
        }
        io.out(`registering ${name} (name-register, signed by ${signer.file})\n`);
        // The registration is always waited for: the records need it committed.
        const registered = await tools
          .submitDnsBody({ ...context, wait: true }, tools.registerBody(name))
          .catch(failure(node));
        const code = reportSubmission(
          registered,
          'registration',
          node,
          io,
          true,
          context.timeoutMs,
        );
        if (code !== 0) return code;
      }
      io.out(`setting ${records.length} ${records[0]?.type} record(s) at ${name}, TTL ${ttl}\n`);
      return report(await submit(body), 'records-set');
    });
  },
};

const deleteCommand: Command = {
  name: 'dns delete',
  summary: "delete a name's records of one type, or release the name",
  help: `
usage: hypermesh dns delete NAME [TYPE] [--key FILE] [--cluster FILE|DIR] [--node NAME|ADDR]
                            [--wait] [--timeout-ms MS]

With TYPE, deletes the RRset of TYPE at NAME (records-delete; DNS_ZONES_NO_SUCH_RRSET if there
is none). Without TYPE, releases NAME (name-release): its records go, and the name is free for
anyone to register again; names registered below it keep their owners. Only the owner may do
either (at an apex, the zone's admins may delete RRsets; an apex cannot be released,
DNS_ZONES_IS_APEX). A refusal by the node exits 1 with its code.

options:
${CHANGE_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parse(args, changeOptions);
    if (positionals.length < 1 || positionals.length > 2) {
      throw new CliError(
        `expected NAME [TYPE], got ${positionals.length} argument(s) (see --help)`,
      );
    }
    const tools = await import('../dns-tools.js');
    const name = tools.nameArgument(positionals[0] as string);
    const type = positionals[1];
    const body = tools.deleteBody(name, type);
    return withSignedChange(values, io, async ({ submit, report }) => {
      io.out(
        type === undefined
          ? `releasing ${name} and all its records\n`
          : `deleting the ${type.toUpperCase()} records at ${name}\n`,
      );
      const outcome = await submit(body);
      return report(outcome, type === undefined ? 'name-release' : 'records-delete');
    });
  },
};

const getCommand: Command = {
  name: 'dns get',
  summary: "read a name's records, with the Merkle proof checked against the state root",
  help: `
usage: hypermesh dns get NAME [TYPE] [--cluster FILE|DIR] [--node NAME|ADDR] [--height H] [--json]

Reads NAME from the committed state (query "dns/name"; at a zone apex also "dns/zone" for its
SOA and NS) and checks each answer's Merkle proof against the state root it names. Prints the
records (of TYPE only, if given) in zone-file form, then the owner and the height and root the
proof was checked against. A name nobody registered is proven absent. Exits 0 when the proofs
verify (the name present or absent), 1 otherwise.

options:
${CLUSTER_HELP}
  --height H            read the state as of height H (default: latest committed)
  --json                {node, height, stateRoot, name, registered, owner, registeredAt,
                        updatedAt, records: [JSON form]}
`,
  async run(args, io) {
    const { values, positionals } = parse(args, {
      ...clusterOptions,
      height: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length < 1 || positionals.length > 2) {
      throw new CliError(
        `expected NAME [TYPE], got ${positionals.length} argument(s) (see --help)`,
      );
    }
    const tools = await import('../dns-tools.js');
    const { recordToInput } = await import('../../trustchain/dns/index.js');
    const name = tools.nameArgument(positionals[0] as string);
    const type = positionals[1] === undefined ? undefined : tools.recordType(positionals[1]);
    const height = heightOf(values);
    const { node, session } = await openSession(values);
    const { stoqFailure } = await import('../tx-submit.js');
    try {
      const read = await tools
        .readName(session.client(node), name, height)
        .catch(stoqFailure(node));
      const records = tools
        .nameRecords(read)
        .filter((record) => type === undefined || record.type === type);
      const owner = read.entry?.owner ?? null;
      if (values.json) {
        json(io, {
          node,
          height: read.height,
          stateRoot: read.stateRoot,
          name,
          registered: read.entry !== null || read.zone !== null,
          apex: read.zone !== null,
          owner: owner === null ? null : Buffer.from(owner).toString('hex'),
          registeredAt: read.entry?.registeredAt ?? null,
          updatedAt: read.entry?.updatedAt ?? null,
          records: records.map(recordToInput),
        });
        return 0;
      }
      for (const record of records) io.out(`${tools.formatRecord(record)}\n`);
      if (read.entry === null && read.zone === null) {
        io.out(`; ${name} is not registered (proven absent)\n`);
      } else {
        if (records.length === 0)
          io.out(`; no ${type ?? ''} records at ${name}\n`.replace('  ', ' '));
        io.out(
          read.zone !== null
            ? `; ${name} is a zone apex (records set by the zone admins)\n`
            : `; owner ${Buffer.from(owner ?? new Uint8Array()).toString('hex')}, registered at height ${read.entry?.registeredAt}, updated at height ${read.entry?.updatedAt}\n`,
        );
      }
      io.out(
        `; height ${read.height ?? '-'}, proof verified against state root ${read.stateRoot} (${node})\n`,
      );
      return 0;
    } finally {
      await session.close();
    }
  },
};

const zoneCommand: Command = {
  name: 'dns zone',
  summary: 'print a zone (SOA, names, owners, records) with every proof checked',
  help: `
usage: hypermesh dns zone [ZONE] [--cluster FILE|DIR] [--node NAME|ADDR] [--height H] [--json]

Reads ZONE (default: every zone) at one height: its parameters ("dns/zone"), the 256 buckets
of its name index ("dns/index") and every name ("dns/name"), each answer's Merkle proof checked
against the same state root, and prints it in zone-file form: the SOA (serial = height of the
zone's last change) and NS, then each name's owner and records. Comment lines (";") give the
kind, policy, admins, DNSSEC key tag and the height and root. The DNSKEY, RRSIG and NSEC
records the nodes add when signing are not part of the state and are not printed.

options:
${CLUSTER_HELP}
  --height H            read the state as of height H (default: latest committed)
  --json                one JSON document per zone (an array with every zone)
`,
  async run(args, io) {
    const { values, positionals } = parse(args, {
      ...clusterOptions,
      height: { type: 'string' },
      json: { type: 'boolean' },
    });
    if (positionals.length > 1) {
      throw new CliError(`expected at most one ZONE, got ${positionals.length} (see --help)`);
    }
    const tools = await import('../dns-tools.js');
    const height = heightOf(values);
    const { target, node, session } = await openSession(values);
    const { stoqFailure } = await import('../tx-submit.js');
    try {
      const genesis = await readGenesisFile(target.genesisFile);
      const dnskeys = tools.genesisDnskeys(genesis, target.genesisFile);
      const client = session.client(node);
      const apexes =
        positionals[0] === undefined
          ? (await tools.readZones(client, height).catch(stoqFailure(node))).value
          : [tools.nameArgument(positionals[0], 'ZONE')];
      const zones = [];
      for (const apex of apexes) {
        const read = await tools.readZone(client, apex, height).catch(stoqFailure(node));
        if (values.json) zones.push(tools.zoneJson(read, node, dnskeys.get(apex)));
        else io.out(tools.zoneText(read, node, dnskeys.get(apex)));
      }
      if (values.json) json(io, positionals[0] === undefined ? zones : zones[0]);
      return 0;
    } finally {
      await session.close();
    }
  },
};

const dsCommand: Command = {
  name: 'dns ds',
  summary: "a signed zone's DS record and delv trust anchor, derived from the genesis file",
  help: `
usage: hypermesh dns ds [ZONE] [--genesis FILE | --cluster FILE|DIR] [--trust-anchor] [--json]

Prints, for ZONE (default: every signed zone), the DS record for the parent zone (SHA-256,
RFC 4509), the DNSKEY, and a BIND trust-anchors clause for delv or a validating resolver —
all from the DNSKEY in the genesis file's app.dns zone entry, so nothing is asked of a node.
Validate an answer with:
  hypermesh dns ds --trust-anchor > anchor.conf
  delv @${LOOPBACK_HOSTS.v4} -p PORT -a anchor.conf +root=hypermesh www.hypermesh A

options:
  --genesis FILE        the genesis file (default: the cluster's)
  --cluster FILE|DIR    cluster.json or "cluster init" directory (default ${DEFAULT_CLUSTER_FILE})
  --trust-anchor        print only the trust-anchors clause (a file for delv -a)
  --json                [{zone, keyTag, ds, dnskey, trustAnchor}]
`,
  async run(args, io) {
    const { values, positionals } = parse(args, {
      genesis: { type: 'string' },
      cluster: { type: 'string' },
      'trust-anchor': { type: 'boolean' },
      json: { type: 'boolean' },
    });
    if (positionals.length > 1) {
      throw new CliError(`expected at most one ZONE, got ${positionals.length} (see --help)`);
    }
    if (values.genesis !== undefined && values.cluster !== undefined) {
      throw new CliError('give --genesis or --cluster, not both');
    }
    const tools = await import('../dns-tools.js');
    const genesisFile =
      values.genesis ??
      (await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE)).genesisFile;
    const genesis = await readGenesisFile(genesisFile);
    const dnskeys = tools.genesisDnskeys(genesis, genesisFile);
    let zones = [...dnskeys.keys()];
    if (positionals[0] !== undefined) {
      const zone = tools.nameArgument(positionals[0], 'ZONE');
      if (!dnskeys.has(zone)) {
        throw new CliError(
          `zone ${zone} is not signed: its genesis entry in ${genesisFile} has no dnskey (signed zones: ${zones.length === 0 ? 'none' : zones.join(', ')})`,
          1,
        );
      }
      zones = [zone];
    }
    if (zones.length === 0) {
      throw new CliError(`no zone in ${genesisFile} is signed (no app.dns zone has a dnskey)`, 1);
    }
    const trust = zones.map((zone) => tools.zoneTrust(zone, dnskeys.get(zone)!));
    if (values.json) {
      json(io, trust);
    } else if (values['trust-anchor']) {
      io.out(trust.map((entry) => entry.trustAnchor).join(''));
    } else {
      for (const entry of trust) {
        io.out(
          `; ${entry.zone} key tag ${entry.keyTag}, ECDSA P-256 (algorithm 13), from ${genesisFile}\n`,
        );
        io.out(`${entry.ds}\n${entry.dnskey}\n${entry.trustAnchor}`);
      }
    }
    return 0;
  },
};

const registerCommand: Command = {
  name: 'dns register',
  summary: 'register a free name without records: the signer becomes its owner',
  help: `
usage: hypermesh dns register NAME [--key FILE] [--cluster FILE|DIR] [--node NAME|ADDR]
                              [--wait] [--timeout-ms MS]

Registers NAME (name-register): the signing key becomes its owner, with no records yet. Only
the owner changes its records, transfers or releases it, and only the owner registers names
below it. "dns set" registers a free name by itself; register is for holding a name (and the
names below it) before it has records. Who may register: in an "open" zone anyone, in an
"admins" zone its admins, and below a registered name only that name's owner
(DNS_ZONES_ANCESTOR_OWNED); never a name someone owns (DNS_ZONES_ALREADY_OWNED), a zone apex
(DNS_ZONES_IS_APEX), or a name above another key's names unless the signer is a zone admin
(DNS_ZONES_DESCENDANT_OWNED). A refusal by the node exits 1 with its code.

options:
${CHANGE_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parse(args, changeOptions);
    if (positionals.length !== 1) {
      throw new CliError(`expected NAME, got ${positionals.length} argument(s) (see --help)`);
    }
    const tools = await import('../dns-tools.js');
    const name = tools.nameArgument(positionals[0] as string);
    return submitNameChange(values, io, {
      name,
      op: 'name-register',
      body: tools.registerBody(name),
      announce: (apex, signer) =>
        `registering ${name} in zone ${apex} (name-register, signed by ${signer.file})`,
      owner: (signer) => signer.publicKey,
    });
  },
};

const transferCommand: Command = {
  name: 'dns transfer',
  summary: 'hand a name to another key: a signed name-transfer',
  help: `
usage: hypermesh dns transfer NAME --to PUBKEY|KEYFILE [--key FILE] [--cluster FILE|DIR]
                              [--node NAME|ADDR] [--wait] [--timeout-ms MS]

Transfers NAME (name-transfer) with its records to the key given by --to: from then on only
that key changes its records, transfers or releases it, and the signer's changes are refused
(DNS_ZONES_NOT_OWNER). Names registered below NAME keep their owners. Only the owner may
transfer (DNS_ZONES_NOT_OWNER, DNS_ZONES_NOT_REGISTERED); a zone apex cannot be transferred
(DNS_ZONES_IS_APEX; zone admins are changed by zone-update), nor a name to its own owner
(DNS_ZONES_SELF_TRANSFER). The recipient is not asked: any Ed25519 key may receive a name.
A refusal by the node exits 1 with its code.

options:
  --to PUBKEY|KEYFILE   the new owner: an Ed25519 public key (64 hex digits) or a key file
                        (wallet key or node identity) whose public key is meant
${CHANGE_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parse(args, { ...changeOptions, to: { type: 'string' } });
    if (positionals.length !== 1) {
      throw new CliError(`expected NAME, got ${positionals.length} argument(s) (see --help)`);
    }
    if (values.to === undefined) {
      throw new CliError('give the new owner with --to PUBKEY|KEYFILE (see --help)');
    }
    const tools = await import('../dns-tools.js');
    const name = tools.nameArgument(positionals[0] as string);
    const recipient = await tools.publicKeyArgument(values.to, '--to');
    return submitNameChange(values, io, {
      name,
      op: 'name-transfer',
      body: tools.transferBody(name, recipient),
      announce: (_apex, signer) =>
        `transferring ${name} to ${toHex(recipient)} (name-transfer, signed by ${signer.file})`,
      owner: () => recipient,
    });
  },
};

const zoneCreateCommand: Command = {
  name: 'dns zone-create',
  summary: 'create a delegated zone (an admin of a cluster zone signs it)',
  help: `
usage: hypermesh dns zone-create APEX --ns HOST... [--admin PUBKEY|KEYFILE...] [--policy P]
                                 [--soa-ttl S] [--mname NAME] [--rname NAME] [--refresh S]
                                 [--retry S] [--expire S] [--minimum S] [--ns-ttl S]
                                 [--key FILE] [--cluster FILE|DIR] [--node NAME|ADDR]
                                 [--wait] [--timeout-ms MS]

Creates the zone APEX (zone-create) in consensus state; every node then answers for it.
Only an admin of a cluster zone (one from the genesis; "cluster init" makes the operator key
its admin) may sign it (DNS_ZONES_NOT_ZONE_ADMIN). APEX may not be a zone already
(DNS_ZONES_ZONE_EXISTS), nor lie inside or above another zone (DNS_ZONES_ZONE_OVERLAP); at
most 64 zones (DNS_ZONES_ZONE_LIMIT). The zone's admins set the apex's records and, with
policy "admins", register its top names; names are then registered and set with "dns set".
The zone is served unsigned: only zones whose genesis entry has a DNSKEY are signed.
Bad parameters are refused before sending, exit 2 (DNS_ZONES_INVALID_NAME,
DNS_ZONES_INVALID_ZONE); a refusal by the node exits 1 with its code.

options:
  --ns HOST             a name server of the zone (its apex NS records); repeat for more,
                        1 to 13 (required; the cluster's nodes answer for every zone)
  --admin PUBKEY|KEYFILE
                        an admin: an Ed25519 public key (64 hex digits) or a key file whose
                        public key is meant; repeat for more, 1 to 16 (default: the signer)
  --policy P            open (anyone registers free names) or admins (default open)
  --soa-ttl S           TTL of the SOA record (default 3600)
  --mname NAME          SOA primary name server (default: the first --ns)
  --rname NAME          SOA mailbox as a name (default hostmaster.APEX)
  --refresh S           SOA refresh (default 3600)
  --retry S             SOA retry (default 600)
  --expire S            SOA expire (default 86400)
  --minimum S           SOA minimum, the negative-caching TTL (default 60)
  --ns-ttl S            TTL of the apex NS records (default 3600)
${CHANGE_HELP}
`,
  async run(args, io) {
    const { values, positionals } = parse(args, {
      ...changeOptions,
      ns: { type: 'string', multiple: true },
      admin: { type: 'string', multiple: true },
      policy: { type: 'string' },
      'soa-ttl': { type: 'string' },
      mname: { type: 'string' },
      rname: { type: 'string' },
      refresh: { type: 'string' },
      retry: { type: 'string' },
      expire: { type: 'string' },
      minimum: { type: 'string' },
      'ns-ttl': { type: 'string' },
    });
    if (positionals.length !== 1) {
      throw new CliError(`expected APEX, got ${positionals.length} argument(s) (see --help)`);
    }
    const tools = await import('../dns-tools.js');
    const apex = tools.nameArgument(positionals[0] as string, 'APEX');
    const ttl = { min: 0, max: 2_147_483_647 };
    const u32 = { min: 0, max: 0xffff_ffff };
    const optional = (name: keyof typeof values, range: { min: number; max: number }) => {
      const text = values[name];
      return typeof text === 'string' ? integerOption(text, name, range, 0) : undefined;
    };
    const soa = {
      ttl: optional('soa-ttl', ttl),
      mname: values.mname === undefined ? undefined : tools.nameArgument(values.mname, '--mname'),
      rname: values.rname === undefined ? undefined : tools.nameArgument(values.rname, '--rname'),
      refresh: optional('refresh', u32),
      retry: optional('retry', u32),
      expire: optional('expire', u32),
      minimum: optional('minimum', u32),
    };
    const nsTtl = optional('ns-ttl', ttl);
    const nameservers = (values.ns ?? []).map((host) => tools.nameArgument(host, '--ns'));
    const wait = values.wait ?? false;
    const timeoutMs = timeoutOf(values);
    const given: Uint8Array[] = [];
    for (const admin of values.admin ?? []) {
      given.push(await tools.publicKeyArgument(admin, '--admin'));
    }
    // Everything is checked before a node is asked: the signer is the default admin.
    const target = await loadClusterTarget(values.cluster ?? DEFAULT_CLUSTER_FILE);
    const node = pickNode(target, values.node).name;
    const signer = await signerOf(values, target);
    const params = tools.zoneParams({
      apex,
      admins: given.length === 0 ? [signer.publicKey] : given,
      nameservers,
      ...(values.policy === undefined ? {} : { policy: values.policy }),
      ...(nsTtl === undefined ? {} : { nsTtl }),
      soa,
    });
    const body = tools.zoneCreateBody(params);
    const genesis = await readGenesisFile(target.genesisFile);
    const session = await openOperatorSession(target);
    const { stoqFailure } = await import('../tx-submit.js');
    try {
      const client = session.client(node);
      io.out(
        `creating zone ${apex} (zone-create, policy ${params.policy}, NS ${params.nameservers.hosts.join(' ')}, signed by ${signer.file})\n`,
      );
      io.out(`admins ${params.admins.map(toHex).join(', ')}\n`);
      const outcome = await tools
        .submitDnsBody({ client, genesis, signer, wait, timeoutMs }, body)
        .catch(stoqFailure(node));
      const code = reportSubmission(outcome, 'zone-create', node, io, wait, timeoutMs);
      if (code === 0 && outcome.admitted && outcome.status.status === 'committed') {
        io.out(
          `zone ${apex} created; it is served unsigned (only zones with a DNSKEY in the genesis are signed)\n`,
        );
      }
      return code;
    } finally {
      await session.close();
    }
  },
};

export const dnsCommands: readonly Command[] = [
  setCommand,
  getCommand,
  deleteCommand,
  registerCommand,
  transferCommand,
  zoneCommand,
  zoneCreateCommand,
  dsCommand,
];
