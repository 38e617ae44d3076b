/**
 * An OpenAI-compatible HTTP client (vLLM, llama.cpp server, SGLang, OpenAI...)
 * used as the teacher or the judge: `/chat/completions` or `/completions`,
 * with bounded concurrency, timeouts, and retries with exponential backoff.
 */
import { EngineError } from "../errors.ts";
import { int, obj, oneOf, optional, str } from "../util/schema.ts";

export interface HttpTeacherConfig {
  /** e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  model: string;
  api: "chat" | "completions";
  /** Name of the env var holding the key (e.g. OPENAI_API_KEY), sent as `Authorization: Bearer`. */
  apiKeyEnv?: string;
  /** Most requests in flight at once, across all calls on this client. */
  concurrency: number;
  /** Retries after the first try (3 → 4 tries). */
  maxRetries: number;
  /** Per-try limit, covering the whole response. */
  timeoutMs: number;
  /** Initial backoff, doubled each retry, with jitter, capped at 30 s; Retry-After wins. */
  backoffMs: number;
}

/** The config schema of an HTTP teacher, for the pipeline's config. */
export const httpTeacherSchema = obj({
  baseUrl: str({ doc: "OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1" }),
  model: str({ doc: "model name sent in each request" }),
  api: oneOf(["chat", "completions"], { default: "chat", doc: "which endpoint to call" }),
  apiKeyEnv: optional(str({ doc: "env var holding the API key (sent as a Bearer token)" })),
  concurrency: int({ default: 8, min: 1, doc: "requests in flight at once" }),
  maxRetries: int({ default: 3, min: 0, doc: "retries after the first try" }),
  timeoutMs: int({ default: 300_000, min: 1, doc: "time limit per try" }),
  backoffMs: int({ default: 1000, min: 0, doc: "first retry delay, doubled each retry" }),
});

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

/** The teacher server failed or refused; the message is one line. */
export class TeacherError extends EngineError {}

const MAX_BACKOFF_MS = 30_000;
const MAX_RETRY_AFTER_MS = 120_000;

/** One failed try: whether to retry, what to say, and the server's Retry-After. */
interface Failure {
  retry: boolean;
  /** `HTTP 500 Internal Server Error: ...`, the network fault, or the timeout. */
  what: string;
  kind: "http" | "network" | "timeout";
  retryAfterMs?: number;
}

export class HttpTeacher {
  readonly cfg: Readonly<HttpTeacherConfig>;
  readonly #baseUrl: string;
  readonly #apiKey: string | undefined;
  #inFlight = 0;
  #waiting: (() => void)[] = [];

  /** `role` names the model in errors: teacher, student, judge. */
  constructor(cfg: HttpTeacherConfig, readonly role = "teacher") {
    this.#baseUrl = cfg.baseUrl.replace(/\/+$/, "");
    this.cfg = { ...cfg };
    const where = `${role} ${this.#baseUrl}`;
    if (!/^https?:\/\//.test(this.#baseUrl)) {
      throw new TeacherError(`${where}: baseUrl must start with http:// or https://`);
    }
    if (!(Number.isInteger(cfg.concurrency) && cfg.concurrency >= 1)) {
      throw new TeacherError(`${where}: concurrency must be an integer >= 1`);
    }
    if (!(Number.isInteger(cfg.maxRetries) && cfg.maxRetries >= 0)) {
      throw new TeacherError(`${where}: maxRetries must be an integer >= 0`);
    }
    if (!(cfg.timeoutMs > 0)) throw new TeacherError(`${where}: timeoutMs must be > 0`);
    if (!(cfg.backoffMs >= 0)) throw new TeacherError(`${where}: backoffMs must be >= 0`);
    if (cfg.apiKeyEnv) {
      const key = Deno.env.get(cfg.apiKeyEnv);
      if (!key) {
        throw new TeacherError(
          `${where}: environment variable ${cfg.apiKeyEnv} (apiKeyEnv) is not set`,
        );
      }
      this.#apiKey = key;
    }
  }

