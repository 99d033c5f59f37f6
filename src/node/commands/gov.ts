import type { Command } from '../commands.js';
import type { CliIo } from '../io.js';
import { parseCommandArgs, parseCommandLine, passphraseFromEnv, requireOption } from '../args.js';
import { CliError } from '../cli-error.js';
import { openOperatorSession } from '../operator.js';
import { integerOption } from './cluster.js';
import {
  CLUSTER_HELP,
  TX_HELP,
  TX_OPTIONS,
  describeTx,
  feeOf,
  positiveAmount,
  stakeContext,
  submitLedgerTx,
  type LedgerSigner,
  type StakeContext,
  type TxValues,
} from './stake.js';
import { describeAmount } from './wallet.js';
import {
  AMOUNT_PARAMS,
  GOVERNABLE_PARAMS,
  MAX_TITLE_LENGTH,
  NOT_GOVERNABLE,
  SUBMIT_PROPOSAL_OP,
  VOTE_OP,
  formatAddress,
  formatTokenAmount,
  isGovernableParam,
  parseVoteOption,
  voteOptionName,
} from '../../caesar/index.js';
import type { GovTx, ParamChange, TokenParams } from '../../caesar/index.js';
import { stoqFailure, type SubmitOutcome } from '../tx-submit.js';
import {
  DEFAULT_GOV_LIST_TIMEOUT_MS,
  GOV_READ_CONCURRENCY,
  findSubmittedProposal,
  readProvenProposals,
  sendGovTx,
  statusName,
  type ProposalView,
} from '../gov-ledger.js';
import { readWalletKey } from '../wallet.js';

/**
 * `hypermesh gov propose|vote|list`: parameter governance from the command line (docs/cli.md,
 * "Gov"; docs/caesar.md, "Governance"). Reads are proven like `stake validators`; transactions
 * are signed, stamped and submitted like `wallet send`.
 */

/** Typed codes of the `gov` commands' own refusals (shown in brackets after the message). */
export enum GovCliErrorCode {
  /** `--param` names a parameter governance cannot change. */
  UNKNOWN_PARAM = 'CAESAR_GOV_UNKNOWN_PARAM',
  /** `--param` is not NAME=VALUE with a whole number, or a name is given twice. */
  BAD_PARAM = 'GOV_BAD_PARAM',
  /** The vote's proposal id or option is not one. */
  BAD_VOTE = 'GOV_BAD_VOTE',
}

function govError(code: GovCliErrorCode, message: string): CliError {
  return new CliError(`${message} [${code}]`);
}

const DIGITS = /^(0|[1-9][0-9]{0,38})$/;

/**
 * Parses repeated `--param NAME=VALUE` into a proposal's changes: governable names only, each
 * once; values whole numbers as stored (amounts in base units, the rest integers). Bounds are
 * the chain's to check (it refuses with CAESAR_GOV_INVALID_PARAM before anything is written).
 */
export function parseParamChanges(entries: readonly string[]): ParamChange[] {
  if (entries.length === 0) {
    throw govError(GovCliErrorCode.BAD_PARAM, '--param NAME=VALUE is required (one per change)');
  }
  const seen = new Set<string>();
  return entries.map((entry) => {
    const at = entry.indexOf('=');
    if (at <= 0) {
      throw govError(GovCliErrorCode.BAD_PARAM, `--param "${entry}" must be NAME=VALUE`);
    }
    const name = entry.slice(0, at);
    const text = entry.slice(at + 1);
    if (!isGovernableParam(name)) {
      const why = Object.hasOwn(NOT_GOVERNABLE, name) ? NOT_GOVERNABLE[name] : undefined;
      throw govError(
        GovCliErrorCode.UNKNOWN_PARAM,
        why === undefined
          ? `--param "${name}" is not a governable parameter (governable: ${GOVERNABLE_PARAMS.join(', ')})`
          : `--param "${name}" is not governable: ${why}`,
      );
    }
    if (seen.has(name)) {
      throw govError(GovCliErrorCode.BAD_PARAM, `--param ${name} is given twice`);
    }
    seen.add(name);
    if (!DIGITS.test(text) || BigInt(text) >= 1n << 128n) {
      throw govError(
        GovCliErrorCode.BAD_PARAM,
        `--param ${name}=${JSON.stringify(text)}: expected a whole number${AMOUNT_PARAMS.has(name) ? ' of base units' : ''} below 2^128 (digits only, no sign, fraction, exponent or leading zeros)`,
      );
    }
    return { name, value: BigInt(text) };
  });
}

