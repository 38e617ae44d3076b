/**
 * `deno task bench:ppo [-- --json] [--config FILE] [--set key=value ...]
 * [--iterations N] [--warmup N] [--no-torch] [--profile]`: the seconds of one PPO
 * iteration of the shape a config gives (default configs/effect.json), per
 * phase, and its rollouts/s, beside PyTorch's figures for the same iteration
 * measured in the same run (bench/torch_ppo.py) and the ratio. It tells
 * whether PPO's wall time is the engine's or the algorithm's, and which
 * phase to look at.
 *
 * An iteration is what src/stages/ppo.ts does for the learned reward model
 * (the method's run): sample promptsPerIteration × samplesPerPrompt
 * responses, score them with the reward model, then ppoUpdate (old and
 * reference log-probs and values; KL rewards, advantages; epochs of
 * minibatch steps). The phases: generate, score, logprobs (ppoUpdate's
 * scoreRollout) and update (the rest of ppoUpdate). Models are randomly
 * initialised at the configured shapes; every response runs to
 * ppo.maxNewTokens (no EOS, no stop strings) so both sides do the same
 * work; the policy always steps (no value warm-up); prompts are the task's
 * own, drawn as the stage draws them, and PyTorch gets the same token ids.
 */
import { parseArgs } from "node:util";
import * as E from "../mod.ts";
import { EngineError, gpu, initGpu, noGrad, runMain, tidy } from "../mod.ts";
import { type Config, configSchema } from "../src/run/config.ts";
import { loadConfig } from "../src/util/schema.ts";
import { type ModelConfig, readConfig } from "../src/model/config.ts";
import { CausalLM } from "../src/model/llama.ts";
import type { Tokenizer } from "../src/model/tokenizer.ts";
import { generate, type Generation } from "../src/generate/generate.ts";
import { type PpoModels, ppoUpdate, type ScoredRollout } from "../src/train/ppo_update.ts";
import { Trainer } from "../src/train/trainer.ts";
import { drawPrompts, penalisedScores, rolloutBatch } from "../src/train/rollout.ts";
import { loadTask } from "../src/tasks/task.ts";
import type { Question, Task } from "../src/tasks/types.ts";
import { hash32, rlQuestionIds, rng } from "../src/stages/context.ts";
import { studentConfig, studentTokenizer } from "../src/stages/sft.ts";
import { scoreAll, type Scorer, scorerOf } from "../src/stages/reward_train.ts";
import { runTorchScript, torchThreads } from "./torch_run.ts";
import { forceKernels, type KernelChoice, kernelChoice } from "../src/tensor/kernel_choice.ts";

const USAGE = "usage: deno task bench:ppo [-- --json] [--config FILE] [--set key=value ...] " +
  "[--iterations N] [--warmup N] [--no-torch] [--profile] [--attention fused|composed|fused-inference]";

/** scoreAll's batch in the stage. */
const SCORE_BATCH = 128;

interface Cli {
  json: boolean;
  config: string;
  overrides: string[];
  iterations: number;
  warmup: number;
  torch: boolean;
  /** One more iteration under the GPU profiler: milliseconds per kernel kind. */
  profile: boolean;
  /** The attention kernels instead of the adapter's entry in kernel_choice.ts (to compare them). */
  attention: KernelChoice["attention"] | null;
}

interface Shapes {
  policy: ModelConfig;
  reward: ModelConfig;
}

interface BenchModels extends PpoModels {
  value: CausalLM | null;
  rm: CausalLM;
  scorer: Scorer;
}

interface Phases {
  generate: number;
  score: number;
  logprobs: number;
  update: number;
}

interface GpuCounts {
  dispatches: number;
  submits: number;
  /** Read-backs: each one waits for the GPU. */
  waits: number;
}

interface Timed {
  phases: Phases;
  seconds: number;
  gpu: GpuCounts;
  trainedRows: number;
  /** T of the [B, T] rollout batch. */
  seqLen: number;
}

