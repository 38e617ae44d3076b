/**
 * The one seeded PRNG of the project: mulberry32, small, fast, and the same on
 * every platform. Callers mix their own seed (and stream) into the 32-bit
 * starting state, so each keeps its own random stream.
 */

/** mulberry32 from a 32-bit state: uniform floats in [0, 1), 32 bits each. */
export function mulberry32(state: number): () => number {
  let s = state >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
