/**
 * An OpenAI-compatible HTTP client (vLLM, llama.cpp server, SGLang, OpenAI...)
 * used as the teacher, the judge or a served student: `/chat/completions` or
 * `/completions`. The official `openai` package does the requests, retries,
 * backoff, Retry-After and timeouts; this file adds a concurrency limit, the
 * top-up when a server returns fewer than `n` choices, and one-line errors.
 */
import OpenAI from "openai";
import { EngineError } from "../errors.ts";
import { z } from "zod";
import {
  ConfigError,
  type Infer,
  int,
  obj,
  oneOf,
  optional,
  str,
  validate,
} from "../util/schema.ts";

/** The settings of an HTTP teacher, judge or served student, as the pipeline's config holds them. */
export const httpTeacherSchema = obj({
  baseUrl: z.string().regex(/^https?:\/\//, "must start with http:// or https://").meta({
    doc: "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1",
  }),
  model: str({ doc: "model name sent in each request" }),
  api: oneOf(["chat", "completions"], { default: "chat", doc: "which endpoint to call" }),
  apiKeyEnv: optional(str({ doc: "env var holding the API key (sent as a Bearer token)" })),
  concurrency: int({ default: 8, min: 1, doc: "requests in flight at once (over all calls)" }),
  maxRetries: int({
    default: 3,
    min: 0,
    doc: "retries after the first try, on connection faults, timeouts, 408, 409, 429 and 5xx " +
      "(the openai package's backoff, 0.5 s doubling to 8 s, or the server's Retry-After)",
  }),
  timeoutMs: int({ default: 300_000, min: 1, doc: "time limit per try" }),
});

export type HttpTeacherConfig = Infer<typeof httpTeacherSchema>;

export interface CompletionRequest {
  /** For chat: the user message. */
  prompt: string;
  /** For chat: the system message. Not accepted with api "completions". */
  system?: string;
  n: number;
  temperature: number;
  topP?: number;
  maxTokens: number;
  stop?: string[];
  /**
   * Sent as `seed`. When the server returns fewer than `n` choices and more
   * requests are needed, the k-th extra request sends `seed + k`, so the extra
   * samples differ from the first ones but stay reproducible.
   */
  seed?: number;
}

export interface Completion {
  text: string;
  /** "stop", "length", ... ("unknown" when the server gives none). */
  finishReason: string;
}

/** The server failed or refused; the message is one line. */
export class TeacherError extends EngineError {}

const RETRY_STATUS = (s: number) => s === 408 || s === 409 || s === 429 || s >= 500;

export class HttpTeacher {
  readonly cfg: Readonly<HttpTeacherConfig>;
  readonly #where: string;
  readonly #apiKey: string | undefined;
  readonly #client: OpenAI;
  #inFlight = 0;
  #waiting: (() => void)[] = [];

