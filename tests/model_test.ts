/** The real pretrained stories260K Llama, loaded through the normal path, against reference.json. */
import assert from "node:assert/strict";
import * as E from "../mod.ts";
import { loadPretrained, savePretrained } from "../src/model/checkpoint.ts";
import { distinctPrompts, generate } from "../src/generate/generate.ts";
import { assertClose } from "./support/assert.ts";
import "./support/gpu.ts";

const DIR = new URL("./fixtures/stories260K", import.meta.url).pathname;
const ref = JSON.parse(await Deno.readTextFile(`${DIR}/reference.json`)) as {
  cases: {
    prompt: string;
    input_ids: number[];
    greedy_ids: number[];
    greedy_text: string;
    last_position_logits: number[];
  }[];
};
const { model, tokenizer } = await loadPretrained(DIR);

Deno.test("stories260K: the tokenizer reproduces the reference ids", () => {
  for (const c of ref.cases) assert.deepEqual(tokenizer.encode(c.prompt), c.input_ids);
});

Deno.test("stories260K: last-position logits match the reference to 1e-4", async () => {
  for (const c of ref.cases) {
    const logits = E.noGrad(() =>
      E.tidy(() => {
        const ids = E.tensor(Int32Array.from(c.input_ids), [1, c.input_ids.length]);
        return model.logits(model.forward(ids));
      })
    );
    const all = await logits.data();
    const V = model.config.vocabSize;
    const last = all.slice((c.input_ids.length - 1) * V);
    assertClose(last, c.last_position_logits, { what: c.prompt, rtol: 0, atol: 1e-4 });
    logits.destroy();
  }
});

Deno.test("stories260K: greedy decoding reproduces the reference ids exactly, one prompt at a time and batched", async () => {
  const opts = { maxNewTokens: 40, temperature: 0, eosTokenIds: [] };
  for (const c of ref.cases) {
    const [g] = await generate(model, tokenizer, [c.input_ids], opts);
    assert.deepEqual(g.ids, c.greedy_ids, c.prompt);
    assert.equal(g.text, c.greedy_text);
    assert.equal(g.finishReason, "length");
  }
  // Prompts of 5, 17 and 13 tokens in one left-padded batch.
  const batch = await generate(model, tokenizer, ref.cases.map((c) => c.input_ids), opts);
  batch.forEach((g, i) => assert.deepEqual(g.ids, ref.cases[i].greedy_ids));
});

Deno.test("generation stops at EOS and at stop strings, and reports per-token log-probs", async () => {
  const c = ref.cases[0];
  const [g] = await generate(model, tokenizer, [c.input_ids], {
    maxNewTokens: 40,
    temperature: 0,
    stopStrings: ["Lily"],
  });
  assert.equal(g.finishReason, "stop");
  assert.equal(g.text, c.greedy_text.slice(0, c.greedy_text.indexOf("Lily")));
  assert.ok(g.ids.length < 40);
  assert.equal(g.logprobs.length, g.ids.length);
  for (const lp of g.logprobs) assert.ok(lp <= 0 && lp > -20);
  // Greedy log-probs are those of the argmax token: check the first against the reference logits.
  const l = c.last_position_logits;
  const m = Math.max(...l);
  const lse = m + Math.log(l.reduce((s, v) => s + Math.exp(v - m), 0));
  assertClose([g.logprobs[0]], [l[c.greedy_ids[0]] - lse], { atol: 1e-4 });
  // With EOS = the 6th greedy token, generation ends there.
  const [e] = await generate(model, tokenizer, [c.input_ids], {
    maxNewTokens: 40,
    temperature: 0,
    eosTokenIds: [c.greedy_ids[5]],
  });
  assert.equal(e.finishReason, "eos");
  assert.deepEqual(e.ids, c.greedy_ids.slice(0, 6));
});

Deno.test("sampling with a seed is reproducible and stays in the vocabulary", async () => {
  const prompts = ref.cases.map((c) => c.input_ids);
  const opts = {
    maxNewTokens: 20,
    temperature: 0.8,
    topK: 40,
    topP: 0.95,
    seed: 5,
    eosTokenIds: [],
  };
  const a = await generate(model, tokenizer, prompts, opts);
  const b = await generate(model, tokenizer, prompts, opts);
  assert.deepEqual(a.map((g) => g.ids), b.map((g) => g.ids));
  for (const g of a) assert.ok(g.ids.every((t) => t >= 0 && t < 512));
  const c = await generate(model, tokenizer, prompts, { ...opts, seed: 6 });
  assert.notDeepEqual(a.map((g) => g.ids), c.map((g) => g.ids));
});

Deno.test("repeated prompts share one prefill and sample exactly what a prefill per row gives", async () => {
  // Three samples of each reference prompt, interleaved (5, 17 and 13 tokens, left-padded).
  const cases = [0, 1, 2, 0, 2, 1, 1, 0, 2].map((i) => ref.cases[i]);
  const prompts = cases.map((c) => c.input_ids);
  const opts = { maxNewTokens: 20, temperature: 0.9, topP: 0.95, seed: 11, eosTokenIds: [] };
  const shared = await generate(model, tokenizer, prompts, opts);
  const perRow = await generate(model, tokenizer, prompts, { ...opts, sharePrefill: false });
  assert.deepEqual(shared.map((g) => g.ids), perRow.map((g) => g.ids));
  shared.forEach((g, i) => assertClose(g.logprobs, perRow[i].logprobs, { atol: 1e-6 }));
  // Rows of one prompt still draw their own tokens.
  assert.notDeepEqual(shared[0].ids, shared[7].ids);
  // Greedy, every copy reproduces the reference continuation.
  const greedy = await generate(model, tokenizer, prompts, { ...opts, temperature: 0 });
  greedy.forEach((g, i) => assert.deepEqual(g.ids, cases[i].greedy_ids.slice(0, 20)));
});

Deno.test("distinctPrompts: the first row of each prompt and each row's index among them", () => {
  const { distinct, rowOf } = distinctPrompts([[1, 2], [3], [1, 2], [3], [4]]);
  assert.deepEqual(distinct, [0, 1, 4]);
  assert.deepEqual([...rowOf], [0, 1, 0, 1, 2]);
});

Deno.test("save then load gives bit-identical logits", async () => {
  const dir = await Deno.makeTempDir();
  await savePretrained(dir, model, tokenizer);
  const again = await loadPretrained(dir);
  const ids = E.tensor(Int32Array.from(ref.cases[1].input_ids), [1, 17]);
  const [a, b] = await E.readAll(
    E.noGrad(
      () => [model.logits(model.forward(ids)), again.model.logits(again.model.forward(ids))],
    ),
  );
  assert.deepEqual(a, b);
  again.model.destroy();
  await Deno.remove(dir, { recursive: true });
});