interface TorchResult {
  rollouts_per_s: number;
  iteration_s: number;
  phases: Phases;
  trained_rows: number;
  params: Record<string, number | null>;
  torch: {
    version: string;
    threads: number;
    blas: { loaded: string[]; openblas: boolean; openblas_config?: string };
  };
  matmul_512_gflops: number;
}

function parseCli(): Cli {
  let values;
  try {
    ({ values } = parseArgs({
      // `deno task bench:ppo -- --json` passes the "--" through.
      args: Deno.args.filter((a) => a !== "--"),
      options: {
        json: { type: "boolean", default: false },
        config: { type: "string", default: "configs/effect.json" },
        set: { type: "string", multiple: true, default: [] },
        iterations: { type: "string", default: "3" },
        warmup: { type: "string", default: "1" },
        "no-torch": { type: "boolean", default: false },
        profile: { type: "boolean", default: false },
        attention: { type: "string" },
      },
    }));
  } catch (err) {
    throw new EngineError(`${(err as Error).message}; ${USAGE}`);
  }
  return {
    json: values.json,
    config: values.config,
    overrides: values.set,
    iterations: count("iterations", values.iterations, 1),
    warmup: count("warmup", values.warmup, 0),
    torch: !values["no-torch"],
    profile: values.profile,
    attention: attentionChoice(values.attention),
  };
}

function attentionChoice(text: string | undefined): KernelChoice["attention"] | null {
  if (text === undefined) return null;
  const all = ["fused", "composed", "fused-inference"] as const;
  const found = all.find((a) => a === text);
  if (!found) throw new EngineError(`--attention must be one of ${all.join(", ")}, got "${text}"`);
  return found;
}

function count(flag: string, text: string, min: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min) {
    throw new EngineError(`--${flag} must be an integer >= ${min}, got "${text}"`);
  }
  return n;
}

async function loadBenchConfig(cli: Cli): Promise<Config> {
  const cfg = await loadConfig(configSchema, cli.config, cli.overrides);
  const { advantage, samplesPerPrompt } = cfg.ppo;
  if (advantage === "group" && samplesPerPrompt < 2) {
    throw new EngineError(
      `${cli.config}: ppo.advantage "group" needs ppo.samplesPerPrompt >= 2, got ${samplesPerPrompt}`,
    );
  }
  return cfg;
}

/** The training questions PPO draws from, as src/stages/context.ts loads them. */
async function promptPool(cfg: Config): Promise<{ task: Task; pool: Question[] }> {
  const t = cfg.task;
  if (t.kind !== "arithmetic" && !t.train) {
    throw new EngineError(`config: task.train must name a data file for task ${t.kind}`);
  }
  const a = t.arithmetic;
  const { task, questions } = await loadTask(t.kind, {
    path: t.train || undefined,
    limit: t.trainLimit || undefined,
    offset: t.trainOffset || undefined,
    validationPath: t.validation || undefined,
    shots: t.shots,
    arithmetic: {
      seed: a.trainSeed,
      count: a.trainCount,
      minNumber: a.minNumber,
      maxNumber: a.maxNumber,
      minSteps: a.minSteps,
      maxSteps: a.maxSteps,
      ops: a.ops as ("+" | "-" | "*")[],
      nonNegative: true,
    },
  });
  const rl = rlQuestionIds({ cfg, train: questions });
  return { task, pool: rl.size ? questions.filter((q) => rl.has(q.id)) : questions };
}

/** The policy's shape (the student's) and the reward model's (reward.init's, or the student's). */
async function modelShapes(cfg: Config, tokenizer: Tokenizer): Promise<Shapes> {
  const s = cfg.student;
  const policy: ModelConfig = s.init
    ? { ...(await readConfig(s.init)), head: "lm" }
    : studentConfig(cfg, tokenizer);
  const { init, score } = cfg.reward;
  const base = init ? await readConfig(init) : policy;
  if (base.vocabSize !== policy.vocabSize) {
    throw new EngineError(
      `reward.init ${init} has vocab ${base.vocabSize}, the student ${policy.vocabSize}; ` +
        "PPO scores the student's token ids",
    );
  }
  // reward.score "logprob" scores with the LM's log-probs; "last-token" with a score head.
  return { policy, reward: { ...base, head: score === "logprob" ? "lm" : "score" } };
}

