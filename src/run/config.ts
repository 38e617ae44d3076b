/**
 * The distillation config: every stage's settings, with defaults that make
 * `deno task distill` run end to end on a fresh clone (the embedded
 * default). configs/*.json override any key; so does `--set key.path=value`.
 */
import { arr, bool, type Infer, int, num, obj, oneOf, str, variant } from "../util/schema.ts";
import { httpTeacherSchema } from "../teacher/http.ts";

const sampler = (defaults: { temperature: number; maxNewTokens: number; batchSize: number }) => ({
  maxNewTokens: int({
    default: defaults.maxNewTokens,
    min: 1,
    doc: "new tokens per response at most",
  }),
  topP: num({ default: 1, min: 0, max: 1, doc: "nucleus sampling mass" }),
  batchSize: int({ default: defaults.batchSize, min: 1, doc: "sequences per local batch" }),
});

/** A model the pipeline samples from: a local checkpoint, or an OpenAI-compatible endpoint. */
const source = variant("kind", {
  local: obj({
    model: str({ default: "models/arith-teacher", doc: "checkpoint folder (HF layout)" }),
  }),
  http: httpTeacherSchema,
}, { default: "local" });

/**
 * Where the SFT student is sampled: this run's checkpoint, or a serving engine (vLLM, SGLang,
 * our own `deno task serve`) that serves it.
 */
const studentSource = variant("kind", {
  local: obj({
    model: str({ default: "", doc: "checkpoint folder (empty: this run's SFT student)" }),
  }),
  http: httpTeacherSchema,
}, { default: "local" });

