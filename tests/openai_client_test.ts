/**
 * The official `openai` npm client against a real started server that serves
 * the stories260K fixture (as `deno task serve --model PATH` does): models,
 * chat and completions, plain and streamed, n, seed, stop and errors.
 */
import assert from "node:assert/strict";
import OpenAI from "openai";
import "./support/gpu.ts";
import { type Server, startServer } from "../src/server/app.ts";

const MODEL = new URL("./fixtures/stories260K", import.meta.url).pathname;
const opts = { sanitizeResources: false, sanitizeOps: false };

const runDir = await Deno.makeTempDir({ prefix: "openai_client_test_" });
await Deno.writeTextFile(`${runDir}/config.json`, JSON.stringify({ name: "t" }));
const server: Server = await startServer({ runDir, port: 0, model: MODEL, log: () => {} });
const client = new OpenAI({ baseURL: `${server.url}v1`, apiKey: "unused", maxRetries: 0 });

Deno.test("models.list names the served checkpoint", opts, async () => {
  const ids: string[] = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, ["stories260K"]);
  const m = await client.models.retrieve("stories260K");
  assert.equal(m.id, "stories260K");
});

Deno.test("chat.completions: plain and streamed give the same greedy text", opts, async () => {
  const req = {
    model: "stories260K",
    messages: [{ role: "user" as const, content: "Once upon a time" }],
    max_tokens: 24,
    temperature: 0,
  };
  const plain = await client.chat.completions.create(req);
  assert.equal(plain.object, "chat.completion");
  assert.equal(plain.choices.length, 1);
  const text = plain.choices[0].message.content ?? "";
  assert.ok(text.length > 0);
  assert.ok(plain.usage!.prompt_tokens > 0);
  assert.ok(plain.usage!.completion_tokens > 0 && plain.usage!.completion_tokens <= 24);

  const stream = await client.chat.completions.create({
    ...req,
    stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = "";
  let finish: string | null = null;
  let usage = null;
  let n = 0;
  for await (const chunk of stream) {
    n++;
    assert.equal(chunk.object, "chat.completion.chunk");
    for (const c of chunk.choices) {
      streamed += c.delta.content ?? "";
      finish = c.finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(n > 3, `${n} chunks`);
  assert.equal(streamed, text);
  assert.equal(finish, plain.choices[0].finish_reason);
  assert.deepEqual(usage, plain.usage);
});

Deno.test("completions: plain and streamed, n choices, seed replays, stop cuts", opts, async () => {
  const plain = await client.completions.create({
    model: "stories260K",
    prompt: "Lily went to the park",
    max_tokens: 20,
    temperature: 0,
  });
  assert.equal(plain.object, "text_completion");
  const text = plain.choices[0].text;
  assert.equal(plain.usage!.completion_tokens, 20);

  const stream = await client.completions.create({
    model: "stories260K",
    prompt: "Lily went to the park",
    max_tokens: 20,
    temperature: 0,
    stream: true,
  });
  let streamed = "";
  for await (const chunk of stream) for (const c of chunk.choices) streamed += c.text;
  assert.equal(streamed, text);

  const sampled = (seed: number) =>
    client.completions.create({
      model: "stories260K",
      prompt: "The dog",
      max_tokens: 12,
      temperature: 1,
      top_p: 0.9,
      n: 3,
      seed,
    });
  const a = await sampled(11);
  const b = await sampled(11);
  assert.equal(a.choices.length, 3);
  assert.deepEqual(a.choices.map((c) => c.index), [0, 1, 2]);
  assert.deepEqual(a.choices.map((c) => c.text), b.choices.map((c) => c.text));

  const word = text.trim().split(/\s+/)[2];
  const cut = await client.completions.create({
    model: "stories260K",
    prompt: "Lily went to the park",
    max_tokens: 20,
    temperature: 0,
    stop: [word],
  });
  assert.equal(cut.choices[0].finish_reason, "stop");
  assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(word)));
});

Deno.test(
  "an unknown model is a NotFoundError; a bad parameter a BadRequestError",
  opts,
  async () => {
    await assert.rejects(
      client.chat.completions.create({
        model: "gpt-4o",
        messages: [{ role: "user", content: "hi" }],
      }),
      (err: unknown) => err instanceof OpenAI.NotFoundError && /gpt-4o/.test(err.message),
    );
    await assert.rejects(
      client.completions.create({ model: "stories260K", prompt: "x", temperature: 9 }),
      OpenAI.BadRequestError,
    );
  },
);

Deno.test("cleanup", opts, async () => {
  await server.close();
  await Deno.remove(runDir, { recursive: true });
});