function buildModels(cfg: Config, shapes: Shapes, pad: number): BenchModels {
  const seed = cfg.student.initSeed;
  const policy = CausalLM.init(shapes.policy, seed);
  const value = cfg.ppo.advantage === "gae"
    ? CausalLM.init({ ...shapes.policy, head: "score" }, seed)
    : null;
  const rm = CausalLM.init(shapes.reward, seed + 1);
  randomScoreHead(rm, seed);
  const trainer = (model: CausalLM, lr: number) =>
    new Trainer(model, {
      lr,
      totalSteps: 1,
      schedule: "constant",
      maxGradNorm: cfg.ppo.maxGradNorm,
    });
  // The logprob head's fitted scale and bias are 1 and 0 here; the work is the same.
  const head = cfg.reward.score === "logprob"
    ? { kind: "logprob" as const, scale: 1, bias: 0 }
    : null;
  return {
    policy,
    ref: CausalLM.init(shapes.policy, seed),
    value,
    rm,
    scorer: scorerOf(rm, head, pad),
    policyTrainer: trainer(policy, cfg.ppo.lr),
    valueTrainer: value && trainer(value, cfg.ppo.valueLr),
  };
}

/**
 * A trained reward model's score head is not zero, and with a zero one every
 * score is equal: RLOO would train on no group. Uniform in ±0.1, as torch_ppo.py.
 */
function randomScoreHead(rm: CausalLM, seed: number): void {
  const w = rm.params["score.weight"];
  if (!w) return;
  const r = rng(seed, 1);
  const data = Float32Array.from({ length: w.size }, () => (r() - 0.5) * 0.2);
  noGrad(() => tidy(() => E.assign(w, E.tensor(data, [...w.shape]))));
}

function destroyModels(m: BenchModels): void {
  m.policyTrainer.destroy();
  m.valueTrainer?.destroy();
  for (const model of [m.policy, m.ref, m.value, m.rm]) model?.destroy();
}

/** Iteration `it`'s prompts, drawn as ppo.ts's rollout draws them, as token ids. */
function iterationPrompts(
  cfg: Config,
  pool: Question[],
  tokenizer: Tokenizer,
  it: number,
): number[][] {
  const { promptsPerIteration, samplesPerPrompt } = cfg.ppo;
  return drawPrompts(pool, promptsPerIteration, samplesPerPrompt, rng(cfg.seed, 9000 + it))
    .map((q) => tokenizer.encode(q.prompt));
}

/** The reward model's scores with ppo.ts's output mapping and penalties. */
async function scoreResponses(
  cfg: Config,
  m: BenchModels,
  task: Task,
  seqs: number[][],
  prompts: number[][],
  gens: Generation[],
): Promise<Float32Array> {
  let scores = await scoreAll(m.scorer, seqs, prompts.map((p) => p.length), SCORE_BATCH);
  if (cfg.ppo.rewardModelOutput === "probability") {
    scores = scores.map((s) => 1 / (1 + Math.exp(-s)));
  }
  return penalisedScores(
    scores,
    gens.map((g) => ({
      hasAnswer: task.extract(g.text) !== null,
      endedWithEos: g.finishReason === "eos",
    })),
    { noAnswer: cfg.ppo.noAnswerPenalty, noEos: cfg.ppo.noEosPenalty },
  );
}

function gpuCounts(): GpuCounts {
  const r = gpu().recorder;
  return { dispatches: r.dispatches, submits: r.submits, waits: r.readbacks };
}

function countsSince(before: GpuCounts): GpuCounts {
  const now = gpuCounts();
  return {
    dispatches: now.dispatches - before.dispatches,
    submits: now.submits - before.submits,
    waits: now.waits - before.waits,
  };
}

