/**
 * Coalesced writes: a socket written more than once in one run of synchronous code (a batch publish, a publish to several
 * channels it is subscribed to, a burst) is corked from its second frame on and flushed when that run ends (a microtask),
 * so its frames leave in one `writev` instead of one system call each. The first frame of a turn is written at once: a
 * single fan-out pays one comparison per recipient for this, and adds no latency.
 *
 * What a corked socket holds has not been offered to the kernel, yet it counts against the connection's send-buffer bound
 * (`Connection.queuedBytes`) as a backlog would: a turn that wrote one connection more than the bound (a batch of large
 * events) closed a client reading at full speed as a slow consumer. So a corked socket is flushed (uncorked and corked
 * again) once it holds FLUSH_CORKED_BYTES: what the turn writes is offered to the kernel in runs of about that size, and
 * only what the kernel does not take stays counted.
 */
import type { Socket } from 'node:net';

/** What a connection keeps for coalescing (two fields on it, no object per connection). */
export interface WriteTurnState {
  /** The turn this socket was last written in. */
  lastWriteTurn: number;
  /** True while this module holds the socket corked until the turn ends. */
  writeCorked: boolean;
}

/** A corked socket holding this much is flushed before its next frame: a few frames' worth, far under any sane bound. */
export const FLUSH_CORKED_BYTES = 64 * 1024;

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
  } else if (socket.writableLength >= FLUSH_CORKED_BYTES) {
    socket.uncork();
    socket.cork();
  }
}
