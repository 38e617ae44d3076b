/**
 * `deno task generate --model DIR --prompt "..." [--temperature T] [--max-tokens N]`:
 * prints a completion, so any checkpoint can be tried by hand.
 */
import { parseArgs } from "node:util";
import { EngineError, runMain } from "../errors.ts";
import { initGpu } from "../gpu/mod.ts";
import { loadPretrained } from "../model/checkpoint.ts";
import { readGenerationConfig } from "../model/config.ts";
import { generate } from "../generate/generate.ts";

const HELP = `usage: deno task generate --model DIR --prompt TEXT [options]

  --model DIR         a Hugging Face-layout checkpoint (config.json, model.safetensors, tokenizer.json)
  --prompt TEXT       the prompt
  --chat              wrap the prompt in the tokenizer's chat template as a user message
  --temperature T     0 for greedy (default: generation_config.json, else 1)
  --top-k K           keep the K most likely tokens (default 0: all)
  --top-p P           nucleus sampling mass (default 1)
  --max-tokens N      new tokens at most (default 128)
  --seed S            random seed (default 0)
  --stop TEXT         stop when the text contains TEXT (repeatable)`;

await runMain(async () => {
  const { values } = parseArgs({
    options: {
      model: { type: "string" },
      prompt: { type: "string" },
      chat: { type: "boolean", default: false },
      temperature: { type: "string" },
      "top-k": { type: "string" },
      "top-p": { type: "string" },
      "max-tokens": { type: "string", default: "128" },
      seed: { type: "string", default: "0" },
      stop: { type: "string", multiple: true },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return console.log(HELP);
  if (!values.model || values.prompt === undefined) {
    throw new EngineError(`--model and --prompt are required\n${HELP}`.split("\n")[0]);
  }
  const num = (name: string, v: string | undefined) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new EngineError(`--${name} must be a number, got "${v}"`);
    return n;
  };
  await initGpu();
  const { model, tokenizer } = await loadPretrained(values.model);
  const gen = await readGenerationConfig(values.model);
  const text = values.chat
    ? tokenizer.applyChatTemplate([{ role: "user", content: values.prompt }], {
      addGenerationPrompt: true,
    })
    : values.prompt;
  const [out] = await generate(model, tokenizer, [tokenizer.encode(text)], {
    maxNewTokens: num("max-tokens", values["max-tokens"])!,
    temperature: num("temperature", values.temperature) ?? gen.temperature ?? 1,
    topK: num("top-k", values["top-k"]) ?? gen.topK,
    topP: num("top-p", values["top-p"]) ?? gen.topP,
    seed: num("seed", values.seed),
    stopStrings: values.stop,
  });
  console.log(values.prompt + out.text);
}, HELP);
