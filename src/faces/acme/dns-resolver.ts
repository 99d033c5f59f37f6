import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  CLASS_IN,
  RR_TYPES,
  Rcode,
  decodeMessage,
  encodeMessage,
  namesEqual,
  type DnsMessage,
} from '../../trustchain/dns/index.js';
import { AcmeError, AcmeErrorCode } from './errors.js';

/**
 * The TXT lookups behind dns-01 (RFC 8555 §8.4), behind an interface so the validation can ask
 * the cluster's own authoritative DNS, a recursive resolver, or a test double. `lookupTxt`
 * returns the TXT values at `name` (each record's character-strings concatenated), `[]` when
 * the name has no TXT records, and throws `AcmeError` `DNS_LOOKUP_FAILED` when the answer cannot
 * be had (timeout, SERVFAIL, REFUSED, a malformed or mismatched response).
 */
export interface TxtResolver {
  lookupTxt(name: string): Promise<string[]>;
}

export interface DnsServerResolverOptions {
  /** The DNS server's IP address (the cluster's own DNS servers, src/faces/dns). */
  readonly host: string;
  readonly port: number;
  /** Per query and transport (default 5 s). */
  readonly timeoutMs?: number;
}

/** CNAMEs followed from the queried name before giving up. */
const MAX_CNAME_DEPTH = 8;
const EDNS_PAYLOAD = 1232;
const MAX_TCP_RESPONSE = 65_535;

function failed(reason: string, message: string, detail: Record<string, unknown> = {}): AcmeError {
  return new AcmeError(AcmeErrorCode.DNS_LOOKUP_FAILED, message, { reason, ...detail });
}

/**
 * Queries one DNS server directly with the DNS codec of src/trustchain/dns: UDP with EDNS(0),
 * repeated over TCP when the answer is truncated (RFC 7766 §5). The server must be
 * authoritative for the names asked (no recursion is requested beyond the RD bit): that is the
 * cluster's DNS. CNAMEs in the answer are followed (RFC 8555 §8.4 allows them), querying again
 * for a target the answer does not cover.
 */
export class DnsServerTxtResolver implements TxtResolver {
  private readonly timeoutMs: number;

  constructor(private readonly options: DnsServerResolverOptions) {
    if (net.isIP(options.host) === 0) {
      throw new AcmeError(AcmeErrorCode.INVALID_OPTIONS, 'the DNS server must be an IP address', {
        host: options.host,
      });
    }
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  async lookupTxt(name: string): Promise<string[]> {
    let current = name;
    for (let depth = 0; depth <= MAX_CNAME_DEPTH; depth++) {
      const response = await this.query(current);
      if (response.rcode === Rcode.NXDOMAIN) return [];
      if (response.rcode !== Rcode.NOERROR) {
        throw failed('rcode', `DNS server answered rcode ${response.rcode} for ${current} TXT`, {
          rcode: response.rcode,
        });
      }
      // Walk the CNAME chain inside this answer, then collect TXT at its end.
      let owner = current;
      for (let hop = 0; hop <= MAX_CNAME_DEPTH; hop++) {
        const cname = response.answers.find(
          (rr) => rr.type === 'CNAME' && namesEqual(rr.name, owner),
        );
        if (cname === undefined || cname.type !== 'CNAME') break;
        owner = cname.data.target;
      }
      const values = response.answers
        .filter((rr) => rr.type === 'TXT' && namesEqual(rr.name, owner))
        .map((rr) =>
          rr.type === 'TXT'
            ? Buffer.concat(rr.data.strings.map((s) => Buffer.from(s))).toString('utf8')
            : '',
        );
      if (values.length > 0 || namesEqual(owner, current)) return values;
      current = owner;
    }
    throw failed('cname_loop', `more than ${MAX_CNAME_DEPTH} CNAMEs from ${name}`);
  }

  private async query(name: string): Promise<DnsMessage> {
    const id = randomInt(0, 0x10000);
    const fqdn = name.endsWith('.') ? name : `${name}.`;
    const query = encodeMessage({
      id,
      recursionDesired: true,
      questions: [{ name: fqdn, type: RR_TYPES.TXT, class: CLASS_IN }],
      edns: { udpPayloadSize: EDNS_PAYLOAD, version: 0, dnssecOk: false, options: [] },
    });
    let response = this.check(await this.udp(query), id, fqdn);
    if (response.truncated) response = this.check(await this.tcp(query), id, fqdn);
    return response;
  }

  /** RFC 5452 §4.3: the response must echo the ID and the question. */
  private check(bytes: Uint8Array, id: number, name: string): DnsMessage {
    let message: DnsMessage;
    try {
      message = decodeMessage(bytes);
    } catch (error) {
      throw failed('malformed', `malformed DNS response: ${(error as Error).message}`);
    }
    const question = message.questions[0];
    if (
      !message.response ||
      message.id !== id ||
      message.questions.length !== 1 ||
      question === undefined ||
      question.type !== RR_TYPES.TXT ||
      !namesEqual(question.name, name)
    ) {
      throw failed('mismatch', 'the DNS response does not answer the query');
    }
    return message;
  }

  private udp(query: Uint8Array): Promise<Uint8Array> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
      let done = false;
      const finish = (error: Error | null, bytes?: Uint8Array): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.close();
        if (error === null) resolve(bytes as Uint8Array);
        else reject(error);
      };
      const timer = setTimeout(
        () => finish(failed('timeout', `no UDP answer from ${host} port ${port}`)),
        this.timeoutMs,
      );
      socket.on('error', (error) => finish(failed('network', error.message)));
      // Only datagrams from the server count; anything else is ignored (RFC 5452 §4.5).
      socket.on('message', (message, from) => {
        if (from.port === port && from.address === host) finish(null, new Uint8Array(message));
      });
      socket.send(query, port, host);
    });
  }

  private tcp(query: Uint8Array): Promise<Uint8Array> {
    const { host, port } = this.options;
    return new Promise((resolve, reject) => {
      let pending = Buffer.alloc(0);
      const socket = net.connect({ host, port });
      let done = false;
      const finish = (error: Error | null, bytes?: Uint8Array): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        if (error === null) resolve(bytes as Uint8Array);
        else reject(error);
      };
      const timer = setTimeout(
        () => finish(failed('timeout', `no TCP answer from ${host} port ${port}`)),
        this.timeoutMs,
      );
      socket.on('error', (error) => finish(failed('network', error.message)));
      socket.on('connect', () => {
        const framed = Buffer.alloc(query.length + 2);
        framed.writeUInt16BE(query.length, 0);
        framed.set(query, 2);
        socket.write(framed);
      });
      socket.on('data', (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        if (pending.length > MAX_TCP_RESPONSE + 2) {
          finish(failed('malformed', 'TCP response longer than its frame'));
        } else if (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
          finish(null, new Uint8Array(pending.subarray(2, 2 + pending.readUInt16BE(0))));
        }
      });
      socket.on('end', () => finish(failed('network', 'TCP connection closed before an answer')));
    });
  }
}
