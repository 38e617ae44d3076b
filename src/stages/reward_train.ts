/**
 * Stage 5, reward-train: a transformer (initialised from the SFT student,
 * or reward.init) learns which responses agree with the pseudo-labels, from
 * teacher and student responses alike. The score is a scalar head on the
 * last token (reward.score "last-token", as TRL) or the LM's mean log-prob
 * of the response, scaled ("logprob"), or its least likely token's
 * ("min-logprob"; reward.steps 0 keeps the LM as it is). Pointwise binary cross-entropy,
 * optionally plus a pairwise Bradley–Terry term; accuracy, AUC and
 * calibration are measured on held-out questions.
 */
import { EngineError } from "../errors.ts";
import { noGrad } from "../autograd/tape.ts";
import * as E from "../tensor/api.ts";
import { readAll, type Tensor, tidy } from "../tensor/tensor.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import type { CausalLM } from "../model/llama.ts";
import { loadTokenizer, sameTokenizer, type Tokenizer } from "../model/tokenizer.ts";
import { readConfig } from "../model/config.ts";
import { bceWithLogits, bradleyTerry } from "../train/reward_loss.ts";
import { Trainer } from "../train/trainer.ts";
import { padRows } from "../train/batch.ts";
import { hash32, rng, type StageContext, type StageSummary } from "./context.ts";
import type { ResponseRow } from "../run/rows.ts";
import { isPositive, readLabels, teacherRows } from "./label.ts";
import { latestCheckpoint, modelDir, saveCheckpoint } from "./checkpoints.ts";
import { trainLoop } from "./sft.ts";
import { readStudentRows } from "./student_generate.ts";
import { answerStyle } from "../tasks/arithmetic.ts";
import { fitLogistic, type LogprobHead, logprobScores } from "../train/logprob_reward.ts";

export interface ScoredRow {
  id: string;
  source: "teacher" | "student";
  answer: string | null;
  label: number;
  /** worked (a calculation before the answer) or answer-only: what a reward model may judge by. */
  style: "worked" | "answer-only";
  tokens: number[];
  /** Index of the first response token in `tokens`. */
  start: number;
}

/** Where a logprob reward model keeps its fitted scale and bias. */
/** A reward model's run folder: the method's, or the paper's ablation trained on teacher responses only. */
export type RewardModelDir = "rm" | "rm-teacher";

/** The logprob scorer's fitted scale and bias. */
const headFile = (rel: RewardModelDir) => `${rel}/reward_head.json`;

/** Scores [B] of sequences whose responses begin at `starts`. */
export type Scorer = (seqs: number[][], starts: number[]) => Tensor;

/**
 * Prompt + response tokens, ending in EOS where the response ended by itself,
 * and where the response starts.
 */
export function sequenceOf(
  tokenizer: Tokenizer,
  r: ResponseRow,
  maxLen: number,
): { tokens: number[]; start: number } {
  const prompt = tokenizer.encode(r.prompt);
  const ids = [...prompt, ...tokenizer.encode(r.text, { addSpecialTokens: false })];
  // An HTTP teacher reports a natural end as "stop" (OpenAI's finish_reason).
  if (r.finish === "eos" || r.finish === "stop") ids.push(tokenizer.eosIds[0]);
  return { tokens: ids.slice(0, maxLen), start: Math.min(prompt.length, maxLen) };
}

/** Right-padded ids [B, T] and each row's last index, for a batch of sequences. */
export function padBatch(seqs: number[][], pad: number): { ids: Tensor; last: Tensor; T: number } {
  const { ids, T } = padRows(seqs, pad);
  return {
    ids: E.tensor(ids, [seqs.length, T]),
    last: E.tensor(Int32Array.from(seqs, (s) => s.length - 1)),
    T,
  };
}

/** The score head at each sequence's last token, [B]. */
export function lastScores(model: CausalLM, seqs: number[][], pad: number): Tensor {
  const { ids, last } = padBatch(seqs, pad);
  return E.gatherLast(model.scores(model.forward(ids)), last);
}

/** The scorer of a reward model: its score head, or its LM's log-probs through `head`. */
export function scorerOf(model: CausalLM, head: LogprobHead | null, pad: number): Scorer {
  return head
    ? (seqs, starts) => logprobScores(model, head, seqs, starts, pad)
    : (seqs) => lastScores(model, seqs, pad);
}

