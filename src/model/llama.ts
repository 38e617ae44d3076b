/**
 * A decoder-only transformer of the Llama family (Llama, Qwen2), as Hugging
 * Face's LlamaForCausalLM / Qwen2ForCausalLM compute it: RMSNorm, rotate-half
 * RoPE, grouped-query attention, SwiGLU, a tied or untied LM head, and
 * optionally a scalar `score` head (reward or value model). Parameters use
 * the HF names, so checkpoints load and save without renaming.
 */
import * as E from "../tensor/api.ts";
import { keep, readAll, type Tensor } from "../tensor/tensor.ts";
import { requiresGrad } from "../autograd/tape.ts";
import { mulberry32 } from "../util/rng.ts";
import type { ModelConfig } from "./config.ts";
import type { KVCache } from "./kv_cache.ts";
import { ModelFileError } from "./files.ts";
import type { HostTensor } from "./safetensors.ts";

export interface ForwardOptions {
  /** i32 [B, T]; defaults to cache.length + t. */
  positions?: Tensor;
  /** i32 [B]: keys before this index are padding (left-padded batches). */
  keyStart?: Tensor;
  /** Reads earlier keys and values from it and appends this call's. */
  cache?: KVCache;
}

/** The name and shape of every parameter a config implies, in HF order. */
export function parameterShapes(c: ModelConfig): [string, number[]][] {
  const d = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const shapes: [string, number[]][] = [["model.embed_tokens.weight", [c.vocabSize, d]]];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    shapes.push(
      [`${p}.input_layernorm.weight`, [d]],
      [`${p}.self_attn.q_proj.weight`, [q, d]],
      [`${p}.self_attn.k_proj.weight`, [kv, d]],
      [`${p}.self_attn.v_proj.weight`, [kv, d]],
    );
    if (c.attentionBias) {
      shapes.push(
        [`${p}.self_attn.q_proj.bias`, [q]],
        [`${p}.self_attn.k_proj.bias`, [kv]],
        [`${p}.self_attn.v_proj.bias`, [kv]],
      );
    }
    shapes.push(
      [`${p}.self_attn.o_proj.weight`, [d, q]],
      [`${p}.post_attention_layernorm.weight`, [d]],
      [`${p}.mlp.gate_proj.weight`, [c.intermediateSize, d]],
      [`${p}.mlp.up_proj.weight`, [c.intermediateSize, d]],
      [`${p}.mlp.down_proj.weight`, [d, c.intermediateSize]],
    );
  }
  shapes.push(["model.norm.weight", [d]]);
  if (c.head === "lm" && !c.tieWordEmbeddings) shapes.push(["lm_head.weight", [c.vocabSize, d]]);
  if (c.head !== "lm") shapes.push(["score.weight", [1, d]]);
  return shapes;
}

/** Norm weights and biases get no weight decay, as in HF Trainer. */
export function isNoDecay(name: string): boolean {
  return name.endsWith(".bias") || name.includes("norm");
}

export class CausalLM {
  readonly config: ModelConfig;
  readonly params: Record<string, Tensor>;
  #rope: { cos: Tensor; sin: Tensor };

  constructor(config: ModelConfig, params: Record<string, Tensor>) {
    this.config = config;
    this.params = params;
    const tables = E.ropeTables(config.headDim, config.maxPositionEmbeddings, config.ropeTheta);
    this.#rope = { cos: keep(tables.cos), sin: keep(tables.sin) };
  }

  /** Uploads host weights, checking every name and shape against the config. */
  static fromHost(
    config: ModelConfig,
    host: Map<string, HostTensor>,
    where = "checkpoint",
  ): CausalLM {
    const params: Record<string, Tensor> = {};
    for (const [name, shape] of parameterShapes(config)) {
      let t = host.get(name);
      // A reward model may be initialised from a causal LM: its score head starts at zero.
      if (!t && name === "score.weight") t = { shape, data: new Float32Array(shape[1]) };
      if (!t) throw new ModelFileError(`${where}: missing tensor ${name}`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new ModelFileError(
          `${where}: tensor ${name} has shape [${t.shape}], the config implies [${shape}]`,
        );
      }
      params[name] = keep(requiresGrad(E.tensor(t.data, shape)));
    }
    return new CausalLM(config, params);
  }

