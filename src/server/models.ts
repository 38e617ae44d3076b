/**
 * The models the OpenAI-compatible endpoints serve: the run's checkpoints
 * (student = PPO policy if present, else SFT; sft; ppo; teacher) and an
 * optional folder given on the command line. One model is loaded at a time,
 * lazily; requests queue, so the GPU runs one generate at a time.
 */
import { basename, resolve } from "node:path";
import { gpu, initGpu } from "../gpu/mod.ts";
import { loadPretrained, type Pretrained } from "../model/checkpoint.ts";
import type { Run } from "./run.ts";

export const RUN_MODELS = ["student", "sft", "ppo", "teacher"] as const;
export type RunModel = typeof RUN_MODELS[number];

export interface ModelEntry {
  id: string;
  /** The checkpoint folder, resolved now (it moves as training checkpoints). */
  dir: string;
}

export interface ModelHostOptions {
  /** The run whose checkpoints are offered; none in a multi-run server. */
  run?: Run | null;
  /** The default model: a run model name or a checkpoint folder ("student"). */
  model?: string;
  /** Open the GPU quietly when the first request needs it. */
  quietGpu?: boolean;
}

export class ModelHost {
  readonly #run: Run | null;
  /** A folder given by path, served under its folder name. */
  readonly #custom: ModelEntry | null;
  readonly defaultId: string;
  readonly #quiet: boolean;
  #tail: Promise<unknown> = Promise.resolve();
  #loaded: { dir: string; model: Pretrained } | null = null;
  #pending = 0;

  constructor(opts: ModelHostOptions = {}) {
    this.#run = opts.run ?? null;
    this.#quiet = opts.quietGpu ?? false;
    const choice = opts.model ?? "student";
    if ((RUN_MODELS as readonly string[]).includes(choice)) {
      this.#custom = null;
      this.defaultId = choice;
    } else {
      const dir = resolve(choice);
      this.#custom = { id: basename(dir), dir };
      this.defaultId = this.#custom.id;
    }
  }

  /** Requests waiting or running. */
  get pending(): number {
    return this.#pending;
  }

  /** The models that can be served now. */
  async list(): Promise<ModelEntry[]> {
    const out: ModelEntry[] = [];
    if (this.#custom) out.push(this.#custom);
    for (const id of RUN_MODELS) {
      const dir = await this.#runModel(id);
      if (dir) out.push({ id, dir });
    }
    return out;
  }

  /** The model `id` names (the default when absent), or null when there is no such model now. */
  async resolve(id: string | undefined | null): Promise<ModelEntry | null> {
    const want = id ?? this.defaultId;
    if (this.#custom && want === this.#custom.id) return this.#custom;
    if ((RUN_MODELS as readonly string[]).includes(want)) {
      const dir = await this.#runModel(want as RunModel);
      return dir ? { id: want, dir } : null;
    }
    return null;
  }

  async #runModel(id: RunModel): Promise<string | null> {
    if (!this.#run) return null;
    if (id !== "teacher") return await this.#run.checkpoint(id);
    // The teacher is the local checkpoint the run's config names (a folder of the project).
    const cfg = await this.#run.config() as Record<string, unknown> | null;
    const source = (cfg?.teacher as Record<string, unknown> | undefined)?.source as
      | Record<string, unknown>
      | undefined;
    if (source?.kind !== "local" || typeof source.model !== "string") return null;
    try {
      const dir = resolve(source.model);
      await Deno.stat(`${dir}/config.json`);
      return dir;
    } catch {
      return null;
    }
  }

  /**
   * Runs `fn` with the model loaded, after every earlier request. The loaded
   * model stays until a request needs another folder.
   */
  use<T>(entry: ModelEntry, fn: (m: Pretrained) => Promise<T>): Promise<T> {
    this.#pending++;
    const job = this.#tail.then(async () => {
      await this.#ensureGpu();
      if (this.#loaded?.dir !== entry.dir) {
        this.#loaded?.model.model.destroy();
        this.#loaded = null;
        this.#loaded = { dir: entry.dir, model: await loadPretrained(entry.dir) };
      }
      return await fn(this.#loaded.model);
    }).finally(() => this.#pending--);
    this.#tail = job.catch(() => {});
    return job;
  }

  /** Frees the loaded model once the queue is empty. */
  async close(): Promise<void> {
    await this.#tail;
    this.#loaded?.model.model.destroy();
    this.#loaded = null;
  }

  async #ensureGpu(): Promise<void> {
    try {
      gpu();
    } catch {
      await initGpu({ quiet: this.#quiet });
    }
  }
}
