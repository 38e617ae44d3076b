/**
 * OpenAI-compatible endpoints: GET /v1/models, POST /v1/chat/completions and
 * POST /v1/completions, plain or streamed (`stream: true`: SSE chunks in
 * OpenAI's format, ending `data: [DONE]`). They honour temperature, top_p,
 * max_tokens, stop, seed and n, and count usage. Errors use OpenAI's shape.
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import { z } from "zod";
import { generate, type Generation } from "../generate/generate.ts";
import type { Pretrained } from "../model/checkpoint.ts";
import type { ChatMessage } from "../model/tokenizer.ts";
import type { ModelEntry, ModelHost } from "./models.ts";
import { readJsonBody } from "./body.ts";

/** An error answered as `{error: {message, type, param, code}}`. */
export class ApiError extends Error {
  constructor(
    readonly status: 400 | 404 | 413 | 500 | 503,
    message: string,
    readonly type = "invalid_request_error",
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }
}

export function openAiError(c: Context, err: ApiError): Response {
  return c.json(
    { error: { message: err.message, type: err.type, param: err.param, code: err.code } },
    err.status,
  );
}

/** The most sequences one request may ask for (prompts × n). */
const MAX_ROWS = 64;
const MAX_N = 16;

interface Sampling {
  maxTokens: number | null;
  temperature: number;
  topP: number;
  topK: number;
  seed: number;
  stop: string[];
  n: number;
  stream: boolean;
  includeUsage: boolean;
}

const optInt = (min: number, max: number) => z.number().int().min(min).max(max).nullish();
const optNum = (min: number, max: number) => z.number().min(min).max(max).nullish();
const tokenIds = z.array(z.number().int().min(0)).min(1);

/** The sampling fields both endpoints take, as OpenAI names them; other fields are ignored. */
const samplingBody = z.looseObject({
  model: z.string().nullish(),
  max_tokens: optInt(1, 1 << 20),
  max_completion_tokens: optInt(1, 1 << 20),
  temperature: optNum(0, 2),
  top_p: optNum(0, 1),
  top_k: optInt(0, 1 << 20),
  seed: optInt(-(2 ** 53), 2 ** 53),
  n: optInt(1, MAX_N),
  stop: z.union([z.string(), z.array(z.string()).max(4)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.looseObject({ include_usage: z.boolean().nullish() }).nullish(),
});

const chatBody = samplingBody.extend({
  messages: z.array(z.looseObject({
    role: z.string(),
    content: z.union([
      z.string(),
      z.array(z.looseObject({ type: z.literal("text"), text: z.string() })),
    ]).nullish(),
  })).min(1),
});

/** Completion prompts: a string, strings, token ids, or lists of token ids. */
const completionBody = samplingBody.extend({
  prompt: z.union([z.string(), tokenIds, z.array(z.union([z.string(), tokenIds])).min(1)]),
});

/** Parses a request body; the first fault is a 400 naming the parameter. */
function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const param = issue.path.length ? String(issue.path[0]) : null;
  const where = issue.path.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`))
    .join("").replace(/^\./, "");
  const what = issue.code === "too_small" && issue.origin === "number"
    ? `must be >= ${issue.minimum}`
    : issue.code === "too_big" && issue.origin === "number"
    ? `must be <= ${issue.maximum}`
    : issue.message.replace(/^Invalid input: /, "").toLowerCase();
  throw new ApiError(400, `${where || "body"}: ${what}`, undefined, param);
}

function samplingOf(b: z.output<typeof samplingBody>): Sampling {
  const so = b.stream_options;
  return {
    maxTokens: b.max_completion_tokens ?? b.max_tokens ?? null,
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: b.top_k ?? 0,
    seed: b.seed == null ? Math.floor(Math.random() * 2 ** 32) : (b.seed >>> 0),
    stop: (typeof b.stop === "string" ? [b.stop] : b.stop ?? []).filter((x) => x.length > 0),
    n: b.n ?? 1,
    stream: b.stream === true,
    includeUsage: so?.include_usage === true,
  };
}

function messages(b: z.output<typeof chatBody>): ChatMessage[] {
  return b.messages.map((m) => ({
    role: m.role,
    content: typeof m.content === "string"
      ? m.content
      : (m.content ?? []).map((part) => part.text).join(""),
  }));
}

function prompts(b: z.output<typeof completionBody>): (string | number[])[] {
  const p = b.prompt;
  if (typeof p === "string") return [p];
  return p.every((x) => typeof x === "number") ? [p as number[]] : p as (string | number[])[];
}

async function resolveModel(host: ModelHost, id: string | undefined): Promise<ModelEntry> {
  const entry = await host.resolve(id);
  if (!entry) {
    const known = (await host.list()).map((m) => m.id);
    throw new ApiError(
      404,
      `The model \`${id ?? host.defaultId}\` does not exist or is not available yet` +
        (known.length ? ` (available: ${known.join(", ")})` : ""),
      "invalid_request_error",
      "model",
      "model_not_found",
    );
  }
  return entry;
}