  /** Random initialisation as HF: normal(0, 0.02) weights, unit norms, zero biases. */
  static init(config: ModelConfig, seed: number, std = 0.02): CausalLM {
    const rand = mulberry32(seed);
    const host = new Map<string, HostTensor>();
    for (const [name, shape] of parameterShapes(config)) {
      const n = shape.reduce((a, b) => a * b, 1);
      const data = new Float32Array(n);
      if (name.includes("norm")) data.fill(1);
      else if (!name.endsWith(".bias") && name !== "score.weight") {
        for (let i = 0; i < n; i++) {
          data[i] = std * Math.sqrt(-2 * Math.log(Math.max(rand(), 1e-12))) *
            Math.cos(2 * Math.PI * rand());
        }
      }
      host.set(name, { shape, data });
    }
    return CausalLM.fromHost(config, host, "init");
  }

  parameters(): Tensor[] {
    return Object.values(this.params);
  }

  numParameters(): number {
    return this.parameters().reduce((s, t) => s + t.size, 0);
  }

  /** Final hidden states [B, T, hidden] of ids [B, T] (i32). */
  forward(ids: Tensor, opts: ForwardOptions = {}): Tensor {
    const c = this.config;
    const P = this.params;
    const [B, T] = ids.shape;
    const past = opts.cache?.length ?? 0;
    const positions = opts.positions ??
      E.tensor(Int32Array.from({ length: B * T }, (_, i) => past + (i % T)), [B, T]);
    let x = E.embedding(P["model.embed_tokens.weight"], ids);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const h = E.rmsNorm(x, P[`${p}.input_layernorm.weight`], c.rmsNormEps);
      const attn = this.#attention(h, i, positions, opts, past);
      x = E.add(x, E.linear(attn, P[`${p}.self_attn.o_proj.weight`]));
      const h2 = E.rmsNorm(x, P[`${p}.post_attention_layernorm.weight`], c.rmsNormEps);
      x = E.add(x, this.#mlp(h2, p));
    }
    opts.cache?.advance(T);
    return E.rmsNorm(x, P["model.norm.weight"], c.rmsNormEps);
  }

  /** Next-token logits [..., vocab] from hidden states. */
  logits(hidden: Tensor): Tensor {
    const head = this.params["lm_head.weight"] ?? this.params["model.embed_tokens.weight"];
    return E.linear(hidden, head);
  }

  /** The scalar head per position, [B, T] from [B, T, hidden]. */
  scores(hidden: Tensor): Tensor {
    const w = this.params["score.weight"];
    if (!w) throw new ModelFileError("this model has no score head (config head: lm)");
    return E.squeeze(E.linear(hidden, w), -1);
  }

  #attention(h: Tensor, layer: number, positions: Tensor, opts: ForwardOptions, past: number) {
    const c = this.config;
    const P = this.params;
    const p = `model.layers.${layer}.self_attn`;
    const [B, T] = h.shape;
    const project = (name: string, heads: number) =>
      E.reshape(E.linear(h, P[`${p}.${name}.weight`], P[`${p}.${name}.bias`]), [
        B,
        T,
        heads,
        c.headDim,
      ]);
    // A view: the fused attention reads [B, T, heads, D] in place (the composed one copies).
    const toHeads = (t: Tensor) => E.permute(t, [0, 2, 1, 3]);
    const q = toHeads(E.rope(project("q_proj", c.numHeads), positions, this.#rope));
    let k = toHeads(E.rope(project("k_proj", c.numKvHeads), positions, this.#rope));
    let v = toHeads(project("v_proj", c.numKvHeads));
    if (opts.cache) [k, v] = opts.cache.update(layer, k, v);
    const out = E.attention(q, k, v, { causal: true, qOffset: past, keyStart: opts.keyStart });
    return E.reshape(E.permute(out, [0, 2, 1, 3]), [B, T, c.numHeads * c.headDim]);
  }

  #mlp(h: Tensor, p: string): Tensor {
    const P = this.params;
    const gate = E.silu(E.linear(h, P[`${p}.mlp.gate_proj.weight`]));
    return E.linear(
      E.mul(gate, E.linear(h, P[`${p}.mlp.up_proj.weight`])),
      P[`${p}.mlp.down_proj.weight`],
    );
  }

  /** Host copies of every parameter, for saving. */
  async toHost(): Promise<Record<string, HostTensor>> {
    const names = Object.keys(this.params);
    const data = (await readAll(names.map((n) => this.params[n]))) as Float32Array[];
    return Object.fromEntries(
      names.map((n, i) => [n, { shape: [...this.params[n].shape], data: data[i] }]),
    );
  }

  destroy(): void {
    for (const t of [...this.parameters(), this.#rope.cos, this.#rope.sin]) t.destroy();
  }
}
