import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isPublicAddress } from '../../../src/faces/acme/address-class.js';

/**
 * The address filter of external-name validation (address-class.ts): every special-purpose
 * range the review listed is refused, at its first and last address; the addresses just
 * outside each range are accepted.
 */
describe('acme: globally routable addresses', () => {
  it('refuses every non-public IPv4 range, first and last address', () => {
    for (const address of [
      '0.0.0.0',
      '0.255.255.255',
      '10.0.0.0',
      '10.255.255.255',
      '100.64.0.0',
      '100.127.255.255',
      '127.0.0.1',
      '127.255.255.255',
      '169.254.0.0',
      '169.254.169.254',
      '169.254.255.255',
      '172.16.0.0',
      '172.31.255.255',
      '192.0.0.0',
      '192.0.0.255',
      '192.0.2.0',
      '192.0.2.255',
      '192.168.0.0',
      '192.168.255.255',
      '198.18.0.0',
      '198.19.255.255',
      '198.51.100.0',
      '198.51.100.255',
      '203.0.113.0',
      '203.0.113.255',
      '224.0.0.0',
      '239.255.255.255',
      '240.0.0.0',
      '255.255.255.255',
    ]) {
      assert.equal(isPublicAddress(address), false, address);
    }
  });

  it('accepts the public IPv4 addresses next to those ranges', () => {
    for (const address of [
      '1.0.0.0',
      '9.255.255.255',
      '11.0.0.0',
      '100.63.255.255',
      '100.128.0.0',
      '126.255.255.255',
      '128.0.0.0',
      '169.253.255.255',
      '169.255.0.0',
      '172.15.255.255',
      '172.32.0.0',
      '192.0.1.0',
      '192.0.3.0',
      '192.167.255.255',
      '192.169.0.0',
      '198.17.255.255',
      '198.20.0.0',
      '198.51.99.255',
      '203.0.112.255',
      '223.255.255.255',
      '8.8.8.8',
    ]) {
      assert.equal(isPublicAddress(address), true, address);
    }
  });

  it('refuses every non-public IPv6 range, and mapped, NAT64 or 6to4 non-public IPv4', () => {
    for (const address of [
      '::',
      '::1',
      '::2',
      '::8.8.8.8',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.1.2.3',
      '::ffff:169.254.169.254',
      '64:ff9b::127.0.0.1',
      '64:ff9b::a00:1',
      '64:ff9b::c0a8:101',
      // Local-use NAT64 (RFC 8215), whatever the IPv4 address.
      '64:ff9b:1::',
      '64:ff9b:1::a00:1',
      '64:ff9b:1::808:808',
      '64:ff9b:1:ffff:ffff:ffff:ffff:ffff',
      // 6to4 (RFC 3056) of a non-public IPv4 address: 127.0.0.1, 10.0.0.1, 169.254.169.254.
      '2002:7f00:1::',
      '2002:a00:1::1',
      '2002:a9fe:a9fe:ffff:ffff:ffff:ffff:ffff',
      '100::',
      '100::ffff:ffff:ffff:ffff',
      '2001:db8::',
      '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff',
      'fc00::',
      'fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'fe80::',
      'febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'ff00::',
      'ff02::1',
      'FE80::1',
      'fe80::1%eth0',
    ]) {
      assert.equal(isPublicAddress(address), false, address);
    }
  });

  it('accepts public IPv6 addresses, and mapped, NAT64 or 6to4 public IPv4', () => {
    for (const address of [
      '2001:4860:4860::8888',
      '2606:4700::1111',
      '100:0:0:1::',
      '2001:db9::',
      '2001:db7:ffff::',
      'fbff::1',
      'fec0::1',
      'feff::1',
      '::ffff:8.8.8.8',
      '64:ff9b::808:808',
      '64:ff9b:0:ffff::808:808',
      '64:ff9b:2::a00:1',
      // 6to4 of 8.8.8.8; the ranges around 2002::/16.
      '2002:808:808::1',
      '2001:ffff::a00:1',
      '2003::a00:1',
    ]) {
      assert.equal(isPublicAddress(address), true, address);
    }
  });

  it('refuses anything that is not an IP address', () => {
    for (const text of ['', 'localhost', '127.0.0.1.', '1.2.3', '[::1]', '::1/128', '01.2.3.4']) {
      assert.equal(isPublicAddress(text), false, text);
    }
  });

  it('an IPv4 address and its IPv4-mapped, NAT64 and 6to4 forms are classed alike', () => {
    fc.assert(
      fc.property(fc.ipV4(), (address) => {
        assert.equal(isPublicAddress(`::ffff:${address}`), isPublicAddress(address));
        assert.equal(isPublicAddress(`64:ff9b::${address}`), isPublicAddress(address));
        const [a, b, c, d] = address.split('.').map(Number) as [number, number, number, number];
        const sixToFour = `2002:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}::1`;
        assert.equal(isPublicAddress(sixToFour), isPublicAddress(address), sixToFour);
      }),
    );
  });
});
