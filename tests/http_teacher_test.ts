/** The OpenAI-compatible teacher client, against real local HTTP servers (Hono on Deno.serve). */
import assert from "node:assert/strict";
import { Hono } from "hono";
import type { Context } from "hono";
import {
  type CompletionRequest,
  HttpTeacher,
  type HttpTeacherConfig,
  httpTeacherSchema,
  TeacherError,
} from "../src/teacher/http.ts";
import { EngineError } from "../src/errors.ts";
import { validate } from "../src/util/schema.ts";
import { withServer } from "./support/serve.ts";

interface Seen {
  path: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

async function record(c: Context, seen: Seen[]): Promise<Record<string, unknown>> {
  const body = await c.req.json();
  seen.push({ path: c.req.path, headers: Object.fromEntries(c.req.raw.headers), body });
  return body;
}

function chatResponse(model: string, texts: string[], finish = "stop") {
  return {
    id: "chatcmpl-1",
    object: "chat.completion",
    created: 1700000000,
    model,
    choices: texts.map((t, index) => ({
      index,
      message: { role: "assistant", content: t },
      logprobs: null,
      finish_reason: finish,
    })),
    usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
  };
}

function completionsResponse(model: string, texts: string[], finish = "length") {
  return {
    id: "cmpl-1",
    object: "text_completion",
    created: 1700000000,
    model,
    choices: texts.map((t, index) => ({ index, text: t, logprobs: null, finish_reason: finish })),
    usage: { prompt_tokens: 5, completion_tokens: 5, total_tokens: 10 },
  };
}

function config(baseUrl: string, over: Partial<HttpTeacherConfig> = {}): HttpTeacherConfig {
  return {
    baseUrl,
    model: "teacher-7b",
    api: "chat",
    concurrency: 4,
    maxRetries: 3,
    timeoutMs: 5000,
    ...over,
  };
}

const REQ: CompletionRequest = { prompt: "What is 2+2?", n: 1, temperature: 0.7, maxTokens: 16 };

async function assertTeacherError(p: Promise<unknown>, message: string | RegExp) {
  await assert.rejects(p, (err: Error) => {
    assert.ok(
      err instanceof TeacherError && err instanceof EngineError,
      `${err.name}: ${err.message}`,
    );
    if (typeof message === "string") assert.equal(err.message, message);
    else assert.match(err.message, message);
    assert.ok(!err.message.includes("\n"));
    return true;
  });
}

Deno.test("chat: OpenAI request and response shapes", async () => {
  const seen: Seen[] = [];
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    const body = await record(c, seen);
    const n = body.n as number;
    // Choices out of index order: the client orders them by index.
    const res = chatResponse("teacher-7b", Array.from({ length: n }, (_, i) => `four ${i}`));
    res.choices.reverse();
    return c.json(res);
  });
  await withServer(app, async (base) => {
    const t = new HttpTeacher(config(base + "/"));
    const out = await t.complete({
      prompt: "What is 2+2?",
      system: "Be brief.",
      n: 2,
      temperature: 0.7,
      topP: 0.9,
      maxTokens: 16,
      stop: ["\n\n"],
      seed: 42,
    });
    assert.deepEqual(out, [
      { text: "four 0", finishReason: "stop" },
      { text: "four 1", finishReason: "stop" },
    ]);
    assert.equal(seen.length, 1);
    assert.equal(seen[0].path, "/v1/chat/completions");
    assert.equal(seen[0].headers["content-type"], "application/json");
    assert.equal(seen[0].headers["accept"], "application/json");
    assert.equal(seen[0].headers["authorization"], undefined);
    assert.deepEqual(seen[0].body, {
      model: "teacher-7b",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "What is 2+2?" },
      ],
      n: 2,
      temperature: 0.7,
      top_p: 0.9,
      max_tokens: 16,
      stop: ["\n\n"],
      seed: 42,
    });
    // Without the optional fields, none are sent.
    await t.complete(REQ);
    assert.deepEqual(seen[1].body, {
      model: "teacher-7b",
      messages: [{ role: "user", content: "What is 2+2?" }],
      n: 1,
      temperature: 0.7,
      max_tokens: 16,
    });
  });
});

Deno.test("completions: OpenAI request and response shapes", async () => {
  const seen: Seen[] = [];
  const app = new Hono();
  app.post("/v1/completions", async (c) => {
    const body = await record(c, seen);
    return c.json(
      completionsResponse(body.model as string, [" 4", " four", " 4."].slice(0, body.n as number)),
    );
  });
  await withServer(app, async (base) => {
    const t = new HttpTeacher(config(base, { api: "completions" }));
    const out = await t.complete({ ...REQ, n: 3, topP: 0.95, stop: ["\n"], seed: 1 });
    assert.deepEqual(out.map((c) => [c.text, c.finishReason]), [
      [" 4", "length"],
      [" four", "length"],
      [" 4.", "length"],
    ]);
    assert.equal(seen[0].path, "/v1/completions");
    assert.deepEqual(seen[0].body, {
      model: "teacher-7b",
      prompt: "What is 2+2?",
      n: 3,
      temperature: 0.7,
      top_p: 0.95,
      max_tokens: 16,
      stop: ["\n"],
      seed: 1,
    });
    await assertTeacherError(
      t.complete({ ...REQ, system: "x" }),
      `teacher ${base}: a system prompt needs api "chat" (api is "completions")`,
    );
  });
});

