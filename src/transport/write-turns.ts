/**
 * Coalesced writes: a socket written more than once in one run of synchronous code (a batch publish, a publish to several
 * channels it is subscribed to, a burst) is corked from its second frame on and flushed when that run ends (a microtask),
 * so its frames leave in one `writev` instead of one system call each. The first frame of a turn is written at once: a
 * single fan-out pays one comparison per recipient for this, and adds no latency.
 */
import type { Socket } from 'node:net';

/** What a connection keeps for coalescing (two fields on it, no object per connection). */
export interface WriteTurnState {
  /** The turn this socket was last written in. */
  lastWriteTurn: number;
  /** True while this module holds the socket corked until the turn ends. */
  writeCorked: boolean;
}

let turn = 1;
let ending = false;
const corkedSockets: Socket[] = [];
const corkedStates: WriteTurnState[] = [];

function endTurn(): void {
  turn++;
  ending = false;
  for (let i = 0; i < corkedSockets.length; i++) {
    corkedStates[i]!.writeCorked = false;
    corkedSockets[i]!.uncork();
  }
  corkedSockets.length = 0;
  corkedStates.length = 0;
}

/** Call right before writing to `socket`: corks it when it was already written in this turn. */
export function beforeWrite(socket: Socket, state: WriteTurnState): void {
  if (state.lastWriteTurn !== turn) {
    state.lastWriteTurn = turn;
    if (!ending) {
      ending = true;
      queueMicrotask(endTurn);
    }
    return;
  }
  if (!state.writeCorked) {
    state.writeCorked = true;
    socket.cork();
    corkedSockets.push(socket);
    corkedStates.push(state);
  }
}