  /** `role` names the model in errors: teacher, student, judge. */
  constructor(settings: HttpTeacherConfig, readonly role = "teacher") {
    const baseURL = String(settings.baseUrl).replace(/\/+$/, "");
    const where = this.#where = `${role} ${baseURL}`;
    let cfg: HttpTeacherConfig;
    try {
      cfg = validate(httpTeacherSchema, settings, where);
    } catch (err) {
      throw err instanceof ConfigError ? new TeacherError(err.message) : err;
    }
    this.cfg = cfg;
    if (cfg.apiKeyEnv) {
      const key = Deno.env.get(cfg.apiKeyEnv);
      if (!key) {
        throw new TeacherError(
          `${where}: environment variable ${cfg.apiKeyEnv} (apiKeyEnv) is not set`,
        );
      }
      this.#apiKey = key;
    }
    this.#client = new OpenAI({
      baseURL,
      // Local servers need no key; the package insists on one, so without a key none is sent.
      apiKey: this.#apiKey ?? "none",
      defaultHeaders: this.#apiKey ? {} : { Authorization: null },
      maxRetries: cfg.maxRetries,
      timeout: cfg.timeoutMs,
      fetch: withOpenAiErrorBodies,
    });
  }

  /** `req.n` completions; asks again when the server returns fewer choices than asked. */
  async complete(req: CompletionRequest): Promise<Completion[]> {
    if (!(Number.isInteger(req.n) && req.n >= 1)) {
      throw new TeacherError(`${this.#where}: n must be an integer >= 1, got ${req.n}`);
    }
    if (this.cfg.api === "completions" && req.system !== undefined) {
      throw new TeacherError(
        `${this.#where}: a system prompt needs api "chat" (api is "completions")`,
      );
    }
    const out: Completion[] = [];
    for (let k = 0; out.length < req.n; k++) {
      const seed = req.seed === undefined ? undefined : req.seed + k;
      const got = await this.#request(req, req.n - out.length, seed);
      if (got.length === 0) {
        throw new TeacherError(`${this.#where}: the server returned no choices`);
      }
      out.push(...got.slice(0, req.n - out.length));
    }
    return out;
  }

  /**
   * Completes every request, at most `concurrency` HTTP requests in flight.
   * `onDone(i, out)` runs as each finishes. On the first failure no new request
   * starts; the ones in flight finish, then the failure is thrown.
   */
  async completeMany(
    reqs: CompletionRequest[],
    onDone?: (i: number, out: Completion[]) => void,
  ): Promise<Completion[][]> {
    const results: Completion[][] = new Array(reqs.length);
    let next = 0;
    let failure: { err: unknown } | null = null;
    const worker = async () => {
      while (failure === null && next < reqs.length) {
        const i = next++;
        try {
          results[i] = await this.complete(reqs[i]);
          onDone?.(i, results[i]);
        } catch (err) {
          failure ??= { err };
        }
      }
    };
    const workers = Math.min(this.cfg.concurrency, reqs.length);
    await Promise.all(Array.from({ length: workers }, worker));
    if (failure !== null) throw (failure as { err: unknown }).err;
    return results;
  }

  /** One logical request (the package retries it); returns the choices of the response. */
  async #request(req: CompletionRequest, n: number, seed: number | undefined) {
    const common = {
      model: this.cfg.model,
      n,
      temperature: req.temperature,
      ...(req.topP !== undefined ? { top_p: req.topP } : {}),
      max_tokens: req.maxTokens,
      ...(req.stop?.length ? { stop: req.stop } : {}),
      ...(seed !== undefined ? { seed } : {}),
    };
    await this.#acquire();
    try {
      if (this.cfg.api === "chat") {
        const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [];
        if (req.system !== undefined) messages.push({ role: "system", content: req.system });
        messages.push({ role: "user", content: req.prompt });
        const r = await this.#client.chat.completions.create({ ...common, messages });
        return this.#parse(r, true);
      }
      const r = await this.#client.completions.create({ ...common, prompt: req.prompt });
      return this.#parse(r, false);
    } catch (err) {
      throw err instanceof TeacherError ? err : new TeacherError(this.#redact(this.#explain(err)));
    } finally {
      this.#release();
    }
  }

  /** One line for what the package threw: the fault, and how many tries it took. */
  #explain(err: unknown): string {
    const tries = this.cfg.maxRetries + 1;
    const after = `${tries} ${tries === 1 ? "try" : "tries"}`;
    if (err instanceof OpenAI.APIConnectionTimeoutError) {
      return `${this.#where}: no response after ${after} (timed out after ${this.cfg.timeoutMs} ms)`;
    }
    if (err instanceof OpenAI.APIConnectionError) {
      return `${this.#where}: unreachable after ${after} (${networkReason(err.cause ?? err)})`;
    }
    if (err instanceof OpenAI.APIError && typeof err.status === "number") {
      const s = err.status;
      const status = `HTTP ${s} ${STATUS_TEXT[s] ?? ""}`.trimEnd();
      const e = err.error as { message?: unknown } | undefined;
      const msg = typeof e?.message === "string" ? e.message : "";
      const what = msg ? `${status}: ${msg}` : status;
      return RETRY_STATUS(s)
        ? `${this.#where}: ${what} (after ${after})`
        : `${this.#where}: ${what}`;
    }
    return `${this.#where}: ${squashSpace(err instanceof Error ? err.message : String(err))}`;
  }

  #parse(json: unknown, chat: boolean): Completion[] {
    const bad = (why: string) => new TeacherError(`${this.#where}: unexpected response (${why})`);
    if (typeof json !== "object" || json === null) throw bad("not an object");
    const choices = (json as { choices?: unknown }).choices;
    if (!Array.isArray(choices)) throw bad("no choices array");
    const indexed = choices.map((c, pos) => {
      if (typeof c !== "object" || c === null) throw bad(`choice ${pos} is not an object`);
      const o = c as Record<string, unknown>;
      let text: unknown;
      if (chat) {
        const m = o.message as Record<string, unknown> | undefined;
        if (typeof m !== "object" || m === null) throw bad(`choice ${pos} has no message`);
        text = m.content ?? "";
      } else {
        text = o.text;
      }
      if (typeof text !== "string") throw bad(`choice ${pos} has no text`);
      const finish = typeof o.finish_reason === "string" ? o.finish_reason : "unknown";
      const index = typeof o.index === "number" ? o.index : pos;
      return { index, pos, c: { text, finishReason: finish } };
    });
    indexed.sort((a, b) => a.index - b.index || a.pos - b.pos);
    return indexed.map((x) => x.c);
  }

  #redact(msg: string): string {
    return this.#apiKey ? msg.split(this.#apiKey).join("***") : msg;
  }

  async #acquire(): Promise<void> {
    while (this.#inFlight >= this.cfg.concurrency) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
    this.#inFlight++;
  }

  #release(): void {
    this.#inFlight--;
    this.#waiting.shift()?.();
  }
}

