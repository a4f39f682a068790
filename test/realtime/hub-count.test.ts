/** The hub's connection count, kept as connections come and go (it was summed over every app on each upgrade). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unitWorld } from '../helpers/unit.js';

test('the connection count follows adds and removes, each counted once', () => {
  const world = unitWorld();
  const hub = world.deps.hub;
  const a = world.connect().connection;
  const b = world.connect().connection;
  assert.equal(hub.connectionCount(), 2);
  hub.addConnection(a);
  assert.equal(hub.connectionCount(), 2, 'added twice, counted once');
  hub.removeConnection(a);
  hub.removeConnection(a);
  assert.equal(hub.connectionCount(), 1, 'removed twice, uncounted once');
  hub.removeConnection(b);
  assert.equal(hub.connectionCount(), 0);
  assert.equal([...hub.connections()].length, 0);
});
