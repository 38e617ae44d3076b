/**
 * Final-answer extraction and comparison.
 *
 * GSM8K follows lm-evaluation-harness (tasks/gsm8k/gsm8k.yaml): "strict-match" reads the number
 * after "#### ", "flexible-extract" the last number-like token. MMLU-Pro follows TIGER-Lab's
 * evaluate_from_local.py (extract_answer -> extract_again -> extract_final, HEAD f418b11).
 */

const STRICT = /#### (-?[0-9.,]+)/g;
const FLEXIBLE = /(-?[$0-9.,]{2,})|(-?[0-9]+)/g;
const DIGIT = /[0-9]/;

/**
 * GSM8K strict: the number after the last "#### " (lm-evaluation-harness "strict-match": regex
 * "#### (\-?[0-9\.\,]+)"), normalised by `normalizeNumber`; null if there is none.
 *
 * Differences from lm-eval, both only when a text has several candidates: lm-eval takes the
 * FIRST match (filter "take_first", group_select 0) where this takes the last, so a response that
 * corrects itself ("#### 70 ... #### 72") counts its final answer; and a match without any digit
 * ("#### ...") is skipped instead of being returned as an answer.
 */
export function extractStrict(text: string): string | null {
  let last: string | null = null;
  for (const m of text.matchAll(STRICT)) if (DIGIT.test(m[1])) last = m[1];
  return last === null ? null : normalizeNumber(last);
}

/**
 * GSM8K flexible: the last number in the text (lm-eval "flexible-extract":
 * "(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select -1), normalised by `normalizeNumber`.
 * Matches without a digit (such as "..." or "$,") are skipped: lm-eval would return them.
 */
export function extractFlexible(text: string): string | null {
  let last: string | null = null;
  for (const m of text.matchAll(FLEXIBLE)) {
    const s = m[1] ?? m[2];
    if (DIGIT.test(s)) last = s;
  }
  return last === null ? null : normalizeNumber(last);
}

/**
 * Canonical form of a numeric answer: remove commas, "$", surrounding spaces and trailing "."s;
 * "17.0"/"17.00" -> "17"; "-0" -> "0"; "0.50" -> "0.5"; "007" -> "7"; ".5" -> "0.5"; "+3" -> "3".
 * Works on the digits as text, so long numbers keep every digit. Anything that is not a plain
 * decimal number afterwards comes back as the trimmed input (so "C" stays "C").
 */
export function normalizeNumber(s: string): string {
  const trimmed = s.trim();
  const t = trimmed.replace(/[,$]/g, "").trim().replace(/\.+$/, "");
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(t);
  if (!m || (m[2] === "" && (m[3] ?? "") === "")) return trimmed;
  const int = m[2].replace(/^0+/, "") || "0";
  const frac = (m[3] ?? "").replace(/0+$/, "");
  const body = frac === "" ? int : `${int}.${frac}`;
  return m[1] === "-" && body !== "0" ? `-${body}` : body;
}

// Python's \w on str is [\p{L}\p{N}_]; JS's \b is ASCII-only, so the word boundary of the
// official "\b[A-J]\b" is written out with Unicode lookarounds.
const CHOICE_FIRST = /answer is \(?([A-J])\)?/;
// Python's "." (no DOTALL) excludes only "\n"; JS's "." also excludes "\r", U+2028 and U+2029.
const CHOICE_AGAIN = /[^\n]*[aA]nswer:\s*([A-J])/;
const CHOICE_FINAL = /(?<![\p{L}\p{N}_])[A-J](?![\p{L}\p{N}_])/gu;

/**
 * MMLU-Pro official extraction order (TIGER-Lab evaluate_from_local.py, same in
 * evaluate_from_api.py), with Python `re.search` semantics reproduced exactly:
 * 1. `re.search(r"answer is \(?([A-J])\)?", text)`: the FIRST "answer is X" in the text
 *    (case-sensitive: "Answer is" does not match; "(" and ")" optional).
 * 2. `re.search(r'.*[aA]nswer:\s*([A-J])', text)` without DOTALL: the first line that has an
 *    "answer:"/"Answer:" followed by a letter, and on that line the LAST such (greedy ".*").
 * 3. `re.search(r"\b[A-J]\b(?!.*\b[A-J]\b)", text, re.DOTALL)`: the last standalone capital A-J
 *    anywhere (the pronoun "I" counts, as in the official code; lower-case letters never do).
 * Returns null when none applies (the official scorer then guesses at random; we count it wrong).
 */
export function extractChoice(text: string): string | null {
  const first = CHOICE_FIRST.exec(text);
  if (first) return first[1];
  const again = CHOICE_AGAIN.exec(text);
  if (again) return again[1];
  let last: string | null = null;
  for (const m of text.matchAll(CHOICE_FINAL)) last = m[0];
  return last;
}

/** Both answers present and equal after `normalizeNumber`. */
export function sameAnswer(a: string | null, b: string | null): boolean {
  if (a === null || b === null) return false;
  return normalizeNumber(a) === normalizeNumber(b);
}