/** The trained reward model of a run, and how it scores. */
export async function loadRewardModel(
  ctx: StageContext,
  rel: RewardModelDir = "rm",
): Promise<{ model: CausalLM; scorer: Scorer; tokenizer: Tokenizer }> {
  const dir = await modelDir(ctx, rel);
  // A checkpoint with a score head is a last-token model; a causal LM is a logprob one.
  const lastToken = (await readConfig(dir)).head === "score";
  const head = lastToken ? null : (await ctx.run.readJson(headFile(rel))) as LogprobHead | null;
  if (!lastToken && !head) {
    throw new EngineError(`${ctx.run.path(headFile(rel))}: missing; run reward-train again`);
  }
  const { model, tokenizer } = await loadPretrained(dir, lastToken ? { head: "score" } : undefined);
  return { model, scorer: scorerOf(model, head, tokenizer.padId ?? 0), tokenizer };
}

/**
 * What PPO is paid for a reward model's score: the logit itself (TRL), or sigmoid(logit), on the
 * gold reward's 0-1 scale so that a KL coefficient means the same for every reward source.
 */
export function rewardPaid(score: number, output: "logit" | "probability"): number {
  return output === "probability" ? 1 / (1 + Math.exp(-score)) : score;
}

/** Scores of many sequences, in batches, with no tape. */
export async function scoreAll(
  scorer: Scorer,
  seqs: number[][],
  starts: number[],
  batch: number,
): Promise<Float32Array> {
  const parts: Tensor[] = [];
  for (let i = 0; i < seqs.length; i += batch) {
    parts.push(
      noGrad(() => tidy(() => scorer(seqs.slice(i, i + batch), starts.slice(i, i + batch)))),
    );
  }
  const host = await readAll(parts);
  parts.forEach((p) => p.destroy());
  const out = new Float32Array(seqs.length);
  let at = 0;
  for (const h of host) {
    out.set(h, at);
    at += h.length;
  }
  return out;
}

/**
 * At most `max` rows, evenly spread over `rows` (every k-th): the scale and bias are two
 * parameters, so a few thousand responses fit them, and scoring more with the LM costs time.
 */
export function fitSubset<T>(rows: T[], max: number): T[] {
  const every = Math.ceil(rows.length / max);
  return rows.filter((_, i) => i % every === 0);
}

const seqsOf = (rows: ScoredRow[]): [number[][], number[]] => [
  rows.map((r) => r.tokens),
  rows.map((r) => r.start),
];

/** Area under the ROC curve: the chance a random positive outscores a random negative (ties count half). */
export function auc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from(scores, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  let pos = 0;
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j < idx.length && scores[idx[j]] === scores[idx[i]]) j++;
    const avg = (i + j + 1) / 2;
    for (let k = i; k < j; k++) {
      if (labels[idx[k]]) {
        rankSum += avg;
        pos++;
      }
    }
    i = j;
  }
  const neg = idx.length - pos;
  return pos && neg ? (rankSum - (pos * (pos + 1)) / 2) / (pos * neg) : NaN;
}

/** Accuracy at logit 0, AUC, and expected calibration error over 10 bins of sigmoid(score). */
/**
 * Of the (positive, negative) pairs of responses to the same question, the
 * share the scores order right (ties half): whether the model tells a
 * question's answers apart, which the overall AUC mixes with how hard the
 * question is and how the response is written. NaN without such pairs.
 */
export function withinQuestionAuc(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  questions: readonly string[],
): number {
  const byQ = new Map<string, { pos: number[]; neg: number[] }>();
  for (let i = 0; i < scores.length; i++) {
    let g = byQ.get(questions[i]);
    if (!g) byQ.set(questions[i], g = { pos: [], neg: [] });
    (labels[i] ? g.pos : g.neg).push(scores[i]);
  }
  let right = 0, pairs = 0;
  for (const { pos, neg } of byQ.values()) {
    for (const p of pos) {
      for (const q of neg) right += p > q ? 1 : p === q ? 0.5 : 0;
    }
    pairs += pos.length * neg.length;
  }
  return pairs ? right / pairs : NaN;
}

export function classifierMetrics(
  scores: ArrayLike<number>,
  labels: ArrayLike<number>,
  questions?: readonly string[],
) {
  const n = scores.length;
  let correct = 0;
  const bins = Array.from({ length: 10 }, () => ({ n: 0, p: 0, y: 0 }));
  for (let i = 0; i < n; i++) {
    const p = 1 / (1 + Math.exp(-scores[i]));
    if ((scores[i] > 0 ? 1 : 0) === labels[i]) correct++;
    const b = bins[Math.min(9, Math.floor(p * 10))];
    b.n++;
    b.p += p;
    b.y += labels[i];
  }
  const ece = bins.reduce((s, b) => s + (b.n ? (b.n / n) * Math.abs(b.p / b.n - b.y / b.n) : 0), 0);
  return {
    n,
    accuracy: n ? correct / n : NaN,
    auc: auc(scores, labels),
    ece,
    positiveRate: Array.from(labels).reduce((a, b) => a + b, 0) / Math.max(n, 1),
    aucWithinQuestion: questions ? withinQuestionAuc(scores, labels, questions) : NaN,
  };
}

