/** The Redis Cluster hash slot of a key (CRC16 of its hash tag, mod 16384); the package ships no types. */
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