  /** `req.n` completions; asks again when the server returns fewer choices than asked. */
  async complete(req: CompletionRequest): Promise<Completion[]> {
    if (!(Number.isInteger(req.n) && req.n >= 1)) {
      throw new TeacherError(
        `${this.role} ${this.#baseUrl}: n must be an integer >= 1, got ${req.n}`,
      );
    }
    if (this.cfg.api === "completions" && req.system !== undefined) {
      throw new TeacherError(
        `${this.role} ${this.#baseUrl}: a system prompt needs api "chat" (api is "completions")`,
      );
    }
    const out: Completion[] = [];
    for (let k = 0; out.length < req.n; k++) {
      const seed = req.seed === undefined ? undefined : req.seed + k;
      const got = await this.#request(req, req.n - out.length, seed);
      if (got.length === 0) {
        throw new TeacherError(`${this.role} ${this.#baseUrl}: the server returned no choices`);
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

  /** One logical request, retried; returns the choices of the response. */
  async #request(req: CompletionRequest, n: number, seed: number | undefined) {
    const chat = this.cfg.api === "chat";
    const url = `${this.#baseUrl}/${chat ? "chat/completions" : "completions"}`;
    const body: Record<string, unknown> = { model: this.cfg.model };
    if (chat) {
      const messages = [];
      if (req.system !== undefined) messages.push({ role: "system", content: req.system });
      messages.push({ role: "user", content: req.prompt });
      body.messages = messages;
    } else {
      body.prompt = req.prompt;
    }
    body.n = n;
    body.temperature = req.temperature;
    if (req.topP !== undefined) body.top_p = req.topP;
    body.max_tokens = req.maxTokens;
    if (req.stop !== undefined && req.stop.length > 0) body.stop = req.stop;
    if (seed !== undefined) body.seed = seed;
    const headers: Record<string, string> = {
      "Content-Type": "application/json",
      "Accept": "application/json",
    };
    if (this.#apiKey) headers["Authorization"] = `Bearer ${this.#apiKey}`;
    const payload = JSON.stringify(body);

    const tries = this.cfg.maxRetries + 1;
    for (let attempt = 0;; attempt++) {
      await this.#acquire();
      let result: { ok: unknown } | { fail: Failure };
      try {
        result = await this.#try(url, headers, payload);
      } finally {
        this.#release();
      }
      if ("ok" in result) return this.#parse(result.ok, chat);
      const f = result.fail;
      if (!f.retry) {
        throw new TeacherError(this.#redact(`${this.role} ${this.#baseUrl}: ${f.what}`));
      }
      if (attempt + 1 >= tries) {
        const s = tries === 1 ? "try" : "tries";
        const where = `${this.role} ${this.#baseUrl}`;
        const msg = f.kind === "network"
          ? `${where}: unreachable after ${tries} ${s} (${f.what})`
          : f.kind === "timeout"
          ? `${where}: no response after ${tries} ${s} (${f.what})`
          : `${where}: ${f.what} (after ${tries} ${s})`;
        throw new TeacherError(this.#redact(msg));
      }
      const backoff = Math.min(MAX_BACKOFF_MS, this.cfg.backoffMs * 2 ** attempt);
      const jittered = backoff * (0.75 + 0.5 * Math.random());
      const wait = f.retryAfterMs !== undefined
        ? Math.min(MAX_RETRY_AFTER_MS, f.retryAfterMs)
        : Math.min(MAX_BACKOFF_MS, jittered);
      await sleep(wait);
    }
  }

  /** One HTTP try; never throws. */
  async #try(
    url: string,
    headers: Record<string, string>,
    payload: string,
  ): Promise<{ ok: unknown } | { fail: Failure }> {
    const ctl = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.abort();
    }, this.cfg.timeoutMs);
    const timeoutFail = (): { fail: Failure } => ({
      fail: { retry: true, kind: "timeout", what: `timed out after ${this.cfg.timeoutMs} ms` },
    });
    try {
      let res: Response;
      try {
        res = await fetch(url, { method: "POST", headers, body: payload, signal: ctl.signal });
      } catch (err) {
        if (timedOut) return timeoutFail();
        return { fail: { retry: true, kind: "network", what: networkReason(err) } };
      }
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        if (timedOut) return timeoutFail();
        return { fail: { retry: true, kind: "network", what: networkReason(err) } };
      }
      if (!res.ok) {
        const s = res.status;
        const retry = s === 408 || s === 409 || s === 429 || s >= 500;
        const status = `HTTP ${s} ${res.statusText || STATUS_TEXT[s] || ""}`.trimEnd();
        const msg = serverMessage(text);
        return {
          fail: {
            retry,
            kind: "http",
            what: msg ? `${status}: ${msg}` : status,
            retryAfterMs: parseRetryAfter(res.headers.get("retry-after")),
          },
        };
      }
      try {
        return { ok: JSON.parse(text) };
      } catch {
        return {
          fail: {
            retry: false,
            kind: "http",
            what: `the response is not JSON: ${clip(squashSpace(text), 200)}`,
          },
        };
      }
    } finally {
      clearTimeout(timer);
    }
  }

  #parse(json: unknown, chat: boolean): Completion[] {
    const bad = (why: string) =>
      new TeacherError(`${this.role} ${this.#baseUrl}: unexpected response (${why})`);
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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

/** Retry-After as milliseconds: delta-seconds or an HTTP date. */
function parseRetryAfter(v: string | null): number | undefined {
  if (v === null) return undefined;
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const date = Date.parse(s);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
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