/** Teacher and student responses of kept questions, labelled, split into train and held-out by question. */
export async function rewardData(
  ctx: StageContext,
  tokenizer: Tokenizer,
  responses = ctx.cfg.reward.responses,
) {
  const cfg = ctx.cfg.reward;
  const labels = await readLabels(ctx);
  const teacher = (await teacherRows(ctx)).filter((r) => labels.get(r.id)?.kept);
  const student = await readStudentRows(ctx);
  const rows: ScoredRow[] = [
    ...teacher.map((r) => ({
      r,
      source: "teacher" as const,
      label: isPositive(labels.get(r.id), r) ? 1 : 0,
    })),
    ...student.map((r) => ({ r, source: "student" as const, label: r.reward ?? 0 })),
  ].map(({ r, source, label }) => ({
    id: r.id,
    source,
    answer: r.answer,
    label,
    style: answerStyle(r.text),
    ...sequenceOf(tokenizer, r, cfg.maxLen),
  }));
  const held = (id: string) =>
    (hash32(`${id}:${ctx.cfg.seed}`) % 10000) / 10000 < cfg.heldOutFraction;
  // The paper's ablation trains on the teacher's responses only; held-out stays both kinds.
  const trained = (r: ScoredRow) => responses === "teacher+student" || r.source === "teacher";
  return {
    train: rows.filter((r) => !held(r.id) && trained(r)),
    heldOut: rows.filter((r) => held(r.id)),
  };
}

/**
 * PPO hands the reward model the policy's token ids, so a reward model started
 * from another checkpoint must share the student's tokenizer.
 */
async function requireSameTokenizer(init: string, rm: Tokenizer, studentDir: string) {
  const st = await loadTokenizer(studentDir);
  if (!sameTokenizer(rm, st)) {
    throw new EngineError(
      `reward-train: reward.init ${init} has a different tokenizer from the student ` +
        `(vocab ${rm.vocabSize} against ${st.vocabSize}); PPO scores the student's token ids`,
    );
  }
}

/**
 * The method's reward model in rm/ (on `reward.responses`), and, when a PPO arm asks for it
 * (`ppo.rewards` "model-teacher"), the paper's ablation in rm-teacher/: the same training on the
 * teacher's responses only. Both are scored on the same held-out responses.
 */
export async function rewardTrain(ctx: StageContext): Promise<StageSummary> {
  const start = performance.now();
  const main = await trainRewardModel(ctx, "rm", ctx.cfg.reward.responses);
  if (!ctx.cfg.ppo.rewards.includes("model-teacher")) return main;
  const ablation = await trainRewardModel(ctx, "rm-teacher", "teacher");
  return {
    ...main,
    teacherOnly: ablation,
    tokensTrained: (main.tokensTrained as number) + (ablation.tokensTrained as number),
    wallSeconds: (performance.now() - start) / 1000,
  };
}