function submitGov(
  context: StakeContext,
  signer: LedgerSigner,
  tx: GovTx,
  what: string,
  values: TxValues,
  io: CliIo,
  after?: (outcome: SubmitOutcome) => Promise<void>,
): Promise<number> {
  return submitLedgerTx(context, signer, tx, sendGovTx, what, values, io, after);
}

/** The proposer's or voter's key: a wallet key, hybrid or not, or a node identity. */
function readGovKey(file: string, passphrase: string | undefined) {
  return readWalletKey(file, {
    ...(passphrase === undefined ? {} : { passphrase }),
    allowHybrid: true,
  });
}

const HYBRID_HELP = `From a hybrid wallet key (wallet create --falcon) the transaction is signed with both its
Ed25519 and FALCON-1024 keys and acts for the hybrid account.`;

const describeChanges = (changes: readonly ParamChange[]): string =>
  changes.map(({ name, value }) => `${name}=${value}`).join(', ');

const proposeCommand: Command = {
  name: 'gov propose',
  summary: 'propose a change of staking or governance parameters, with a deposit',
  help: `
usage: hypermesh gov propose --param NAME=VALUE [--param NAME=VALUE ...] --deposit X --title TEXT
                             --key FILE [--fee Y] [--base-units] [--passphrase-env VAR]
                             [--cluster FILE|DIR] [--node NAME|ADDR] [--wait]

Submits a parameter-change proposal (a gov/submit-proposal transaction). --key's account pays
the deposit (at least the chain's minDeposit) and the fee. The chain checks the changes against
the parameters in force with the genesis bounds and refuses a proposal that would make them
invalid (CAESAR_GOV_INVALID_PARAM). Stakers vote on it for votingPeriod blocks; if enough stake
votes (quorum) and yes / (yes + no) is above the threshold, it applies timelock blocks after the
vote ends. The deposit returns when the vote reaches quorum and is burnt when it does not. With
--wait the proposal's number and heights are shown.
${HYBRID_HELP}

Governable: ${GOVERNABLE_PARAMS.join(', ')}.

options:
  --param NAME=VALUE    a parameter and its new value, as stored: amounts (${[...AMOUNT_PARAMS].join(', ')})
                        in base units, the rest integers (basis points, blocks); repeatable
  --deposit X           tokens locked with the proposal
  --title TEXT          1 to ${MAX_TITLE_LENGTH} printable ASCII characters
  --key FILE            the proposer's key file (a wallet key, hybrid or not, or a node identity)
${TX_HELP}
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      ...TX_OPTIONS,
      param: { type: 'string', multiple: true },
      deposit: { type: 'string' },
      title: { type: 'string' },
      key: { type: 'string' },
    });
    const changes = parseParamChanges(values.param ?? []);
    const depositText = requireOption(values.deposit, 'deposit');
    const title = requireOption(values.title, 'title');
    if (!/^[\x20-\x7e]{1,140}$/.test(title)) {
      throw new CliError(
        `--title must be 1 to ${MAX_TITLE_LENGTH} printable ASCII characters (got ${title.length} characters)`,
      );
    }
    const keyFile = requireOption(values.key, 'key');
    const context = await stakeContext(values);
    const { token } = context;
    const deposit = positiveAmount(depositText, 'deposit', token, values);
    const fee = feeOf(values, token);
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const wallet = await readGovKey(keyFile, passphrase);
    describeTx(
      values,
      io,
      `propose ${describeChanges(changes)} with a deposit of ${describeAmount(deposit, token)}, fee ${describeAmount(fee, token)}\n` +
        `  proposer ${formatAddress(wallet.address)}\n`,
    );
    const showProposal = async (outcome: SubmitOutcome): Promise<void> => {
      if (!outcome.admitted || outcome.status.status !== 'committed') return;
      const committed = outcome.status.height;
      const session = await openOperatorSession(context.target);
      try {
        const record = await findSubmittedProposal(
          session.client(context.node.name),
          wallet.address,
          committed,
        );
        if (record !== undefined) {
          io.out(
            `proposal #${record.id}: voting ends with block ${record.votingEnd}; if it passes it applies at the end of block ${record.executeHeight}\n`,
          );
        }
      } finally {
        await session.close();
      }
    };
    return submitGov(
      context,
      wallet,
      { op: SUBMIT_PROPOSAL_OP, fee, title, changes, deposit },
      'proposal',
      values,
      io,
      showProposal,
    );
  },
};

