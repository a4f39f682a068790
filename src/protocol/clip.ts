/**
 * A client's string echoed back in an error message or written in a log line, cut to at most `max` UTF-16 units without
 * splitting a surrogate pair: cut inside one, the client got half an emoji (`\ud83d`) and the log line U+FFFD (a fuzz of
 * the frame decoder).
 */
export function clipped(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}