export const configSchema = obj({
  name: str({ default: "default", doc: "run name: outputs go to <runsDir>/<name>/" }),
  runsDir: str({ default: "runs", doc: "where runs are written" }),
  seed: int({ default: 0, doc: "seeds everything downstream of the teacher" }),

  task: obj({
    kind: oneOf(["arithmetic", "gsm8k", "mmlu-pro"], { default: "arithmetic" }),
    train: str({ default: "", doc: "training questions (JSONL; gsm8k, mmlu-pro)" }),
    test: str({ default: "", doc: "held-out questions (JSONL), used only by eval" }),
    validation: str({ default: "", doc: "mmlu-pro: validation JSONL with CoT exemplars" }),
    trainLimit: int({ default: 0, min: 0, doc: "use N training questions (0: all)" }),
    trainOffset: int({ default: 0, min: 0, doc: "skip the first N training questions" }),
    testLimit: int({ default: 0, min: 0, doc: "use N held-out questions (0: all)" }),
    testOffset: int({ default: 0, min: 0, doc: "skip the first N held-out questions" }),
    shots: int({ default: 0, min: 0, doc: "mmlu-pro: exemplars per prompt" }),
    arithmetic: obj({
      trainSeed: int({ default: 1001, doc: "generator seed of the training questions" }),
      testSeed: int({ default: 2002, doc: "generator seed of the held-out questions" }),
      rlSeed: int({
        default: 4004,
        doc: "generator seed of PPO's fresh prompts (ppo.freshPrompts)",
      }),
      trainCount: int({ default: 600, min: 1 }),
      testCount: int({ default: 200, min: 1 }),
      minNumber: int({ default: 1 }),
      maxNumber: int({ default: 30 }),
      minSteps: int({ default: 1, min: 1 }),
      maxSteps: int({ default: 2, min: 1 }),
      ops: arr(oneOf(["+", "-", "*"]), { default: ["+", "-"], min: 1 }),
    }, { doc: "the generated task's difficulty" }),
  }),

  teacher: obj({
    source,
    checkpoint: str({
      default: "",
      doc: "the endpoint's model as a local checkpoint folder, when teacher.source is http: the " +
        "stages that need the teacher's weights use it (gkd's token scores, " +
        "baselines.teacherSftSteps); a local source is its own checkpoint",
    }),
    temperatures: arr(num({ min: 0 }), { default: [0.6, 0.8, 1.0], min: 1 }),
    samplesPerTemperature: int({
      default: 2,
      min: 1,
      doc: "responses per question per temperature",
    }),
    questionsPerUnit: int({ default: 64, min: 1, doc: "questions per resumable unit of work" }),
    ...sampler({ temperature: 1, maxNewTokens: 48, batchSize: 256 }),
  }),

  label: obj({
    mode: oneOf(["majority", "judge"], { default: "majority" }),
    minAgreement: num({
      default: 0.5,
      min: 0,
      max: 1,
      doc: "drop questions whose majority is weaker",
    }),
    voters: oneOf(["all", "worked"], {
      default: "all",
      doc: "the teacher responses whose answers vote: all, or only worked ones (a calculation " +
        "before the answer); a teacher's guesses repeat its errors, and a student that learned " +
        "them repeats the same ones, so their votes pay the student's wrong guesses; a question " +
        "with no worked response is dropped",
    }),
    judge: obj({
      source,
      template: str({
        default: "",
        doc: "judge prompt with {question} and {response} (empty: built-in)",
      }),
      scorePattern: str({
        default: "",
        doc: "regex with one group capturing the score (empty: built-in)",
      }),
      maxScore: num({ default: 10, min: 0 }),
      threshold: num({ default: 0.7, min: 0, max: 1, doc: "score/maxScore counted as positive" }),
      maxNewTokens: int({ default: 16, min: 1 }),
    }),
  }),

  student: obj({
    init: str({
      default: "models/arith-student",
      doc: "checkpoint to start from (empty: a new model from the settings below)",
    }),
    hiddenSize: int({ default: 48, min: 2 }),
    numLayers: int({ default: 3, min: 1 }),
    numHeads: int({ default: 4, min: 1 }),
    numKvHeads: int({ default: 0, min: 0, doc: "0: as many as numHeads" }),
    intermediateSize: int({ default: 0, min: 0, doc: "0: 8/3 of hiddenSize, rounded down to 8" }),
    initSeed: int({ default: 17 }),
  }),

  sft: obj({
    steps: int({ default: 200, min: 0 }),
    batchSize: int({ default: 48, min: 1 }),
    lr: num({ default: 1e-3, min: 0 }),
    warmupSteps: int({ default: 20, min: 0 }),
    schedule: oneOf(["cosine", "linear", "constant"], { default: "cosine" }),
    weightDecay: num({ default: 0.01, min: 0 }),
    maxGradNorm: num({ default: 1, min: 0 }),
    maxLen: int({ default: 160, min: 2, doc: "tokens per training sequence at most" }),
    checkpointEvery: int({ default: 80, min: 1 }),
  }),

  studentGenerate: obj({
    source: studentSource,
    samples: int({ default: 4, min: 1, doc: "responses per question (the paper: about 30)" }),
    temperature: num({ default: 1, min: 0 }),
    questionsPerUnit: int({ default: 64, min: 1 }),
    ...sampler({ temperature: 1, maxNewTokens: 48, batchSize: 256 }),
  }),

  reward: obj({
    init: str({
      default: "",
      doc: "checkpoint to start the reward model from (empty: the SFT student); same tokenizer",
    }),
    score: oneOf(["last-token", "logprob", "min-logprob"], {
      default: "last-token",
      doc: "last-token: a scalar head on the last token (TRL); " +
        "logprob: scale · the LM's mean log-prob of the response + bias; " +
        "min-logprob: the same with its least likely response token's log-prob (a response is " +
        "as good as its weakest step)",
    }),
    responses: oneOf(["teacher+student", "teacher"], {
      default: "teacher+student",
      doc: "what it trains on: the labelled teacher and student responses (the method), or the " +
        "teacher's only (the paper's ablation); held-out scores use both",
    }),
    steps: int({ default: 80, min: 0 }),
    batchSize: int({ default: 32, min: 2 }),
    lr: num({ default: 1e-3, min: 0 }),
    warmupSteps: int({ default: 10, min: 0 }),
    weightDecay: num({ default: 0.01, min: 0 }),
    pairwiseWeight: num({ default: 0, min: 0, doc: "weight of the pairwise Bradley-Terry term" }),
    pairs: oneOf(["random", "question"], {
      default: "random",
      doc: "batches pair a positive with a negative at random, or with a negative of the same " +
        "question (the pairwise term then compares answers to one question)",
    }),
    balance: bool({ default: true, doc: "batches of half positives, half negatives" }),
    heldOutFraction: num({
      default: 0.2,
      min: 0,
      max: 0.9,
      doc: "questions held out for accuracy/AUC",
    }),
    fitRows: int({
      default: 4096,
      min: 2,
      doc: "logprob scores: training responses (at most) the scale and bias are fitted on",
    }),
    maxLen: int({ default: 160, min: 2 }),
    checkpointEvery: int({ default: 100, min: 1 }),
  }),

  ppo: obj({
    iterations: int({ default: 30, min: 0 }),
    promptsPerIteration: int({ default: 16, min: 1 }),
    rewards: arr(oneOf(["model", "model-teacher", "pseudo", "gold", "vote"]), {
      default: ["model"],
      min: 1,
      doc:
        "one PPO run per entry: model = the learned reward model (the method); model-teacher = a second reward model trained on the teacher's responses only (the paper's ablation); pseudo = match with the pseudo-label; gold = gold correctness (an upper bound the method cannot use); vote = match with the majority of the student's own samples of the prompt (TTRL/SRT; needs samplesPerPrompt >= 2)",
    }),
    advantage: oneOf(["gae", "group"], {
      default: "group",
      doc: "gae: a separate value model and GAE (TRL PPOTrainer); " +
        "group: each response against the mean of the other responses to its prompt " +
        "(RLOO), no value model; needs samplesPerPrompt >= 2",
    }),
    samplesPerPrompt: int({ default: 8, min: 1, doc: "responses per prompt per iteration" }),
    promptShare: num({
      default: 0.3,
      min: 0,
      max: 0.9,
      doc: "share of the training questions kept out of SFT as PPO's prompts " +
        "(0: PPO samples every training question)",
    }),
    freshPrompts: int({
      default: 0,
      min: 0,
      doc: "generated tasks: PPO's prompts are this many new questions (task.arithmetic.rlSeed), " +
        "none seen by SFT, the teacher or the reward model, drawn in order so that none repeats " +
        "while iterations x promptsPerIteration <= freshPrompts; for the pseudo reward the teacher " +
        "labels them first (0: the training split's promptShare)",
    }),
    keptPromptsOnly: bool({
      default: false,
      doc: "every reward draws only prompts whose teacher majority is kept, as the pseudo reward " +
        "always does, so that arms differ in their reward and not in their prompts",
    }),
    minPassRate: num({
      default: 0,
      min: 0,
      max: 1,
      doc: "PPO samples only prompts whose share of SFT-student responses matching the " +
        "pseudo-label (student-generate) is at least this (0: every prompt)",
    }),
    maxPassRate: num({
      default: 1,
      min: 0,
      max: 1,
      doc: "... and at most this (1: every prompt)",
    }),
    rewardModelOutput: oneOf(["logit", "probability"], {
      default: "probability",
      doc: "the learned reward model's score as reward: its logit (TRL) or sigmoid(logit)",
    }),
    lr: num({ default: 1e-4, min: 0 }),
    valueLr: num({ default: 5e-4, min: 0, doc: "the value model's (advantage gae)" }),
    valueWarmupSteps: int({ default: 0, min: 0, doc: "value-model steps before the policy moves" }),
    klCoef: num({ default: 0.05, min: 0 }),
    klTarget: num({
      default: 0,
      min: 0,
      doc: "adaptive KL target in nats per response (0: fixed coefficient)",
    }),
    klHorizon: num({ default: 10000, min: 1 }),
    clip: num({ default: 0.2, min: 0 }),
    valueClip: num({ default: 0.2, min: 0 }),
    gamma: num({ default: 1, min: 0, max: 1 }),
    lam: num({ default: 0.95, min: 0, max: 1 }),
    epochs: int({ default: 2, min: 1 }),
    miniBatch: int({ default: 64, min: 1 }),
    whitenAdvantages: bool({ default: true }),
    noAnswerPenalty: num({
      default: 1,
      min: 0,
      doc: "subtracted when a response has no final answer",
    }),
    noEosPenalty: num({ default: 1, min: 0, doc: "subtracted when a response ends without EOS" }),
    temperature: num({ default: 0.7, min: 0 }),
    maxNewTokens: int({ default: 48, min: 1 }),
    maxGradNorm: num({ default: 1, min: 0 }),
    checkpointEvery: int({ default: 4, min: 1 }),
    evalEvery: int({
      default: 0,
      min: 0,
      doc: "every this many iterations (and at the last) the policy answers the test questions " +
        "greedily and metrics.jsonl gets eval_<score> (0: off); choose iterations from it on a " +
        "validation split only",
    }),
  }),

  baselines: obj({
    teacherSftSteps: int({
      default: 0,
      min: 0,
      doc: "fine-tune the teacher on the student's SFT data for this many steps (0: off)",
    }),
    teacherSftLr: num({ default: 5e-4, min: 0, doc: "its learning rate (the rest as sft.*)" }),
    equalComputeSft: bool({
      default: false,
      doc: "train the SFT student further on teacher- and student-positive responses for as " +
        "many tokens as PPO (the learned reward model's run) trained on",
    }),
  }, { doc: "supervised baselines beside PPO" }),

  gkd: obj({
    steps: int({ default: 0, min: 0, doc: "on-policy distillation steps (0: skip the stage)" }),
    batchSize: int({ default: 16, min: 1 }),
    lmbda: num({
      default: 0.5,
      min: 0,
      max: 1,
      doc: "share of steps whose responses the student samples (TRL's lmbda)",
    }),
    beta: num({
      default: 0.5,
      min: 0,
      max: 1,
      doc: "generalised JSD: 0 forward KL(teacher||student), 1 reverse KL (TRL's beta)",
    }),
    temperature: num({
      default: 0.9,
      min: 0.01,
      doc: "sampling and softmax temperature (TRL's temperature)",
    }),
    lr: num({ default: 1e-4, min: 0 }),
    maxNewTokens: int({ default: 48, min: 1 }),
    maxLen: int({ default: 160, min: 2 }),
    checkpointEvery: int({ default: 50, min: 1 }),
  }, {
    doc:
      "on-policy distillation from the SFT student (a baseline; needs the teacher's weights: a local teacher or teacher.checkpoint)",
  }),

  eval: obj({
    sftSource: studentSource,
    questions: int({ default: 0, min: 0, doc: "held-out questions to score (0: all)" }),
    majK: int({ default: 4, min: 1, doc: "teacher samples per question for maj@K" }),
    majTemperature: num({ default: 0.8, min: 0 }),
    passK: int({ default: 0, min: 0, doc: "student samples per question for pass@k (0: skip)" }),
    bestOfN: arr(int({ min: 2 }), {
      default: [],
      doc: "best-of-n with the reward model on the SFT student, one row per n (e.g. [4,8,16])",
    }),
    bestOfTemperature: num({ default: 1, min: 0, doc: "the SFT student's for best-of-n" }),
    ...sampler({ temperature: 0, maxNewTokens: 48, batchSize: 256 }),
  }),

  effect: obj({
    seeds: arr(int(), {
      default: [0, 1, 2],
      min: 1,
      doc: "deno task effect: one pipeline per seed",
    }),
  }),

  server: obj({
    enabled: bool({ default: true, doc: "serve progress while the run goes" }),
    host: str({ default: "127.0.0.1" }),
    port: int({
      default: 8787,
      min: 0,
      max: 65535,
      doc: "0 or a taken port: a free one is chosen",
    }),
  }),
});

export type Config = Infer<typeof configSchema>;
