/**
 * Arithmetic on {@link StepIo} counters, shared by activities and workflows (pure: safe in workflow code).
 */
import type { StepIo } from './types';

/** Zeroed {@link StepIo}. */
export function emptyIo(): StepIo {
  return { gcsRequests: 0, bytesUploaded: 0, bytesDownloaded: 0, cacheHits: 0, cacheMisses: 0, bytesFromCache: 0, artifactDownloads: 0, uploadsSkipped: 0 };
}

/** Adds the counters of `b` to `a` (in place) and returns `a`. */
export function addIo(a: StepIo, b: Partial<StepIo> | undefined): StepIo {
  if (!b) return a;
  for (const k of Object.keys(a) as (keyof StepIo)[]) a[k] += b[k] ?? 0;
  return a;
}