Deno.test("a server that ignores n: further requests until n are collected", async () => {
  const seen: Seen[] = [];
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    await record(c, seen);
    return c.json(chatResponse("m", [`sample ${seen.length}`]));
  });
  await withServer(app, async (base) => {
    const out = await new HttpTeacher(config(base)).complete({ ...REQ, n: 3, seed: 7 });
    assert.deepEqual(out.map((c) => c.text), ["sample 1", "sample 2", "sample 3"]);
    assert.deepEqual(seen.map((s) => [s.body.n, s.body.seed]), [[3, 7], [2, 8], [1, 9]]);
  });
});

Deno.test("429 with Retry-After, then success", async () => {
  const times: number[] = [];
  const app = new Hono();
  app.post("/v1/chat/completions", (c) => {
    times.push(performance.now());
    if (times.length === 1) {
      c.header("Retry-After", "1");
      return c.json({ error: { message: "Rate limit reached", type: "requests" } }, 429);
    }
    return c.json(chatResponse("m", ["ok"]));
  });
  await withServer(app, async (base) => {
    const out = await new HttpTeacher(config(base)).complete(REQ);
    assert.deepEqual(out, [{ text: "ok", finishReason: "stop" }]);
    assert.equal(times.length, 2);
    assert.ok(times[1] - times[0] >= 950, `retried after ${times[1] - times[0]} ms`);
  });
});

Deno.test("500 twice, then success; 500 for good gives one line after the last try", async () => {
  let calls = 0;
  let failUntil = 2;
  const app = new Hono();
  app.post("/v1/chat/completions", (c) => {
    calls++;
    if (calls <= failUntil) return c.json({ error: { message: "CUDA out of\nmemory" } }, 500);
    return c.json(chatResponse("m", ["fine"]));
  });
  await withServer(app, async (base) => {
    const t = new HttpTeacher(config(base));
    assert.deepEqual(await t.complete(REQ), [{ text: "fine", finishReason: "stop" }]);
    assert.equal(calls, 3);

    calls = 0;
    failUntil = Infinity;
    const t2 = new HttpTeacher(config(base, { maxRetries: 2 }));
    await assertTeacherError(
      t2.complete(REQ),
      `teacher ${base}: HTTP 500 Internal Server Error: CUDA out of memory (after 3 tries)`,
    );
    assert.equal(calls, 3);
  });
});

Deno.test("a hanging server hits the timeout on every try", async () => {
  let calls = 0;
  const release: (() => void)[] = [];
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    calls++;
    await new Promise<void>((r) => release.push(r));
    return c.json(chatResponse("m", ["late"]));
  });
  await withServer(app, async (base) => {
    try {
      const t = new HttpTeacher(config(base, { timeoutMs: 100, maxRetries: 1 }));
      const start = performance.now();
      await assertTeacherError(
        t.complete(REQ),
        `teacher ${base}: no response after 2 tries (timed out after 100 ms)`,
      );
      assert.equal(calls, 2);
      assert.ok(performance.now() - start < 2000);
    } finally {
      for (const r of release) r();
    }
  });
});

Deno.test("a server slower than the timeout once, then quick: the retry succeeds", async () => {
  let calls = 0;
  const app = new Hono();
  app.post("/v1/completions", async (c) => {
    calls++;
    if (calls === 1) await new Promise((r) => setTimeout(r, 600));
    return c.json(completionsResponse("m", ["in time"]));
  });
  await withServer(app, async (base) => {
    const t = new HttpTeacher(config(base, { api: "completions", timeoutMs: 200, maxRetries: 1 }));
    assert.deepEqual(await t.complete(REQ), [{ text: "in time", finishReason: "length" }]);
    assert.equal(calls, 2);
  });
});

Deno.test("connection refused: one line after the retries", async () => {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  const base = `http://127.0.0.1:${port}/v1`;
  const t = new HttpTeacher(config(base, { maxRetries: 3 }));
  await assertTeacherError(
    t.complete(REQ),
    `teacher ${base}: unreachable after 4 tries (Connection refused)`,
  );
});

