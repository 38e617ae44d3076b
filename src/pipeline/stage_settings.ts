/**
 * The settings a stage ran with, kept beside its summary (stage_settings.json), so that a done
 * stage skipped under other settings says so instead of silently keeping its old outputs.
 */
import type { Config } from "../run/config.ts";

export type Settings = Record<string, unknown>;

/** The config sections a stage reads, by name. */
export function stageSettings(cfg: Config, sections: string[]): Settings {
  const all = cfg as unknown as Settings;
  return Object.fromEntries(sections.map((s) => [s, all[s]]));
}

/** Every leaf that differs between two settings, as `path old → new`. */
export function changedSettings(before: unknown, now: unknown, path = ""): string[] {
  const isObj = (v: unknown): v is Settings =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(before) && isObj(now)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(now)])];
    return keys.flatMap((k) => changedSettings(before[k], now[k], path ? `${path}.${k}` : k));
  }
  const show = (v: unknown) => JSON.stringify(v) ?? "unset";
  return show(before) === show(now) ? [] : [`${path} ${show(before)} → ${show(now)}`];
}