function randomId(prefix: string): string {
  return prefix + crypto.randomUUID().replaceAll("-", "").slice(0, 24);
}

const FINISH: Record<Generation["finishReason"], string> = {
  eos: "stop",
  stop: "stop",
  length: "length",
};

/** Thrown from onTokens to end a generate whose client went away. */
class Disconnected extends Error {}

/**
 * The visible text of a row so far: up to the first EOS, cut at a stop
 * string, holding back what a stop string or an unfinished character might
 * still change.
 */
function safeText(
  m: Pretrained,
  ids: number[],
  eos: Set<number>,
  stops: string[],
): string {
  const e = ids.findIndex((t) => eos.has(t));
  let text = m.tokenizer.decode(e >= 0 ? ids.slice(0, e) : ids, { skipSpecialTokens: true });
  let cut = -1;
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  if (cut >= 0) return text.slice(0, cut);
  if (e < 0) {
    const hold = stops.reduce((a, s) => Math.max(a, s.length - 1), 0);
    text = text.slice(0, Math.max(0, text.length - hold));
  }
  return text.replace(/\uFFFD+$/, "");
}

interface Job {
  entry: ModelEntry;
  /** Each prompt's token ids (filled in inside the queue, with the tokenizer). */
  encode: (m: Pretrained) => number[][];
  sampling: Sampling;
  defaultMaxTokens: number;
}

interface JobResult {
  /** Per choice (prompt-major, then sample). */
  choices: Generation[];
  promptTokens: number;
}