const voteCommand: Command = {
  name: 'gov vote',
  summary: 'vote yes, no or abstain on a proposal, weighted by your bonded stake',
  help: `
usage: hypermesh gov vote ID yes|no|abstain --key FILE [--fee Y] [--base-units]
                          [--passphrase-env VAR] [--cluster FILE|DIR] [--node NAME|ADDR] [--wait]

Votes on proposal ID (a gov/vote transaction). The vote weighs what --key's account has bonded
when voting ends (its self-bond if it is a validator's key, plus its delegations); an account
with no bonded stake is refused (CAESAR_GOV_NO_STAKE). Voting again replaces the earlier vote,
until the last block of the voting period (CAESAR_GOV_VOTING_CLOSED after it).
${HYBRID_HELP}

options:
  --key FILE            the voter's key file (a wallet key, hybrid or not, or a node identity)
${TX_HELP}
`,
  async run(args, io) {
    const parsed = parseCommandLine(args, { ...TX_OPTIONS, key: { type: 'string' } });
    const { values, positionals } = parsed;
    if (positionals.length !== 2) {
      throw govError(
        GovCliErrorCode.BAD_VOTE,
        `expected a proposal ID and yes, no or abstain, got ${positionals.length} argument(s)`,
      );
    }
    const [idText, optionText] = positionals as [string, string];
    if (!/^[1-9][0-9]{0,14}$/.test(idText)) {
      throw govError(GovCliErrorCode.BAD_VOTE, `proposal ID "${idText}" is not a number from 1`);
    }
    const option = parseVoteOption(optionText);
    if (option === undefined) {
      throw govError(
        GovCliErrorCode.BAD_VOTE,
        `"${optionText}" is not a vote: write yes, no or abstain`,
      );
    }
    const keyFile = requireOption(values.key, 'key');
    const context = await stakeContext(values);
    const fee = feeOf(values, context.token);
    const passphrase = passphraseFromEnv(values['passphrase-env']);
    const wallet = await readGovKey(keyFile, passphrase);
    const proposal = Number(idText);
    describeTx(
      values,
      io,
      `vote ${voteOptionName(option)} on proposal #${proposal}, fee ${describeAmount(fee, context.token)}\n` +
        `  voter ${formatAddress(wallet.address)}\n`,
    );
    return submitGov(context, wallet, { op: VOTE_OP, fee, proposal, option }, 'vote', values, io);
  },
};

const percent = (bps: number): string => `${(bps / 100).toFixed(2)}%`;

function tallyJson(tally: { yes: bigint; no: bigint; abstain: bigint; bonded: bigint }) {
  return {
    yes: tally.yes.toString(),
    no: tally.no.toString(),
    abstain: tally.abstain.toString(),
    bonded: tally.bonded.toString(),
  };
}

function describeTally(
  tally: { yes: bigint; no: bigint; abstain: bigint; bonded: bigint },
  token: TokenParams,
): string {
  const tokens = (units: bigint) => formatTokenAmount(units, token.decimals);
  return `yes ${tokens(tally.yes)}, no ${tokens(tally.no)}, abstain ${tokens(tally.abstain)} of ${tokens(tally.bonded)} ${token.symbol} bonded`;
}

function proposalLines(view: ProposalView, token: TokenParams): string {
  const { record } = view;
  const lines = [
    `#${record.id} ${statusName(record.status)} "${record.title}": ${describeChanges(record.changes)}`,
    `  proposed at height ${record.submitHeight} by ${formatAddress(record.proposer)}, deposit ${describeAmount(record.deposit, token)}`,
    `  voting ends with block ${record.votingEnd}; applies at the end of block ${record.executeHeight} if passed; ${view.votes.length} voter(s)`,
  ];
  if (record.tally !== undefined) lines.push(`  tally: ${describeTally(record.tally, token)}`);
  if (view.tallySoFar !== undefined) {
    lines.push(
      `  tally so far: ${describeTally(view.tallySoFar, token)} (${view.outcomeSoFar} if voting ended now)`,
    );
  }
  return `${lines.join('\n')}\n`;
}

