/**
 * What each pseudo-label rule (`label.voters`) would pay the SFT student on PPO's fresh prompts,
 * by answer style, beside what gold pays: a diagnostic read against gold, never a setting chosen
 * on held-out questions. A run that has been through PPO with the pseudo reward holds the
 * teacher's answers to the fresh prompts (teacher-rl/); the SFT student samples them anew:
 *
 *   deno run -A tools/label_pay.ts runs/my-run [prompts=400] [samples=4]
 */
import type { Config } from "../src/run/config.ts";
import { initGpu } from "../src/gpu/mod.ts";
import { JsonlShards } from "../src/run/run_dir.ts";
import type { ResponseRow } from "../src/run/rows.ts";
import { byId, makeContext } from "../src/stages/context.ts";
import { majorityLabels } from "../src/stages/label.ts";
import { freshPrompts } from "../src/stages/rl_prompts.ts";
import { openStudent } from "../src/stages/student_generate.ts";
import { answerStyle } from "../src/tasks/arithmetic.ts";
import { sameAnswer } from "../src/tasks/answers.ts";

const [runDir, promptsArg = "400", samplesArg = "4"] = Deno.args;
if (!runDir) {
  console.error("usage: label_pay.ts <run dir> [prompts] [samples per prompt]");
  Deno.exit(2);
}
const path = runDir.replace(/\/$/, "");
const cfg = JSON.parse(await Deno.readTextFile(`${path}/config.json`)) as Config;
cfg.runsDir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
cfg.name = path.slice(path.lastIndexOf("/") + 1);
await initGpu({ quiet: true });
const ctx = await makeContext(cfg);

const teacher = byId((await new JsonlShards(ctx.run, "teacher-rl").readAll()) as ResponseRow[]);
if (teacher.size === 0) {
  console.error(`error: ${path}/teacher-rl holds no teacher answers to fresh prompts`);
  Deno.exit(1);
}
const fresh = freshPrompts(ctx, cfg.ppo.freshPrompts).filter((q) => teacher.has(q.id))
  .slice(0, Number(promptsArg));
const gold = new Map(fresh.map((q) => [q.id, q.gold]));

const student = await openStudent(ctx, cfg.studentGenerate.source, {
  maxNewTokens: cfg.ppo.maxNewTokens,
  topP: 1,
  batchSize: 64,
  stop: ctx.task.stop,
});
const outs = await student.sampler.sample(fresh.map((q, i) => ({
  prompt: q.prompt,
  n: Number(samplesArg),
  temperature: cfg.ppo.temperature,
  seed: cfg.seed * 100_003 + i,
})));
student.destroy();
const samples = fresh.flatMap((q, i) =>
  outs[i].map((s) => ({ id: q.id, style: answerStyle(s.text), answer: ctx.task.extract(s.text) }))
);

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const lines = [
  `${fresh.length} fresh prompts × ${samplesArg} samples of the SFT student at temperature ${cfg.ppo.temperature}; label.minAgreement ${cfg.label.minAgreement}.`,
  "",
  "| label.voters | kept | labels right | worked paid (gold) | worked wrong paid | guesses paid (gold) | guesses wrong paid |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const voters of ["all", "worked"] as const) {
  const labels = new Map(
    majorityLabels(teacher, cfg.label.minAgreement, voters).map((l) => [l.id, l]),
  );
  const kept = fresh.filter((q) => labels.get(q.id)?.kept);
  const right = kept.filter((q) => sameAnswer(labels.get(q.id)!.pseudo_label, q.gold));
  const cells = ["worked", "answer-only"].flatMap((style) => {
    const some = samples.filter((s) => s.style === style && labels.get(s.id)?.kept);
    const paid = (s: typeof some[number]) =>
      s.answer !== null && sameAnswer(s.answer, labels.get(s.id)!.pseudo_label);
    const isRight = (s: typeof some[number]) => sameAnswer(s.answer, gold.get(s.id)!);
    const wrong = some.filter((s) => !isRight(s));
    return [
      `${pct(some.filter(paid).length / some.length)} (${
        pct(some.filter(isRight).length / some.length)
      })`,
      pct(wrong.filter(paid).length / wrong.length),
    ];
  });
  lines.push(
    `| ${voters} | ${pct(kept.length / fresh.length)} | ${pct(right.length / kept.length)} | ${
      cells.join(" | ")
    } |`,
  );
}
console.log(lines.join("\n"));
