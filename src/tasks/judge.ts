/** LLM-as-judge: rendering the rating prompt and reading the score out of the judge's text. */
import { EngineError } from "../errors.ts";

export interface JudgeConfig {
  /** prompt with {question} and {response} placeholders */
  template: string;
  /** regex with one capture group holding the score */
  scorePattern: string;
  maxScore: number;
  /** score/maxScore at or above which the response is positive */
  threshold: number;
}

/** A judge config that cannot work (missing placeholder, bad pattern, bad range). */
export class JudgeConfigError extends EngineError {}

export const DEFAULT_JUDGE: JudgeConfig = {
  template: "Please act as an impartial judge of the response below to the question. Check " +
    "each step of its reasoning and whether its final answer is correct. Rate it on a scale " +
    "of 1 to 10, where 1 means wrong or unsupported and 10 means correct with sound " +
    "reasoning. Reply with the rating only.\n\n" +
    "[Question]\n{question}\n\n[Response]\n{response}\n\nRating: ",
  scorePattern: String.raw`Rating:\s*(\d+(?:\.\d+)?)`,
  maxScore: 10,
  threshold: 0.7,
};

const PLACEHOLDER = /\{(question|response)\}/g;

function compile(cfg: JudgeConfig): RegExp {
  let re: RegExp;
  try {
    re = new RegExp(cfg.scorePattern);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new JudgeConfigError(`judge: scorePattern is not a valid regex (${msg})`);
  }
  // A regex's number of capture groups: match it against nothing, alternated with the empty string.
  const groups = new RegExp(`${cfg.scorePattern}|`).exec("")!.length - 1;
  if (groups !== 1) {
    throw new JudgeConfigError(`judge: scorePattern must have one capture group, it has ${groups}`);
  }
  if (!(cfg.maxScore > 0) || !Number.isFinite(cfg.maxScore)) {
    throw new JudgeConfigError(`judge: maxScore must be a positive number, got ${cfg.maxScore}`);
  }
  if (!(cfg.threshold >= 0 && cfg.threshold <= 1)) {
    throw new JudgeConfigError(`judge: threshold must be in [0, 1], got ${cfg.threshold}`);
  }
  return re;
}

/** Checks a judge config; throws a one-line JudgeConfigError naming what is wrong. */
export function checkJudgeConfig(cfg: JudgeConfig): void {
  compile(cfg);
  for (const key of ["{question}", "{response}"]) {
    if (!cfg.template.includes(key)) {
      throw new JudgeConfigError(`judge: template has no ${key} placeholder`);
    }
  }
}

/** The template with {question} and {response} filled in (in one pass, so text is never re-expanded). */
export function judgePrompt(cfg: JudgeConfig, question: string, response: string): string {
  checkJudgeConfig(cfg);
  return cfg.template.replace(PLACEHOLDER, (_, key) => key === "question" ? question : response);
}

/** The template's last line when it has no placeholder (DEFAULT_JUDGE: "Rating: "). */
function promptTail(template: string): string {
  const tail = template.slice(template.lastIndexOf("\n") + 1);
  return /\{(question|response)\}/.test(tail) ? "" : tail;
}

/**
 * The judge's score normalised to [0, 1] (score / maxScore, clamped), or null if none is found.
 * The judge usually continues the prompt, so its text is "7" rather than "Rating: 7": the
 * pattern is searched in the template's last line followed by the judge's text, and the first
 * match wins ("Rating: 8", "7", "7\n\nRating: 3" -> 0.8, 0.7, 0.7 with DEFAULT_JUDGE).
 */
export function parseJudgeScore(cfg: JudgeConfig, judgeText: string): number | null {
  const re = compile(cfg);
  const m = re.exec(promptTail(cfg.template) + judgeText) ?? re.exec(judgeText);
  if (!m || m[1] === undefined) return null;
  const score = Number.parseFloat(m[1]);
  if (!Number.isFinite(score)) return null;
  return Math.min(1, Math.max(0, score / cfg.maxScore));
}

/** Whether a normalised score makes the response positive. */
export function judgePositive(cfg: JudgeConfig, score: number | null): boolean {
  return score !== null && score >= cfg.threshold;
}