const listCommand: Command = {
  name: 'gov list',
  summary: 'list proposals with their status, votes and tally, proven',
  help: `
usage: hypermesh gov list [--cluster FILE|DIR] [--node NAME|ADDR] [--height H] [--limit N]
                         [--timeout-ms MS] [--json]

Reads the governance parameters and the newest proposals (default 20) with their votes, each with
its state proof checked against the state root the node names (all at one height). For a
proposal in voting it also weighs the votes by the voters' proven bonded stake: the tally so far,
and what it would decide if voting ended now. Statuses: voting, passed (waiting for its
timelock), rejected, rejected-no-quorum (deposit burnt), applied, failed (passed, but no longer
valid against the parameters in force when it was due). Exits 0 when every proof verifies.
Weighing a proposal's votes takes one proven read per voter and per delegation of each, ${GOV_READ_CONCURRENCY}
at a time; the command stops with STAKE_DEADLINE_EXCEEDED (exit 1) after --timeout-ms.

options:
${CLUSTER_HELP}
  --height H            read the state as of height H (default: latest committed)
  --limit N             the newest N proposals (default 20)
  --timeout-ms MS       how long the reads may take together (default ${DEFAULT_GOV_LIST_TIMEOUT_MS})
  --json                machine-readable output
`,
  async run(args, io) {
    const values = parseCommandArgs(args, {
      cluster: { type: 'string' },
      node: { type: 'string' },
      height: { type: 'string' },
      limit: { type: 'string' },
      'timeout-ms': { type: 'string' },
      json: { type: 'boolean' },
    });
    const height =
      values.height === undefined
        ? undefined
        : integerOption(values.height, 'height', { min: 1, max: Number.MAX_SAFE_INTEGER }, 1);
    const limit = integerOption(values.limit, 'limit', { min: 1, max: 10_000 }, 20);
    const timeoutMs = integerOption(
      values['timeout-ms'],
      'timeout-ms',
      { min: 100, max: 3_600_000 },
      DEFAULT_GOV_LIST_TIMEOUT_MS,
    );
    const context = await stakeContext(values);
    const { token, node, target } = context;
    const session = await openOperatorSession(target);
    let read;
    try {
      read = await readProvenProposals(session.client(node.name), {
        ...(height === undefined ? {} : { height }),
        limit,
        timeoutMs,
      }).catch(stoqFailure(node.name));
    } finally {
      await session.close();
    }
    const { params } = read;
    if (values.json) {
      io.out(
        `${JSON.stringify(
          {
            node: node.name,
            height: read.height,
            stateRoot: read.stateRoot,
            symbol: token.symbol,
            decimals: token.decimals,
            params: { ...params, minDeposit: params.minDeposit.toString() },
            count: read.count,
            proposals: read.proposals.map(({ record, votes, tallySoFar, outcomeSoFar }) => ({
              id: record.id,
              title: record.title,
              status: statusName(record.status),
              proposer: formatAddress(record.proposer),
              deposit: record.deposit.toString(),
              changes: Object.fromEntries(
                record.changes.map(({ name, value }) => [name, value.toString()]),
              ),
              submitHeight: record.submitHeight,
              votingEnd: record.votingEnd,
              executeHeight: record.executeHeight,
              tally: record.tally === undefined ? null : tallyJson(record.tally),
              tallySoFar: tallySoFar === undefined ? null : tallyJson(tallySoFar),
              outcomeSoFar: outcomeSoFar ?? null,
              votes: votes.map(({ voter, option }) => ({
                voter: formatAddress(voter),
                option: voteOptionName(option),
              })),
            })),
          },
          null,
          2,
        )}\n`,
      );
      return 0;
    }
    io.out(
      `${read.count} proposal(s); height ${read.height ?? '-'}, proofs verified against state root ${read.stateRoot} (${node.name})\n`,
    );
    io.out(
      `  voting ${params.votingPeriod} blocks, quorum ${percent(params.quorumBps)} of bonded stake, threshold ${percent(params.thresholdBps)} yes of yes + no, timelock ${params.timelock} blocks, minimum deposit ${describeAmount(params.minDeposit, token)}\n`,
    );
    for (const view of read.proposals) io.out(proposalLines(view, token));
    return 0;
  },
};

export const govCommands: readonly Command[] = [proposeCommand, voteCommand, listCommand];