async function runJob(
  host: ModelHost,
  job: Job,
  onDelta?: (choice: number, text: string) => void,
  isGone?: () => boolean,
): Promise<JobResult> {
  return await host.use(job.entry, async (m) => {
    if (isGone?.()) throw new Disconnected();
    const prompts = job.encode(m);
    if (prompts.some((p) => p.length === 0)) {
      throw new ApiError(400, "a prompt encodes to no tokens", undefined, "prompt");
    }
    const vocab = m.model.config.vocabSize;
    if (prompts.some((p) => p.some((t) => t >= vocab))) {
      throw new ApiError(400, `token ids must be below ${vocab}`, undefined, "prompt");
    }
    const s = job.sampling;
    const rows = prompts.flatMap((p) => Array.from({ length: s.n }, () => p));
    if (rows.length > MAX_ROWS) {
      throw new ApiError(400, `at most ${MAX_ROWS} sequences per request (prompts × n)`);
    }
    const limit = m.model.config.maxPositionEmbeddings;
    const padded = Math.ceil(Math.max(...prompts.map((p) => p.length)) / 8) * 8;
    const room = limit - padded;
    if (room < 1) {
      throw new ApiError(
        400,
        `the prompt has ${Math.max(...prompts.map((p) => p.length))} tokens; ` +
          `the model holds ${limit}`,
        "invalid_request_error",
        "messages",
        "context_length_exceeded",
      );
    }
    const maxNew = Math.min(s.maxTokens ?? job.defaultMaxTokens, room);
    const eosIds = [...new Set([...m.model.config.eosTokenIds, ...m.tokenizer.eosIds])];
    const eos = new Set(eosIds);
    const sent = rows.map(() => "");
    const emit = (b: number, text: string) => {
      if (text.length > sent[b].length && text.startsWith(sent[b])) {
        onDelta!(b, text.slice(sent[b].length));
        sent[b] = text;
      }
    };
    const out = await generate(m.model, m.tokenizer, rows, {
      maxNewTokens: maxNew,
      temperature: s.temperature,
      topP: s.topP,
      topK: s.topK || undefined,
      seed: s.seed,
      stopStrings: s.stop,
      eosTokenIds: eosIds,
      padTokenId: m.tokenizer.padId ?? 0,
      checkEvery: onDelta ? 4 : 16,
      onTokens: onDelta
        ? (ids) => {
          if (isGone?.()) throw new Disconnected();
          ids.forEach((row, b) => emit(b, safeText(m, row, eos, s.stop)));
        }
        : undefined,
    });
    if (onDelta) out.forEach((g, b) => emit(b, g.text));
    return { choices: out, promptTokens: prompts.reduce((a, p) => a + p.length, 0) };
  });
}

function usage(r: JobResult) {
  const completion = r.choices.reduce((a, g) => a + g.ids.length, 0);
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: completion,
    total_tokens: r.promptTokens + completion,
  };
}

/**
 * Streams `job` as OpenAI chunks over Hono's SSE helper; `shape` makes each chunk's choice. The
 * stream ends `data: [DONE]`; a failure mid-stream is sent as an `{"error": ...}` chunk first.
 */
function streamJob(
  c: Context,
  host: ModelHost,
  job: Job,
  choicesCount: number,
  shape: {
    id: string;
    object: string;
    model: string;
    start?: (choice: number) => Record<string, unknown>;
    delta: (choice: number, text: string) => Record<string, unknown>;
    finish: (choice: number, reason: string) => Record<string, unknown>;
  },
): Response {
  const created = Math.floor(Date.now() / 1000);
  const base = () => ({ id: shape.id, object: shape.object, created, model: shape.model });
  const withUsage = (o: Record<string, unknown>) =>
    job.sampling.includeUsage ? { ...o, usage: null } : o;
  const chunk = (choice: Record<string, unknown>) =>
    withUsage({ ...base(), system_fingerprint: null, choices: [choice] });
  return streamSSE(c, async (stream) => {
    // Set when the client goes away: generation stops at the next token.
    let gone = false;
    stream.onAbort(() => {
      gone = true;
    });
    // Deltas arrive synchronously from the sampler; writes keep their order in one chain.
    let written = Promise.resolve();
    const send = (data: unknown) => {
      if (gone) return;
      written = written.then(() => stream.writeSSE({ data: JSON.stringify(data) }));
    };
    if (shape.start) { for (let i = 0; i < choicesCount; i++) send(chunk(shape.start(i))); }
    try {
      const r = await runJob(host, job, (i, text) => send(chunk(shape.delta(i, text))), () => gone);
      r.choices.forEach((g, i) => send(chunk(shape.finish(i, FINISH[g.finishReason]))));
      if (job.sampling.includeUsage) {
        send({ ...base(), system_fingerprint: null, choices: [], usage: usage(r) });
      }
    } catch (err) {
      if (err instanceof Disconnected) return;
      const e = err instanceof ApiError ? err : new ApiError(500, errText(err), "server_error");
      send({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
    }
    if (!gone) written = written.then(() => stream.writeSSE({ data: "[DONE]" }));
    await written;
  });
}

function errText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0];
}

