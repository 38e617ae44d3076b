/**
 * Writes units 0..n-1 of a JsonlShards output, skipping completed ones, sleeping
 * `delayMs` before each; prints "wrote <id>" after each. Used by run_infra_test.ts
 * to kill -9 a writer mid-way and resume it.
 *
 *   deno run -A tests/support/shard_writer.ts <runDir> <units> <delayMs>
 */
import { JsonlShards, RunDir } from "../../src/run/run_dir.ts";

/** The rows of unit `i`: what an uninterrupted run writes. */
export function unitRows(i: number): object[] {
  return Array.from({ length: 1 + (i % 3) }, (_, j) => ({
    unit: i,
    row: j,
    text: `sample ${i}.${j} `.repeat(200),
  }));
}

if (import.meta.main) {
  const [root, units, delayMs] = Deno.args;
  const shards = new JsonlShards(new RunDir(root), "teacher");
  const done = await shards.done();
  for (let i = 0; i < Number(units); i++) {
    if (done.has(String(i))) continue;
    await new Promise((r) => setTimeout(r, Number(delayMs)));
    await shards.writeUnit(String(i), unitRows(i));
    console.log(`wrote ${i}`);
  }
}
