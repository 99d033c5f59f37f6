import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AddressSlots,
  clientAddressKey,
  longestIdle,
} from '../../../src/faces/dns/connection-slots.js';

describe('DNS connection slots', () => {
  it('counts IPv4 (also IPv4-mapped) alone and IPv6 by its /64', () => {
    assert.equal(clientAddressKey('192.0.2.7'), '192.0.2.7');
    assert.equal(clientAddressKey('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(clientAddressKey('::FFFF:192.0.2.7'), '192.0.2.7');
    const a = clientAddressKey('2001:db8:1:2:aaaa::1');
    assert.equal(a, '20010db800010002/64');
    assert.equal(clientAddressKey('2001:db8:1:2:ffff:ffff:ffff:ffff'), a);
    assert.equal(clientAddressKey('2001:db8:1:2::5%eth0'), a);
    assert.notEqual(clientAddressKey('2001:db8:1:3::1'), a);
    assert.equal(clientAddressKey('::1'), '0000000000000000/64');
  });

  it('holds each address to its limit and gives slots back', () => {
    const slots = new AddressSlots(2);
    assert.ok(slots.take('a'));
    assert.ok(slots.take('a'));
    assert.equal(slots.take('a'), false);
    assert.ok(slots.take('b'));
    slots.release('a');
    assert.ok(slots.take('a'));
    assert.equal(slots.take('a'), false);
  });

  it('picks the connection idle longest that has no query in flight', () => {
    const connections = [
      { name: 'busy-oldest', idleSince: 1, busy: true },
      { name: 'idle-old', idleSince: 2, busy: false },
      { name: 'idle-new', idleSince: 3, busy: false },
    ];
    assert.equal(longestIdle(connections)?.name, 'idle-old');
    assert.equal(longestIdle(connections.map((c) => ({ ...c, busy: true }))), undefined);
    assert.equal(longestIdle([]), undefined);
  });
});
