/**
 * Where responses come from: a local checkpoint run by the engine, or an
 * OpenAI-compatible endpoint. Both give n responses per prompt.
 */
import { generate } from "../generate/generate.ts";
import type { CausalLM } from "../model/llama.ts";
import type { Tokenizer } from "../model/tokenizer.ts";
import { HttpTeacher, type HttpTeacherConfig } from "../teacher/http.ts";

export interface SampleRequest {
  prompt: string;
  n: number;
  /** 0: greedy. */
  temperature: number;
  seed: number;
}

export interface Sample {
  text: string;
  /** "eos" | "stop" | "length", as OpenAI's finish_reason. */
  finish: string;
  /** Response tokens, when the sampler knows them (local models). */
  tokens: number;
}

export interface SamplerOptions {
  maxNewTokens: number;
  topP: number;
  batchSize: number;
  stop: string[];
}

export interface Sampler {
  /** Responses per request, in request order; `onBatch` reports progress in requests. */
  sample(reqs: SampleRequest[], onBatch?: (done: number) => void): Promise<Sample[][]>;
}

/** A checkpoint on this machine: requests are packed into batches of equal temperature. */
export class LocalSampler implements Sampler {
  constructor(
    readonly model: CausalLM,
    readonly tokenizer: Tokenizer,
    readonly opts: SamplerOptions,
  ) {}

  async sample(reqs: SampleRequest[], onBatch?: (done: number) => void): Promise<Sample[][]> {
    const out: Sample[][] = reqs.map(() => []);
    // One sequence per (request, sample), grouped by temperature.
    const jobs = reqs.flatMap((r, i) => Array.from({ length: r.n }, (_, k) => ({ i, k, r })));
    const temps = [...new Set(reqs.map((r) => r.temperature))];
    let requestsDone = 0;
    for (const temperature of temps) {
      const group = jobs.filter((j) => j.r.temperature === temperature);
      for (let at = 0; at < group.length; at += this.opts.batchSize) {
        const batch = group.slice(at, at + this.opts.batchSize);
        const gens = await generate(
          this.model,
          this.tokenizer,
          batch.map((j) => this.tokenizer.encode(j.r.prompt)),
          {
            maxNewTokens: this.opts.maxNewTokens,
            temperature,
            topP: this.opts.topP,
            // Depends only on the first request's seed and position: resumable.
            seed: (batch[0].r.seed * 7919 + batch[0].k) >>> 0,
            stopStrings: this.opts.stop,
            eosTokenIds: this.tokenizer.eosIds,
          },
        );
        gens.forEach((g, m) => {
          const j = batch[m];
          out[j.i][j.k] = { text: g.text, finish: g.finishReason, tokens: g.ids.length };
        });
        const complete = out.filter((o, i) => o.filter(Boolean).length === reqs[i].n).length;
        if (complete > requestsDone) onBatch?.(complete - requestsDone);
        requestsDone = complete;
      }
    }
    return out;
  }
}

/** An OpenAI-compatible endpoint (vLLM, SGLang, llama.cpp server, Ollama, hosted APIs). */
export class HttpSampler implements Sampler {
  readonly client: HttpTeacher;
  constructor(
    cfg: HttpTeacherConfig,
    readonly opts: SamplerOptions,
    readonly count: (t: string) => number,
    role = "teacher",
  ) {
    this.client = new HttpTeacher(cfg, role);
  }

  async sample(reqs: SampleRequest[], onBatch?: (done: number) => void): Promise<Sample[][]> {
    const outs = await this.client.completeMany(
      reqs.map((r) => ({
        prompt: r.prompt,
        n: r.n,
        temperature: r.temperature,
        topP: this.opts.topP,
        maxTokens: this.opts.maxNewTokens,
        stop: this.opts.stop.length ? this.opts.stop : undefined,
        seed: r.seed,
      })),
      () => onBatch?.(1),
    );
    return outs.map((o) =>
      o.map((c) => ({ text: c.text, finish: c.finishReason, tokens: this.count(c.text) }))
    );
  }
}