/** The /v1 routes. */
export function openAiRoutes(host: ModelHost, opts: { maxBodyBytes: number }): Hono {
  const app = new Hono();

  app.onError((err, c) => {
    if (err instanceof ApiError) return openAiError(c, err);
    return openAiError(c, new ApiError(500, errText(err), "server_error"));
  });

  const body = async (c: Context): Promise<unknown> => {
    const v = await readJsonBody(c.req.raw, opts.maxBodyBytes);
    if (!v.ok) throw new ApiError(v.status, v.message);
    if (typeof v.value !== "object" || v.value === null || Array.isArray(v.value)) {
      throw new ApiError(400, "the request body must be a JSON object");
    }
    return v.value;
  };

  app.get("/models", async (c) => {
    const models = await host.list();
    return c.json({
      object: "list",
      data: models.map((m) => ({ id: m.id, object: "model", created: 0, owned_by: "distill" })),
    });
  });

  app.get("/models/:id", async (c) => {
    const m = await resolveModel(host, c.req.param("id"));
    return c.json({ id: m.id, object: "model", created: 0, owned_by: "distill" });
  });

  app.post("/chat/completions", async (c) => {
    const b = parseBody(chatBody, await body(c));
    const chat = messages(b);
    const sampling = samplingOf(b);
    const entry = await resolveModel(host, b.model ?? undefined);
    const job: Job = {
      entry,
      sampling,
      defaultMaxTokens: 512,
      encode: (m) => [m.tokenizer.encodeChat(chat, { addGenerationPrompt: true })],
    };
    const id = randomId("chatcmpl-");
    if (sampling.stream) {
      return streamJob(c, host, job, sampling.n, {
        id,
        object: "chat.completion.chunk",
        model: entry.id,
        start: (i) => ({
          index: i,
          delta: { role: "assistant", content: "" },
          logprobs: null,
          finish_reason: null,
        }),
        delta: (i, text) => ({
          index: i,
          delta: { content: text },
          logprobs: null,
          finish_reason: null,
        }),
        finish: (i, reason) => ({ index: i, delta: {}, logprobs: null, finish_reason: reason }),
      });
    }
    const r = await runJob(host, job);
    return c.json({
      id,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model: entry.id,
      system_fingerprint: null,
      choices: r.choices.map((g, i) => ({
        index: i,
        message: { role: "assistant", content: g.text, refusal: null },
        logprobs: null,
        finish_reason: FINISH[g.finishReason],
      })),
      usage: usage(r),
    });
  });

  app.post("/completions", async (c) => {
    const b = parseBody(completionBody.omit({ max_completion_tokens: true }), await body(c));
    const texts = prompts(b);
    const sampling = samplingOf(b);
    const entry = await resolveModel(host, b.model ?? undefined);
    const job: Job = {
      entry,
      sampling,
      defaultMaxTokens: 16,
      encode: (m) => texts.map((p) => typeof p === "string" ? m.tokenizer.encode(p) : p),
    };
    const id = randomId("cmpl-");
    const choicesCount = texts.length * sampling.n;
    if (sampling.stream) {
      return streamJob(c, host, job, choicesCount, {
        id,
        object: "text_completion",
        model: entry.id,
        delta: (i, text) => ({ text, index: i, logprobs: null, finish_reason: null }),
        finish: (i, reason) => ({ text: "", index: i, logprobs: null, finish_reason: reason }),
      });
    }
    const r = await runJob(host, job);
    return c.json({
      id,
      object: "text_completion",
      created: Math.floor(Date.now() / 1000),
      model: entry.id,
      system_fingerprint: null,
      choices: r.choices.map((g, i) => ({
        text: g.text,
        index: i,
        logprobs: null,
        finish_reason: FINISH[g.finishReason],
      })),
      usage: usage(r),
    });
  });

  app.all("*", (c) =>
    openAiError(
      c,
      new ApiError(404, `unknown endpoint ${c.req.method} ${c.req.path}`, "invalid_request_error"),
    ));

  return app;
}