/** One PPO iteration on our engine, timed per phase. */
async function ourIteration(
  cfg: Config,
  m: BenchModels,
  tokenizer: Tokenizer,
  task: Task,
  prompts: number[][],
  it: number,
): Promise<Timed> {
  const before = gpuCounts();
  const t0 = performance.now();
  const gens = await generate(m.policy, tokenizer, prompts, {
    maxNewTokens: cfg.ppo.maxNewTokens,
    temperature: cfg.ppo.temperature,
    seed: hash32(`ppo:${cfg.seed}:${it}`),
    eosTokenIds: [],
    stopStrings: [],
  });
  const t1 = performance.now();
  const seqs = prompts.map((p, b) => [...p, ...gens[b].ids]);
  const batch = rolloutBatch(seqs, prompts.map((p) => p.length), tokenizer.padId ?? 0);
  const scores = await scoreResponses(cfg, m, task, seqs, prompts, gens);
  const ro: ScoredRollout = { ...batch, scores };
  const t2 = performance.now();
  const u = await ppoUpdate(
    ro,
    m,
    { ...cfg.ppo, beta: cfg.ppo.klCoef, updatePolicy: true },
    rng(cfg.seed, 20000 + it),
    { stage: "bench:ppo", iteration: it },
  );
  const t3 = performance.now();
  return {
    phases: { generate: (t1 - t0) / 1000, score: (t2 - t1) / 1000, ...u.seconds },
    seconds: (t3 - t0) / 1000,
    gpu: countsSince(before),
    trainedRows: u.trainedRows,
    seqLen: batch.T,
  };
}

/** The model settings bench/torch_ppo.py builds its model from. */
function torchShape(c: ModelConfig) {
  return {
    vocab: c.vocabSize,
    hidden: c.hiddenSize,
    layers: c.numLayers,
    heads: c.numHeads,
    kv_heads: c.numKvHeads,
    head_dim: c.headDim,
    intermediate: c.intermediateSize,
    rms_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    max_pos: c.maxPositionEmbeddings,
    tied: c.tieWordEmbeddings,
    attention_bias: c.attentionBias,
  };
}

function torchInput(
  cfg: Config,
  shapes: Shapes,
  prompts: number[][][],
  warmup: number,
  pad: number,
) {
  const p = cfg.ppo;
  return {
    warmup,
    pad_id: pad,
    prompts,
    policy: torchShape(shapes.policy),
    reward: { ...torchShape(shapes.reward), kind: cfg.reward.score },
    ppo: {
      advantage: p.advantage,
      samples_per_prompt: p.samplesPerPrompt,
      max_new_tokens: p.maxNewTokens,
      temperature: p.temperature,
      reward_output: p.rewardModelOutput,
      no_eos_penalty: p.noEosPenalty,
      kl_coef: p.klCoef,
      gamma: p.gamma,
      lam: p.lam,
      whiten: p.whitenAdvantages,
      epochs: p.epochs,
      mini_batch: p.miniBatch,
      clip: p.clip,
      value_clip: p.valueClip,
      lr: p.lr,
      value_lr: p.valueLr,
      max_grad_norm: p.maxGradNorm,
    },
  };
}

