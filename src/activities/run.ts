/**
 * Run bookkeeping activities: the start and end records of `.pipeline_info.json` (docs/ARCHITECTURE.md
 * "Stored artifacts").
 */
import { toApplicationFailure } from '../errors';
import { pipelineInfoSchema, updateArtifact, type StepStatus } from '../storage/artifacts';
import { RunLayout } from '../storage/layout';
import { optionsSchema, type TrainPipelineInput } from '../validation';
import type { RunRecord, RunStartRecord } from '../workflows/types';
import type { ActivityDeps } from './deps';

/** Runs `fn`, rethrowing any error classified by `toApplicationFailure` (src/errors.ts). */
async function classified<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toApplicationFailure(err);
  }
}

/**
 * The options and videos (GUID and source) that `.pipeline_info.json` records for a start record: derived
 * from its input for a {@link RunStartRecord}; taken as given from the `RunRecord` that executions started
 * before `RunStartRecord` existed send (their retries may reach this code).
 * @throws ZodError (classified as Internal) if the input's options do not parse, which the workflow's
 *   validation has ruled out.
 */
function startDetails(record: RunStartRecord | RunRecord): Pick<RunRecord, 'options' | 'videos'> {
  if (!('videoGuids' in record)) return { options: record.options, videos: record.videos };
  const input = record.input as TrainPipelineInput;
  return {
    options: optionsSchema.parse(input.options ?? {}),
    videos: record.videoGuids.map((videoGuid, i) => ({ videoGuid, source: input.videos[i].source })),
  };
}

/** Creates the run bookkeeping activities over `deps`. */
export function createRunActivities(deps: ActivityDeps) {
  return {
    /**
     * Writes the start record: inputs, options, videos, status `running`, workflow id, code version, model
     * name and sha256. Keeps per-step entries that a previous attempt already wrote.
     * @returns the bucket and the run's output prefix, for the run summary.
     * @throws ApplicationFailure classified by src/errors.ts (InvalidInput for identifiers that break their
     *   pattern, Transient for storage faults).
     */
    async recordRunStart(record: RunStartRecord | RunRecord): Promise<{ bucket: string; outputPrefix: string }> {
      return classified(async () => {
        const layout = new RunLayout(record.tenantId, record.runGuid);
        const { options, videos } = startDetails(record);
        const model = options ? await deps.modelInfo(options.detector.model).catch(() => undefined) : undefined;
        await updateArtifact(deps.store, layout.pipelineInfo, pipelineInfoSchema, (cur) => ({
          ...(cur ?? {}),
          tenantId: record.tenantId,
          runGuid: record.runGuid,
          workflowId: record.workflowId,
          status: 'running' as const,
          input: record.input,
          options,
          videos,
          codeVersion: deps.codeVersion,
          model: model ? { name: model.name, sha256: model.sha256 } : undefined,
          startedAt: (cur?.startedAt as string | undefined) ?? new Date().toISOString(),
          updatedAt: new Date().toISOString(),
        }));
        return { bucket: deps.store.bucket, outputPrefix: `gs://${deps.store.bucket}/${layout.prefix}` };
      });
    },

    /**
     * Writes the final status (completed, failed or cancelled) with the error or cancellation and the
     * summary. Written last, so a run that did not
     * complete never looks complete. Step entries still `retrying` or `running` get their final status
     * ({@link finaliseSteps}).
     * @throws ApplicationFailure classified by src/errors.ts (InvalidInput for identifiers that break their
     *   pattern: never retried; Transient for storage faults).
     */
    async recordRunEnd(record: RunRecord): Promise<void> {
      return classified(async () => {
        const layout = new RunLayout(record.tenantId, record.runGuid);
        await updateArtifact(deps.store, layout.pipelineInfo, pipelineInfoSchema, (cur) => ({
          ...(cur ?? { tenantId: record.tenantId, runGuid: record.runGuid, workflowId: record.workflowId, input: record.input, codeVersion: deps.codeVersion }),
          ...(cur?.steps ? { steps: finaliseSteps(cur.steps, record) } : {}),
          status: record.status,
          error: record.error,
          cancellation: record.cancellation,
          summary: record.summary,
          finishedAt: new Date().toISOString(),
          updatedAt: new Date().toISOString(),
        }));
      });
    },
  };
}

/** `steps` of `.pipeline_info.json`: video GUID → step name → the step's last recorded status entry. */
type StepEntries = Record<string, Record<string, StepStatus>>;

/** Step statuses that say an attempt may still come: they must not outlive the run. */
const OPEN_STEP_STATUSES = new Set(['retrying', 'running']);

/**
 * The step entries of a run that has ended, with every entry still `retrying` or `running` (the last
 * attempt failed retryably, or its worker vanished, and no attempt will come now) given its final status:
 * `cancelled` when the run or its video was cancelled, `completed` when its video completed (the entry was
 * left by an abandoned attempt), else `failed`. The entry keeps its last attempt's `error` (e.g. the
 * "no space left on device" that made it retry), a failed one without its own error gets the run's, and
 * `lastAttemptStatus` keeps what the entry said before. Other entries are returned unchanged.
 */
export function finaliseSteps(steps: StepEntries, record: RunRecord): StepEntries {
  if (record.status === 'running') return steps;
  const videoStatus = new Map((record.summary?.videos ?? []).map((v) => [v.videoGuid, v.status]));
  const finishedAt = new Date().toISOString();
  return Object.fromEntries(
    Object.entries(steps).map(([videoGuid, byStep]) => [
      videoGuid,
      Object.fromEntries(
        Object.entries(byStep).map(([name, entry]) => {
          if (!OPEN_STEP_STATUSES.has(String(entry?.status))) return [name, entry];
          const video = videoStatus.get(videoGuid);
          const status = record.status === 'cancelled' || video === 'cancelled' ? 'cancelled' : video === 'completed' ? 'completed' : 'failed';
          const error = entry.error ?? (status === 'failed' ? record.error : undefined);
          return [name, { ...entry, status, lastAttemptStatus: entry.status, finishedAt: entry.finishedAt ?? finishedAt, ...(error ? { error } : {}) }];
        }),
      ),
    ]),
  );
}
