/**
 * Training checkpoints of a stage: `<rel>/ckpt-<step>/` in HF layout plus
 * optimizer state, written to a temporary folder and renamed, then named in
 * `<rel>/latest.json`. A crash at any point leaves the previous checkpoint
 * whole, and older checkpoints are removed only after the new one is named.
 */
import { EngineError } from "../errors.ts";
import type { StageContext } from "./context.ts";

export interface Latest {
  step: number;
  dir: string;
}

export async function latestCheckpoint(ctx: StageContext, rel: string): Promise<Latest | null> {
  const l = (await ctx.run.readJson(`${rel}/latest.json`)) as Latest | null;
  if (!l) return null;
  return (await ctx.run.exists(l.dir)) ? l : null;
}

/** The folder of a stage's newest checkpoint (its final model once the stage is done). */
export async function modelDir(ctx: StageContext, rel: string): Promise<string> {
  const l = await latestCheckpoint(ctx, rel);
  if (!l) throw new EngineError(`${ctx.run.path(rel)}: no checkpoint (has the stage run?)`);
  return ctx.run.path(l.dir);
}

/** Writes a checkpoint with `write(dir)` and makes it the latest. */
export async function saveCheckpoint(
  ctx: StageContext,
  rel: string,
  step: number,
  write: (dir: string) => Promise<void>,
): Promise<void> {
  const name = `${rel}/ckpt-${String(step).padStart(6, "0")}`;
  const tmp = ctx.run.path(`${name}.tmp`);
  await Deno.remove(tmp, { recursive: true }).catch(() => {});
  await Deno.mkdir(tmp, { recursive: true });
  await write(tmp);
  await Deno.remove(ctx.run.path(name), { recursive: true }).catch(() => {});
  await Deno.rename(tmp, ctx.run.path(name));
  await ctx.run.writeJson(`${rel}/latest.json`, { step, dir: name } satisfies Latest);
  for await (const e of Deno.readDir(ctx.run.path(rel))) {
    if (e.isDirectory && e.name.startsWith("ckpt-") && `${rel}/${e.name}` !== name) {
      await Deno.remove(ctx.run.path(`${rel}/${e.name}`), { recursive: true });
    }
  }
}