async function runTorch(input: unknown): Promise<TorchResult | null> {
  const file = await Deno.makeTempFile({ prefix: "ppo_bench_", suffix: ".json" });
  try {
    await Deno.writeTextFile(file, JSON.stringify(input));
    const lines = await runTorchScript("torch_ppo.py", [
      "--input",
      file,
      "--threads",
      String(torchThreads()),
    ]);
    return lines && JSON.parse(lines[lines.length - 1]);
  } finally {
    await Deno.remove(file);
  }
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Per-iteration means over the timed iterations. */
function summarise(timed: Timed[]) {
  const avg = (f: (t: Timed) => number) => mean(timed.map(f));
  const round = (x: number, digits = 4) => +x.toFixed(digits);
  return {
    seconds: avg((t) => t.seconds),
    phases: {
      generate: round(avg((t) => t.phases.generate)),
      score: round(avg((t) => t.phases.score)),
      logprobs: round(avg((t) => t.phases.logprobs)),
      update: round(avg((t) => t.phases.update)),
    },
    gpu: {
      dispatches: Math.round(avg((t) => t.gpu.dispatches)),
      submits: Math.round(avg((t) => t.gpu.submits)),
      waits: Math.round(avg((t) => t.gpu.waits)),
    },
    trainedRows: timed[timed.length - 1].trainedRows,
    seqLen: Math.round(avg((t) => t.seqLen)),
  };
}

function blasName(blas: TorchResult["torch"]["blas"]): string {
  return blas.openblas_config ?? `BLAS ${blas.loaded.join(", ") || "unknown"}`;
}

type Kernels = Awaited<ReturnType<typeof profileIteration>>;

function report(row: ReturnType<typeof resultRow> & { kernels: Kernels }, json: boolean): void {
  if (json) return console.log(JSON.stringify(row));
  if (row.kernels) {
    const top = Object.entries(row.kernels).slice(0, 8)
      .map(([k, v]) => `${k} ${v.ms} ms (${v.dispatches})`);
    console.log(`GPU time per kernel kind, one iteration: ${top.join(", ")}`);
  }
  const ph = (p: Phases) =>
    `generate ${p.generate.toFixed(2)}, score ${p.score.toFixed(2)}, ` +
    `logprobs ${p.logprobs.toFixed(2)}, update ${p.update.toFixed(2)} s`;
  console.log(
    `PPO iteration of ${row.config}: ${row.rollouts_per_iteration} rollouts × ${row.new_tokens} ` +
      `new tokens (${row.advantage}, ${row.epochs} epochs of ${row.mini_batch}); policy ` +
      `${row.params.policy.toLocaleString()} params, reward model ` +
      `${row.params.reward.toLocaleString()} (${row.reward_score}); on ${row.adapter}`,
  );
  console.log(
    `  ours:    ${row.iteration_s.toFixed(2)} s/iteration (${ph(row.phases)}), ` +
      `${row.rollouts_per_s} rollouts/s; ${row.gpu.dispatches} dispatches, ${row.gpu.waits} GPU waits`,
  );
  if (!row.torch_phases) return;
  console.log(
    `  PyTorch: ${row.torch_iteration_s!.toFixed(2)} s/iteration (${ph(row.torch_phases)}), ` +
      `${row.torch_rollouts_per_s} rollouts/s; ${row.torch!.version}, ${row.torch!.threads} ` +
      `threads, ${blasName(row.torch!.blas)}, 512³ matmul ` +
      `${row.torch_matmul_512_gflops} GFLOP/s`,
  );
  console.log(`  ratio (ours / PyTorch rollouts/s): ${row.ratio}`);
}

function resultRow(
  cli: Cli,
  cfg: Config,
  m: BenchModels,
  ours: ReturnType<typeof summarise>,
  torch: TorchResult | null,
  adapter: string,
) {
  const rollouts = cfg.ppo.promptsPerIteration * cfg.ppo.samplesPerPrompt;
  const ourRate = rollouts / ours.seconds;
  return {
    config: cli.config,
    overrides: cli.overrides,
    iterations: cli.iterations,
    warmup: cli.warmup,
    rollouts_per_iteration: rollouts,
    new_tokens: cfg.ppo.maxNewTokens,
    seq_len: ours.seqLen,
    advantage: cfg.ppo.advantage,
    epochs: cfg.ppo.epochs,
    mini_batch: cfg.ppo.miniBatch,
    reward_score: cfg.reward.score,
    params: {
      policy: m.policy.numParameters(),
      ref: m.ref.numParameters(),
      value: m.value?.numParameters() ?? null,
      reward: m.rm.numParameters(),
    },
    adapter,
    attention: kernelChoice().attention,
    rollouts_per_s: +ourRate.toFixed(3),
    iteration_s: +ours.seconds.toFixed(4),
    phases: ours.phases,
    gpu: ours.gpu,
    trained_rows: ours.trainedRows,
    torch_rollouts_per_s: torch?.rollouts_per_s ?? null,
    torch_iteration_s: torch?.iteration_s ?? null,
    torch_phases: torch?.phases ?? null,
    torch_trained_rows: torch?.trained_rows ?? null,
    torch_params: torch?.params ?? null,
    torch: torch?.torch ?? null,
    torch_matmul_512_gflops: torch?.matmul_512_gflops ?? null,
    ratio: torch ? +(ourRate / torch.rollouts_per_s).toFixed(3) : null,
  };
}

/** Warm-up iterations, then the timed ones (returned); one line each on stderr. */
async function timeOurs(
  cli: Cli,
  cfg: Config,
  m: BenchModels,
  tokenizer: Tokenizer,
  task: Task,
  prompts: number[][][],
): Promise<Timed[]> {
  const timed: Timed[] = [];
  for (const [it, p] of prompts.entries()) {
    const t = await ourIteration(cfg, m, tokenizer, task, p, it);
    const warm = it < cli.warmup ? " (warm-up)" : "";
    console.error(`bench:ppo: iteration ${it}${warm}: ${t.seconds.toFixed(2)} s`);
    if (!warm) timed.push(t);
  }
  return timed;
}

/** With the reference BLAS, PyTorch runs several times slower and the ratio means little. */
function warnIfNotOpenBlas(torch: TorchResult): void {
  const { loaded, openblas } = torch.torch.blas;
  if (openblas) return;
  console.error(
    `warning: PyTorch loaded ${loaded.join(", ") || "no BLAS"}, not OpenBLAS; its figures are slow`,
  );
}

/**
 * GPU milliseconds and dispatches per kernel kind over one iteration, from
 * timestamp queries (each dispatch in its own pass, so a little above the
 * unprofiled time). A kind is the kernel's name before its variant suffix.
 */
async function profileIteration(
  cfg: Config,
  m: BenchModels,
  tokenizer: Tokenizer,
  task: Task,
  prompts: number[][],
): Promise<Record<string, { dispatches: number; ms: number }> | null> {
  const recorder = gpu().recorder;
  try {
    recorder.startProfile();
  } catch (err) {
    console.error(`bench:ppo: no kernel profile: ${(err as Error).message}`);
    return null;
  }
  await ourIteration(cfg, m, tokenizer, task, prompts, 0);
  const byKind = new Map<string, { dispatches: number; ms: number }>();
  for (const [key, { count, ms }] of await recorder.stopProfile()) {
    const kind = key.match(/^[A-Za-z_]+/)?.[0] ?? key;
    const k = byKind.get(kind) ?? { dispatches: 0, ms: 0 };
    byKind.set(kind, { dispatches: k.dispatches + count, ms: k.ms + ms });
  }
  return Object.fromEntries(
    [...byKind].sort((a, b) => b[1].ms - a[1].ms)
      .map(([k, v]) => [k, { dispatches: v.dispatches, ms: +v.ms.toFixed(1) }]),
  );
}

async function main(): Promise<void> {
  const cli = parseCli();
  if (cli.attention) forceKernels({ attention: cli.attention });
  const cfg = await loadBenchConfig(cli);
  const { task, pool } = await promptPool(cfg);
  const tokenizer = await studentTokenizer({ cfg, task });
  const shapes = await modelShapes(cfg, tokenizer);
  const pad = tokenizer.padId ?? 0;
  const info = (await initGpu()).info;
  const adapter = `${info.description} (${info.backend})`;
  const m = buildModels(cfg, shapes, pad);
  const prompts = Array.from(
    { length: cli.warmup + cli.iterations },
    (_, it) => iterationPrompts(cfg, pool, tokenizer, it),
  );
  const ours = summarise(await timeOurs(cli, cfg, m, tokenizer, task, prompts));
  const torch = cli.torch
    ? await runTorch(torchInput(cfg, shapes, prompts, cli.warmup, pad))
    : null;
  if (torch) warnIfNotOpenBlas(torch);
  const kernels = cli.profile
    ? await profileIteration(cfg, m, tokenizer, task, iterationPrompts(cfg, pool, tokenizer, 0))
    : null;
  report({ ...resultRow(cli, cfg, m, ours, torch, adapter), kernels }, cli.json);
  destroyModels(m);
}

// `deno task bench` (deno bench bench/) loads every *_bench.ts too; this one runs only as main.
if (import.meta.main) await runMain(main);
