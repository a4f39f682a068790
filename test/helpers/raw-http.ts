/** Raw HTTP over a TCP socket, for requests no client library would send (malformed, oversized) and their answers. */
import { connect } from 'node:net';
import { within } from './wait.js';

/** Writes `text` on a new connection to 127.0.0.1:`port`; resolves with all the server wrote before it closed it (3 s bound). */
export async function exchange(port: number, text: string): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  // A reset is an end like any other here (`once` would reject on it): what arrived before it is the answer checked.
  socket.on('error', () => undefined);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.write(text);
  try {
    await within(closed, 'the server to close the connection', 3000);
  } finally {
    socket.destroy();
  }
  return received;
}

/** The status line, the headers (names lower-cased) and the body of an HTTP response. */
export function parseResponse(response: string): { status: string; headers: Record<string, string>; body: string } {
  const [head = '', body = ''] = response.split('\r\n\r\n');
  const [status = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  return { status, headers, body };
}