/**
 * fetch, with every error body rewritten as OpenAI's `{"error": {"message"}}`: vLLM, FastAPI and
 * proxies answer `{"message"}`, `{"detail"}`, text or HTML, which the package would otherwise drop.
 */
async function withOpenAiErrorBodies(
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response> {
  const res = await fetch(input, init);
  if (res.ok) return res;
  const message = serverMessage(await res.text());
  const headers = new Headers(res.headers);
  headers.delete("content-length");
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify({ error: { message } }), {
    status: res.status,
    statusText: res.statusText,
    headers,
  });
}

/** A short reason for a fetch failure: "Connection refused", "dns error: ...". */
function networkReason(err: unknown): string {
  const texts: string[] = [];
  for (let e: unknown = err, d = 0; e !== undefined && e !== null && d < 5; d++) {
    texts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  const all = texts.join(" | ");
  const known = all.match(
    /Connection refused|Connection reset by peer|connection closed before message completed|No route to host|Network is unreachable|Host is unreachable|Connection timed out|failed to lookup address information[^|(]*|dns error[^|(]*|certificate[^|(]*|invalid peer certificate[^|(]*/i,
  );
  if (known) return squashSpace(known[0]).replace(/:\s*$/, "").trim();
  // Fall back on the innermost part: "...: client error (Connect): tcp connect error: X (os error N)".
  const last = all.split(/: /).pop() ?? all;
  return clip(squashSpace(last.replace(/\s*\(os error \d+\)/, "")), 200);
}

/** The error text of an OpenAI-style (or vLLM/FastAPI-style) error body, on one line. */
function serverMessage(text: string): string {
  const t = text.trim();
  if (t === "") return "";
  try {
    const j = JSON.parse(t);
    const pick = (v: unknown): string | undefined => {
      if (typeof v === "string") return v;
      if (typeof v === "object" && v !== null) {
        const o = v as Record<string, unknown>;
        return pick(o.message) ?? pick(o.error) ?? pick(o.detail);
      }
      return undefined;
    };
    const m = pick(j) ?? (Array.isArray(j?.detail) ? JSON.stringify(j.detail) : undefined);
    if (m !== undefined) return clip(squashSpace(m), 300);
  } catch {
    // not JSON: use the text
  }
  return clip(squashSpace(t.replace(/<[^>]*>/g, " ")), 300);
}

/** Every whitespace run (line breaks, tabs, repeated spaces) as one space, trimmed. */
function squashSpace(s: string): string {
  return s.replace(/\s+/g, " ").trim();
}

function clip(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 3)}...` : s;
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  408: "Request Timeout",
  409: "Conflict",
  413: "Payload Too Large",
  422: "Unprocessable Entity",
  429: "Too Many Requests",
  500: "Internal Server Error",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};