Deno.test("401 and other 4xx fail at once with the server's message", async () => {
  let calls = 0;
  const app = new Hono();
  app.post("/v1/chat/completions", (c) => {
    calls++;
    if (c.req.header("authorization") === "Bearer sk-good") {
      // vLLM-style error body.
      return c.json({
        object: "error",
        message: "This model's maximum context length is 4096 tokens.",
        type: "BadRequestError",
        code: 400,
      }, 400);
    }
    return c.json({
      error: {
        message: `Incorrect API key provided: ${c.req.header("authorization")?.slice(7)}`,
        type: "invalid_request_error",
        code: "invalid_api_key",
      },
    }, 401);
  });
  await withServer(app, async (base) => {
    Deno.env.set("HTTP_TEACHER_TEST_KEY", "sk-bad-secret");
    try {
      const t = new HttpTeacher(config(base, { apiKeyEnv: "HTTP_TEACHER_TEST_KEY" }));
      await assertTeacherError(
        t.complete(REQ),
        `teacher ${base}: HTTP 401 Unauthorized: Incorrect API key provided: ***`,
      );
      assert.equal(calls, 1);

      Deno.env.set("HTTP_TEACHER_TEST_KEY", "sk-good");
      await assertTeacherError(
        new HttpTeacher(config(base, { apiKeyEnv: "HTTP_TEACHER_TEST_KEY" })).complete(REQ),
        `teacher ${base}: HTTP 400 Bad Request: This model's maximum context length is 4096 tokens.`,
      );
      assert.equal(calls, 2);
    } finally {
      Deno.env.delete("HTTP_TEACHER_TEST_KEY");
    }
  });
});

Deno.test("the API key comes from the named env var, as a Bearer header", async () => {
  const seen: Seen[] = [];
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    await record(c, seen);
    return c.json(chatResponse("m", ["hi"]));
  });
  await withServer(app, async (base) => {
    Deno.env.set("HTTP_TEACHER_TEST_KEY2", "sk-test-123");
    try {
      await new HttpTeacher(config(base, { apiKeyEnv: "HTTP_TEACHER_TEST_KEY2" })).complete(REQ);
      assert.equal(seen[0].headers["authorization"], "Bearer sk-test-123");
    } finally {
      Deno.env.delete("HTTP_TEACHER_TEST_KEY2");
    }
    assert.throws(
      () => new HttpTeacher(config(base, { apiKeyEnv: "HTTP_TEACHER_TEST_KEY2" })),
      {
        name: "TeacherError",
        message:
          `teacher ${base}: environment variable HTTP_TEACHER_TEST_KEY2 (apiKeyEnv) is not set`,
      },
    );
  });
});

Deno.test("completeMany keeps at most `concurrency` requests in flight", async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    const body = await c.req.json();
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, 20 + Math.random() * 20));
    inFlight--;
    const prompt = (body.messages as { content: string }[])[0].content;
    return c.json(chatResponse("m", [`re: ${prompt}`]));
  });
  await withServer(app, async (base) => {
    const t = new HttpTeacher(config(base, { concurrency: 3 }));
    const reqs = Array.from({ length: 20 }, (_, i) => ({ ...REQ, prompt: `p${i}` }));
    const done: number[] = [];
    const out = await t.completeMany(reqs, (i, c) => {
      assert.equal(c[0].text, `re: p${i}`);
      done.push(i);
    });
    assert.equal(maxInFlight, 3);
    assert.deepEqual(out.map((c) => c[0].text), reqs.map((r) => `re: ${r.prompt}`));
    assert.deepEqual(done.sort((a, b) => a - b), reqs.map((_, i) => i));

    // The limit holds across concurrent calls on one client too.
    maxInFlight = 0;
    await Promise.all([t.completeMany(reqs.slice(0, 6)), t.completeMany(reqs.slice(6, 12))]);
    assert.equal(maxInFlight, 3);
  });
});

Deno.test("completeMany stops at the first failure", async () => {
  let calls = 0;
  const app = new Hono();
  app.post("/v1/chat/completions", async (c) => {
    calls++;
    const body = await c.req.json();
    const prompt = (body.messages as { content: string }[])[0].content;
    if (prompt === "p3") return c.json({ error: { message: "bad prompt" } }, 422);
    return c.json(chatResponse("m", ["ok"]));
  });
  await withServer(app, async (base) => {
    const t = new HttpTeacher(config(base, { concurrency: 1 }));
    const reqs = Array.from({ length: 10 }, (_, i) => ({ ...REQ, prompt: `p${i}` }));
    await assertTeacherError(
      t.completeMany(reqs),
      `teacher ${base}: HTTP 422 Unprocessable Entity: bad prompt`,
    );
    assert.equal(calls, 4);
  });
});

Deno.test("the config schema gives an HttpTeacherConfig", () => {
  const cfg: HttpTeacherConfig = validate(
    httpTeacherSchema,
    { baseUrl: "http://127.0.0.1:8000/v1", model: "m" },
    "config.json",
  );
  assert.deepEqual(cfg, {
    baseUrl: "http://127.0.0.1:8000/v1",
    model: "m",
    api: "chat",
    concurrency: 8,
    maxRetries: 3,
    timeoutMs: 300_000,
  });
  assert.throws(() => new HttpTeacher({ ...cfg, baseUrl: "127.0.0.1:8000" }), TeacherError);
  assert.throws(() => new HttpTeacher({ ...cfg, concurrency: 0 }), TeacherError);
});
