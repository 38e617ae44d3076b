/**
 * `deno task export --model DIR --gguf OUT.gguf [--dtype f16|f32]`: writes a Hugging Face Llama
 * folder as one GGUF v3 file for llama.cpp (and the tools built on it: llama-cli, Ollama, LM
 * Studio, node-llama-cpp). No GPU needed.
 */
import { parseArgs } from "node:util";
import { EngineError, runMain } from "../errors.ts";
import { exportGguf, GGUF_DTYPES, type GgufDtype } from "../model/gguf_export.ts";

const USAGE = `usage: deno task export --model DIR --gguf OUT.gguf [--dtype f16|f32]

Writes a Llama checkpoint folder (config.json, model.safetensors, tokenizer.json) as a GGUF v3
file that llama.cpp loads: llama-architecture metadata, the tokenizer (vocabulary, scores or
merges, token types, BOS/EOS, chat template) and the weights.

options:
  --model DIR     a Hugging Face-layout LlamaForCausalLM folder, e.g. a run's PPO policy
                  runs/NAME/ppo/ckpt-000030/policy (the "dir" in ppo/latest.json, + /policy)
  --gguf FILE     the GGUF file to write (replaced atomically)
  --dtype T       f16 (default, as llama.cpp's converter writes; norms stay f32) or f32
                  (exactly our weights, twice the size)
  --name NAME     general.name in the file (default: the folder's name)
  --help          this text`;

await runMain(async () => {
  const { values } = parseArgs({
    args: Deno.args.filter((a) => a !== "--"),
    options: {
      model: { type: "string" },
      gguf: { type: "string" },
      dtype: { type: "string", default: "f16" },
      name: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return console.log(USAGE);
  if (!values.model || !values.gguf) throw new EngineError("--model and --gguf are required");
  const dtype = values.dtype as GgufDtype;
  if (!GGUF_DTYPES.includes(dtype)) {
    throw new EngineError(`--dtype must be ${GGUF_DTYPES.join(" or ")}, got "${values.dtype}"`);
  }
  const t0 = performance.now();
  const res = await exportGguf(values.model, values.gguf, { dtype, name: values.name });
  for (const w of res.warnings) console.error(`warning: ${w}`);
  const mib = (res.bytes / 2 ** 20).toFixed(1);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.log(`wrote ${values.gguf}: ${res.tensors} tensors, ${dtype}, ${mib} MiB (${secs} s)`);
}, USAGE);
