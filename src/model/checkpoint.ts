/**
 * Checkpoints in Hugging Face layout: config.json, generation_config.json,
 * model.safetensors (F32) and the tokenizer files, in one folder.
 */
import { configToJson, type ModelConfig, readConfig } from "./config.ts";
import { writeJsonFile } from "./files.ts";
import { CausalLM } from "./llama.ts";
import { readSafetensors, writeSafetensors } from "./safetensors.ts";
import { loadTokenizer, type Tokenizer, writeTokenizerFiles } from "./tokenizer.ts";

export interface Pretrained {
  model: CausalLM;
  tokenizer: Tokenizer;
}

/** Loads a model folder (any HF Llama or Qwen2 checkpoint with F32/F16/BF16 weights). */
export async function loadPretrained(
  dir: string,
  override?: Partial<ModelConfig>,
): Promise<Pretrained> {
  const config = { ...(await readConfig(dir)), ...override };
  const weights = await readSafetensors(dir);
  const tokenizer = await loadTokenizer(dir);
  return { model: CausalLM.fromHost(config, weights, dir), tokenizer };
}

/** Writes the model (F32) and its tokenizer; each file atomically. */
export async function savePretrained(
  dir: string,
  model: CausalLM,
  tokenizer: Tokenizer,
): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const tensors = await model.toHost();
  await writeSafetensors(`${dir}/model.safetensors`, tensors);
  await writeJsonFile(`${dir}/config.json`, configToJson(model.config));
  await writeTokenizerFiles(dir, tokenizer.files);
}
