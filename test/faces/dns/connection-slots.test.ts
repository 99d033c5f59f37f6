import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AddressSlots,
  clientAddressKey,
  clientNetworkKey,
  longestIdle,
  takeSlot,
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

  it('puts an IPv6 address in its /48, and IPv4 in none', () => {
    assert.equal(clientNetworkKey('2001:db8:1:2:aaaa::1'), '20010db80001/48');
    assert.equal(clientNetworkKey('2001:db8:1:ffff::1%eth0'), '20010db80001/48');
    assert.notEqual(clientNetworkKey('2001:db8:2::1'), '20010db80001/48');
    assert.equal(clientNetworkKey('192.0.2.7'), undefined);
    assert.equal(clientNetworkKey('::ffff:192.0.2.7'), undefined);
  });

  it('holds each address to its limit and gives slots back', () => {
    const slots = new AddressSlots(2, 100);
    assert.ok(slots.take('192.0.2.1'));
    assert.ok(slots.take('::ffff:192.0.2.1'));
    assert.equal(slots.take('192.0.2.1'), false);
    assert.ok(slots.take('192.0.2.2'));
    slots.release('192.0.2.1');
    assert.ok(slots.take('192.0.2.1'));
    assert.equal(slots.take('192.0.2.1'), false);
  });

  it('holds each IPv6 /48 to its limit, whatever /64s its clients come from', () => {
    const slots = new AddressSlots(2, 3);
    assert.ok(slots.take('2001:db8:1:1::1'));
    assert.ok(slots.take('2001:db8:1:1::2'));
    assert.equal(slots.take('2001:db8:1:1::3'), false, 'the /64 is full');
    assert.ok(slots.take('2001:db8:1:2::1'));
    // The /48 is full: a fourth /64 of it is refused, and nothing is counted for it.
    for (let i = 3; i < 20; i++) assert.equal(slots.take(`2001:db8:1:${i}::1`), false);
    assert.ok(slots.take('2001:db8:2:1::1'), 'another /48');
    assert.ok(slots.take('192.0.2.1'), 'IPv4');
    slots.release('2001:db8:1:1::2');
    assert.ok(slots.take('2001:db8:1:7::1'), 'a released slot goes back to the /48');
    assert.equal(slots.take('2001:db8:1:8::1'), false);
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

  it('counts a busy connection whose client took no answer since the cut-off as idle', () => {
    const connections = [
      { name: 'stalled', idleSince: 1, busy: true, stalledSince: 100 },
      { name: 'writing', idleSince: 2, busy: true, stalledSince: 900 },
      { name: 'answering', idleSince: 3, busy: true },
    ];
    // Without a cut-off, or before the stall began, every one is busy.
    assert.equal(longestIdle(connections), undefined);
    assert.equal(longestIdle(connections, 99), undefined);
    assert.equal(longestIdle(connections, 100)?.name, 'stalled');
    assert.equal(longestIdle(connections, 1000)?.name, 'stalled');
    assert.equal(longestIdle(connections.slice(1), 1000)?.name, 'writing');
    assert.equal(longestIdle(connections.slice(2), 1000), undefined);
    // At the limit, takeSlot evicts the stalled one for the newcomer.
    const open = new Set(connections);
    const evicted: string[] = [];
    const slots = new AddressSlots(10, 10);
    assert.ok(takeSlot(open, slots, '192.0.2.9', 3, (c) => evicted.push(c.name), 500));
    assert.deepEqual(evicted, ['stalled']);
    assert.equal(
      takeSlot(open, slots, '192.0.2.9', 2, (c) => evicted.push(c.name), 500),
      false,
    );
  });
});
