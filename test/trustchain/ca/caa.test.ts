import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  caaAllows,
  caaSearchDomains,
  parseIssueValue,
  relevantCaaRecordSet,
  type CaaRecord,
} from '../../../src/trustchain/ca/caa.js';

const issue = (value: string, flags = 0): CaaRecord => ({ flags, tag: 'issue', value });
const issuewild = (value: string, flags = 0): CaaRecord => ({ flags, tag: 'issuewild', value });

describe('CAA (RFC 8659)', () => {
  it('§4.2: only listed issuers may issue', () => {
    const records = [issue('ca1.example.net'), issue('ca2.example.org')];
    assert.equal(caaAllows('ca1.example.net', records, 'certs.example.com').allowed, true);
    assert.equal(caaAllows('CA2.EXAMPLE.ORG', records, 'certs.example.com').allowed, true);
    assert.deepEqual(caaAllows('ca3.example.com', records, 'certs.example.com'), {
      allowed: false,
      reason: 'not_authorized',
    });
  });

  it('§4.2: an empty issuer forbids everyone; additive with a named one', () => {
    assert.equal(caaAllows('ca1.example.net', [issue(';')], 'nocerts.example.com').allowed, false);
    assert.equal(
      caaAllows('ca1.example.net', [issue(';'), issue('ca1.example.net')], 'x.example.com').allowed,
      true,
    );
  });

  it('§4.2: a malformed issue value forbids issuance', () => {
    assert.deepEqual(caaAllows('ca1.example.net', [issue('%%%%%')], 'malformed.example.com'), {
      allowed: false,
      reason: 'not_authorized',
    });
    for (const bad of [
      'ca1.example.net; key=value;',
      'ca1.example.net junk',
      'ca1.example.net; =v',
      '-ca.example',
    ]) {
      assert.equal(parseIssueValue(bad).issuer, null, bad);
    }
    assert.deepEqual(parseIssueValue('  ca1.example.net ;  account=230123 ; b = c '), {
      issuer: 'ca1.example.net',
      parameters: new Map([
        ['account', '230123'],
        ['b', 'c'],
      ]),
    });
  });

  it('§4.3: issuewild takes precedence for wildcard names and is ignored otherwise', () => {
    const wild = [issue('ca1.example.net'), issuewild('ca2.example.org')];
    assert.equal(caaAllows('ca1.example.net', wild, 'wild.example.com').allowed, true);
    assert.equal(caaAllows('ca2.example.org', wild, 'wild.example.com').allowed, false);
    assert.equal(caaAllows('ca2.example.org', wild, '*.wild.example.com').allowed, true);
    assert.equal(caaAllows('ca1.example.net', wild, '*.wild.example.com').allowed, false);
    // wild2: only issue, which then also governs wildcards.
    assert.equal(
      caaAllows('ca1.example.net', [issue('ca1.example.net')], '*.wild2.example.com').allowed,
      true,
    );
    // wild3: issuewild ca2 + issue ";" — nobody for the plain name.
    const wild3 = [issuewild('ca2.example.org'), issue(';')];
    assert.equal(caaAllows('ca2.example.org', wild3, '*.wild3.example.com').allowed, true);
    assert.equal(caaAllows('ca2.example.org', wild3, 'wild3.example.com').allowed, false);
    // issuewild alone: anyone may issue for the plain name.
    assert.deepEqual(
      caaAllows('ca9.example', [issuewild('ca2.example.org')], 'wild3.example.com'),
      { allowed: true, reason: 'no_issue_property' },
    );
  });

  it('§4.1: an unknown tag with the critical flag forbids; without it, it is ignored', () => {
    const critical: CaaRecord = { flags: 128, tag: 'tbs', value: 'Unknown' };
    assert.deepEqual(
      caaAllows('ca1.example.net', [issue('ca1.example.net'), critical], 'a.example.com'),
      {
        allowed: false,
        reason: 'unknown_critical_property',
        tag: 'tbs',
      },
    );
    assert.equal(
      caaAllows(
        'ca1.example.net',
        [issue('ca1.example.net'), { ...critical, flags: 0 }],
        'a.example.com',
      ).allowed,
      true,
    );
    assert.equal(
      caaAllows(
        'ca1.example.net',
        [issue('ca1.example.net'), { flags: 128, tag: 'IODEF', value: 'mailto:x@example.com' }],
        'a.example.com',
      ).allowed,
      true,
    );
    assert.equal(
      caaAllows('ca1.example.net', [issue('ca1.example.net', 128)], 'a.example.com').allowed,
      true,
    );
  });

  it('no records or no issue property: allowed', () => {
    assert.deepEqual(caaAllows('ca', [], 'a.example.com'), { allowed: true, reason: 'no_records' });
    assert.deepEqual(
      caaAllows('ca', [{ flags: 0, tag: 'iodef', value: 'mailto:a@b' }], 'a.example.com'),
      { allowed: true, reason: 'no_issue_property' },
    );
  });

  it('RFC 8657 accounturi and validationmethods restrict a matching issuer', () => {
    const records = [
      issue('ca.example; accounturi=https://ca.example/acct/1; validationmethods=dns-01,http-01'),
    ];
    assert.equal(
      caaAllows('ca.example', records, 'a.example.com', {
        accountUri: 'https://ca.example/acct/1',
        validationMethod: 'dns-01',
      }).allowed,
      true,
    );
    assert.equal(
      caaAllows('ca.example', records, 'a.example.com', {
        accountUri: 'https://ca.example/acct/2',
        validationMethod: 'dns-01',
      }).allowed,
      false,
    );
    assert.equal(
      caaAllows('ca.example', records, 'a.example.com', {
        accountUri: 'https://ca.example/acct/1',
        validationMethod: 'tls-alpn-01',
      }).allowed,
      false,
    );
    assert.equal(caaAllows('ca.example', records, 'a.example.com').allowed, false);
  });

  it('§3: the relevant RRset is the closest non-empty one up the tree; wildcards start at their base', () => {
    const zone: Record<string, CaaRecord[]> = {
      'example.com': [issue('ca1.example.net')],
      'sub.example.com': [],
      'other.example.com': [issue('ca2.example.org')],
    };
    const lookup = (domain: string): CaaRecord[] => zone[domain] ?? [];
    assert.equal(relevantCaaRecordSet('a.sub.example.com', lookup)?.domain, 'example.com');
    assert.equal(relevantCaaRecordSet('x.other.example.com', lookup)?.domain, 'other.example.com');
    assert.equal(relevantCaaRecordSet('*.other.example.com', lookup)?.domain, 'other.example.com');
    assert.equal(relevantCaaRecordSet('a.example.org', lookup), null);
  });

  it('§3: the search goes from the name (without *.) to its top label, never the root', () => {
    assert.deepEqual(caaSearchDomains('a.sub.example.com'), [
      'a.sub.example.com',
      'sub.example.com',
      'example.com',
      'com',
    ]);
    assert.deepEqual(caaSearchDomains('*.example.com.'), ['example.com', 'com']);
    assert.deepEqual(caaSearchDomains('hypermesh'), ['hypermesh']);
    assert.deepEqual(caaSearchDomains(''), []);
  });
});
