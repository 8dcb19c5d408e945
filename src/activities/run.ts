/**
 * Run bookkeeping activities: the start and end records of `.pipeline_info.json` (SPEC section 5).
 */
import { RunLayout } from '../storage/layout';
import type { RunRecord } from '../workflows/types';
import type { ActivityDeps } from './context';

/** Creates the run bookkeeping activities over `deps`. */
export function createRunActivities(deps: ActivityDeps) {
  return {
    /**
     * Writes the start record: inputs, options, videos, status `running`, workflow id, code version, model
     * name and sha256. Keeps per-step entries that a previous attempt already wrote.
     * @returns the bucket and the run's output prefix, for the run summary.
     */
    async recordRunStart(record: RunRecord): Promise<{ bucket: string; outputPrefix: string }> {
      const layout = new RunLayout(record.tenantId, record.runGuid);
      const model = record.options ? await deps.modelInfo(record.options.detector.model).catch(() => undefined) : undefined;
      await deps.store.updateJson<Record<string, unknown>>(layout.pipelineInfo, (cur) => ({
        ...(cur ?? {}),
        tenantId: record.tenantId,
        runGuid: record.runGuid,
        workflowId: record.workflowId,
        status: 'running',
        input: record.input,
        options: record.options,
        videos: record.videos,
        codeVersion: deps.codeVersion,
        model: model ? { name: model.name, sha256: model.sha256 } : undefined,
        startedAt: (cur?.startedAt as string | undefined) ?? new Date().toISOString(),
        updatedAt: new Date().toISOString(),
      }));
      return { bucket: deps.store.bucket, outputPrefix: `gs://${deps.store.bucket}/${layout.prefix}` };
    },

    /**
     * Writes the final status (completed, failed or cancelled) with the error or cancellation and the
     * summary. Written last, so a run that did not
     * complete never looks complete.
     */
    async recordRunEnd(record: RunRecord): Promise<void> {
      const layout = new RunLayout(record.tenantId, record.runGuid);
      await deps.store.updateJson<Record<string, unknown>>(layout.pipelineInfo, (cur) => ({
        ...(cur ?? { tenantId: record.tenantId, runGuid: record.runGuid, workflowId: record.workflowId, input: record.input, codeVersion: deps.codeVersion }),
        status: record.status,
        error: record.error,
        cancellation: record.cancellation,
        summary: record.summary,
        finishedAt: new Date().toISOString(),
        updatedAt: new Date().toISOString(),
      }));
    },
  };
}