async function trainRewardModel(
  ctx: StageContext,
  rel: RewardModelDir,
  responses: "teacher+student" | "teacher",
): Promise<StageSummary> {
  const start = performance.now();
  const cfg = ctx.cfg.reward;
  const latest = await latestCheckpoint(ctx, rel);
  // Its progress bar and metrics series (the ablation's apart from the method's).
  const stage = rel === "rm" ? "reward-train" : "reward-train-teacher";
  const student = await modelDir(ctx, "sft");
  const init = latest ? ctx.run.path(latest.dir) : (cfg.init || student);
  const logprob = cfg.score !== "last-token";
  const reduce = cfg.score === "min-logprob" ? "min" : "mean";
  const { model, tokenizer } = await loadPretrained(init, logprob ? undefined : { head: "score" });
  if (!latest && cfg.init) await requireSameTokenizer(cfg.init, tokenizer, student);
  const { train, heldOut } = await rewardData(ctx, tokenizer, responses);
  const pos = train.filter((r) => r.label === 1);
  const neg = train.filter((r) => r.label === 0);
  if (train.length === 0) throw new EngineError("reward-train: no labelled responses");
  // Questions with both a positive and a negative response (reward.pairs "question").
  const byQuestion = new Map<string, { pos: ScoredRow[]; neg: ScoredRow[] }>();
  for (const row of train) {
    let g = byQuestion.get(row.id);
    if (!g) byQuestion.set(row.id, g = { pos: [], neg: [] });
    (row.label === 1 ? g.pos : g.neg).push(row);
  }
  const mixed = [...byQuestion.values()].filter((g) => g.pos.length && g.neg.length);
  const pad = tokenizer.padId ?? 0;
  const trainer = new Trainer(model, {
    lr: cfg.lr,
    totalSteps: cfg.steps,
    warmupSteps: cfg.warmupSteps,
    weightDecay: cfg.weightDecay,
  });
  if (latest) await trainer.resume(init);
  // The logprob model trains through the scale and bias fitted at its start
  // (kept, so that a resumed run trains as the uninterrupted one).
  const fit = async (all: ScoredRow[]): Promise<LogprobHead> => {
    const rows = fitSubset(all, cfg.fitRows);
    const unit: LogprobHead = { kind: "logprob", reduce, scale: 1, bias: 0 };
    const m = await scoreAll(scorerOf(model, unit, pad), ...seqsOf(rows), 128);
    return { kind: "logprob", reduce, ...fitLogistic(m, rows.map((r) => r.label), cfg.balance) };
  };
  let head: LogprobHead | null = null;
  if (logprob) {
    head = (await ctx.run.readJson(`${rel}/head_init.json`)) as LogprobHead | null;
    if (!head) await ctx.run.writeJson(`${rel}/head_init.json`, head = await fit(train));
  }
  const scorer = scorerOf(model, head, pad);
  let tokens = 0;
  const batchAt = (s: number) => {
    const r = rng(ctx.cfg.seed, 5000 + s);
    const pick = (list: ScoredRow[]) => list[Math.floor(r() * list.length)];
    const half = Math.floor(cfg.batchSize / 2);
    if (cfg.pairs === "question" && mixed.length) {
      // Each positive beside a negative of the same question: the pairwise term compares them.
      const half = Math.floor(cfg.batchSize / 2);
      const qs = Array.from({ length: half }, () => mixed[Math.floor(r() * mixed.length)]);
      return [...qs.map((q) => pick(q.pos)), ...qs.map((q) => pick(q.neg))];
    }
    const rows = cfg.balance && pos.length && neg.length
      ? [
        ...Array.from({ length: half }, () => pick(pos)),
        ...Array.from({ length: cfg.batchSize - half }, () => pick(neg)),
      ]
      : Array.from({ length: cfg.batchSize }, () => pick(train));
    return rows;
  };
  // Steps done before a resume count too (as in SFT): their batches are known from the seed.
  for (let s = 0; s < (latest?.step ?? 0); s++) {
    tokens += batchAt(s).reduce((a, r) => a + r.tokens.length, 0);
  }
  await trainLoop(ctx, {
    stage,
    rel,
    trainer,
    from: latest?.step ?? 0,
    steps: cfg.steps,
    every: cfg.checkpointEvery,
    step: (s) => {
      const rows = batchAt(s);
      tokens += rows.reduce((a, r) => a + r.tokens.length, 0);
      return trainer.trainStep([() => {
        const scores = scorer(...seqsOf(rows));
        let loss = bceWithLogits(scores, E.tensor(rows.map((r) => r.label)));
        if (cfg.pairwiseWeight > 0 && (cfg.balance || cfg.pairs === "question")) {
          const half = Math.floor(rows.length / 2);
          const bt = bradleyTerry(E.narrow(scores, 0, 0, half), E.narrow(scores, 0, half, half));
          loss = E.add(loss, E.affine(bt, cfg.pairwiseWeight));
        }
        return loss;
      }]);
    },
    save: (dir) => trainer.save(dir, tokenizer),
  });
  // reward.steps 0: the initial model as it is (a logprob score needs no training, only its fit).
  if (cfg.steps === 0 && !latest) {
    await saveCheckpoint(ctx, rel, 0, (dir) => trainer.save(dir, tokenizer));
  }
  // Refitted to the trained LM; with no steps the LM is the one the start's fit scored.
  if (logprob) await ctx.run.writeJson(headFile(rel), head = cfg.steps ? await fit(train) : head!);
  const scores = await scoreAll(scorerOf(model, head, pad), ...seqsOf(heldOut), 128);
  const metrics = classifierMetrics(
    scores,
    heldOut.map((r) => r.label),
    heldOut.map((r) => r.id),
  );
  await ctx.run.writeJson(
    `${rel}/heldout.json`,
    heldOut.map((r, i) => ({
      id: r.id,
      source: r.source,
      answer: r.answer,
      label: r.label,
      style: r.style,
      score: scores[i],
    })),
  );
  ctx.metrics.log(stage, cfg.steps, {
    heldout_accuracy: metrics.accuracy,
    heldout_auc: metrics.auc,
    heldout_ece: metrics.ece,
  });
  await ctx.metrics.flush();
  trainer.destroy();
  model.destroy();
  return {
    train: train.length,
    positives: pos.length,
    heldOut: metrics,
    tokensTrained: tokens,
    wallSeconds: (performance.now() - start) / 1000,
  };
}
