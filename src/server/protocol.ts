/** Messages between the thread that starts the server (and owns the GPU) and the server's worker. */
import type { HubOptions } from "./events.ts";
import type { ProgressSnapshot } from "./run.ts";

export interface StartOptions {
  runDir?: string;
  runsDir?: string;
  host: string;
  port: number;
  /** Whether progress snapshots will come (a pipeline runs in the starting process). */
  live: boolean;
  maxBodyBytes: number;
  events?: HubOptions;
}

/** To the worker. */
export type ToWorker =
  | { type: "start"; opts: StartOptions }
  | { type: "progress"; snapshots: ProgressSnapshot[] }
  | { type: "head"; id: number; status: number; headers: [string, string][] }
  | { type: "chunk"; id: number; bytes: Uint8Array }
  | { type: "end"; id: number }
  | { type: "close" };

/** From the worker. */
export type FromWorker =
  | { type: "listening"; port: number; url: string; note: string }
  | { type: "failed"; message: string }
  | {
    type: "fetch";
    id: number;
    method: string;
    url: string;
    headers: [string, string][];
    body: Uint8Array<ArrayBuffer> | null;
  }
  | { type: "cancel"; id: number }
  | { type: "closed" };
