/**
 * The workflow id convention of the pipeline, in one place: the id of a run, of the per-video child
 * workflow and of the cancel helper child, and how a run id is read back.
 *
 * Ids are built from a tenant id (`[A-Za-z0-9][A-Za-z0-9_-]{0,62}`, src/validation.ts `TENANT_ID_PATTERN`)
 * and GUIDs (`[a-z0-9][a-z0-9-]{0,63}`, `GUID_PATTERN`). Both may contain `-` and neither may contain `:`,
 * so the parts are joined with {@link ID_SEPARATOR} `:` and every id maps back to exactly one
 * (tenant, run[, video]):
 *
 * | workflow | id |
 * |---|---|
 * | `trainPipeline` | `train-pipeline:{tenantId}:{runGuid}` |
 * | `processVideo` | `train-pipeline:{tenantId}:{runGuid}:video:{videoGuid}` |
 * | `requestCancellation` | `train-pipeline:{tenantId}:{runGuid}:cancel` |
 * | `trackSegment` | `train-pipeline:{tenantId}:{runGuid}:video:{videoGuid}:segment:{index}` |
 *
 * The four forms differ in their number of separators (2, 4, 3, 6), so no run id equals a child id either.
 * Executions started before this convention used `-` as the separator (`train-pipeline-{tenantId}-{runGuid}`,
 * `{runId}-video-{videoGuid}`, `{runId}-cancel`), which let two tenants' ids coincide (tenant `acme`, run
 * `x-r1` and tenant `acme-x`, run `r1`); the `legacy*` helpers rebuild those ids for such executions only
 * (src/workflows/trainPipeline.ts decides with the patching API).
 *
 * Workflow-safe: pure string work.
 */
import { invalidInput } from '../errors';
import { assertGuid, assertTenantId, GUID_PATTERN, TENANT_ID_PATTERN } from '../validation';

/** First part of every pipeline workflow id. */
export const WORKFLOW_ID_PREFIX = 'train-pipeline';

/** Separator between the parts of an id: a character that neither tenant ids nor GUIDs may contain. */
export const ID_SEPARATOR = ':';

/**
 * Patch id (patching API, https://docs.temporal.io/develop/typescript/versioning) under which `trainPipeline`
 * uses the `:`-separated ids for its children and reads only the `:` form of its own id. Executions whose
 * history lacks the marker keep the legacy ids.
 */
export const PATCH_UNAMBIGUOUS_IDS = 'unambiguous-workflow-ids';

/**
 * Workflow id of a run: `train-pipeline:{tenantId}:{runGuid}`.
 * @throws PipelineError(InvalidInput) when `tenantId` or `runGuid` breaks its pattern (an id built from
 *   them could be ambiguous).
 */
export function runWorkflowId(tenantId: string, runGuid: string): string {
  assertTenantId(tenantId);
  assertGuid(runGuid, 'runGuid');
  return [WORKFLOW_ID_PREFIX, tenantId, runGuid].join(ID_SEPARATOR);
}

/**
 * Workflow id of the child that processes video `videoGuid` of the run with workflow id `runId`:
 * `{runId}:video:{videoGuid}`.
 * @throws PipelineError(InvalidInput) when `videoGuid` breaks the GUID pattern.
 */
export function videoWorkflowId(runId: string, videoGuid: string): string {
  assertGuid(videoGuid, 'videoGuid');
  return [runId, 'video', videoGuid].join(ID_SEPARATOR);
}

/**
 * Workflow id of the child that tracks segment `index` (0-based) of the video whose `processVideo` has workflow
 * id `videoId`: `{videoId}:segment:{index}`.
 * @throws PipelineError(InvalidInput) when `index` is not a non-negative integer.
 */
export function segmentWorkflowId(videoId: string, index: number): string {
  if (!Number.isInteger(index) || index < 0) throw invalidInput('segment index', `${index} is not a non-negative integer`);
  return [videoId, 'segment', String(index)].join(ID_SEPARATOR);
}

/** Workflow id of the helper child that cancels the run `runId` natively on its behalf: `{runId}:cancel`. */
export function cancelHelperWorkflowId(runId: string): string {
  return [runId, 'cancel'].join(ID_SEPARATOR);
}

/**
 * Reads a run's workflow id back.
 * @returns the tenant id and run GUID of a conventional run id `train-pipeline:{tenantId}:{runGuid}`;
 *   `undefined` for anything else (another prefix, a child's id, a legacy `-` id, parts breaking their pattern).
 */
export function parseRunWorkflowId(workflowId: string): { tenantId: string; runGuid: string } | undefined {
  const parts = workflowId.split(ID_SEPARATOR);
  if (parts.length !== 3 || parts[0] !== WORKFLOW_ID_PREFIX) return undefined;
  const [, tenantId, runGuid] = parts;
  if (!TENANT_ID_PATTERN.test(tenantId) || !GUID_PATTERN.test(runGuid)) return undefined;
  return { tenantId, runGuid };
}

/** Whether `workflowId` uses the namespace of conventional ids (`train-pipeline:` followed by anything). */
export function isConventionalWorkflowId(workflowId: string): boolean {
  return workflowId.startsWith(WORKFLOW_ID_PREFIX + ID_SEPARATOR);
}

/**
 * Checks that a `trainPipeline` execution with workflow id `workflowId` may run tenant `tenantId`'s run
 * `runGuid`: an id in the conventional namespace (`train-pipeline:...`) must be exactly
 * {@link runWorkflowId}`(tenantId, runGuid)`, so that an id always names the run it holds and no execution can
 * occupy another run's (or another run's child's) id. Other ids (not conventional) are accepted as they are.
 * @throws PipelineError(InvalidInput) naming the workflow id and the id the input calls for.
 */
export function assertWorkflowIdMatches(workflowId: string, tenantId: string, runGuid: string): void {
  if (!isConventionalWorkflowId(workflowId)) return;
  const expected = runWorkflowId(tenantId, runGuid);
  if (workflowId !== expected) {
    throw invalidInput(`workflowId ${JSON.stringify(workflowId)}`, `ids starting with "${WORKFLOW_ID_PREFIX}${ID_SEPARATOR}" are reserved for runs; this input (tenantId ${tenantId}, runGuid ${runGuid}) must run as ${expected}`);
  }
}

/** Legacy (`-`-separated) child id of executions started before {@link PATCH_UNAMBIGUOUS_IDS}. */
export function legacyVideoWorkflowId(runId: string, videoGuid: string): string {
  return `${runId}-video-${videoGuid}`;
}

/** Legacy cancel helper id of executions started before {@link PATCH_UNAMBIGUOUS_IDS}. */
export function legacyCancelHelperWorkflowId(runId: string): string {
  return `${runId}-cancel`;
}

/**
 * Run GUID embedded in a legacy run id `train-pipeline-{tenantId}-{runGuid}` for a known `tenantId`, as
 * executions started before {@link PATCH_UNAMBIGUOUS_IDS} read it (kept for them only: the legacy form is
 * ambiguous across tenants). `undefined` when the id does not have that form.
 */
export function legacyRunGuidOf(workflowId: string, tenantId: string): string | undefined {
  const prefix = `${WORKFLOW_ID_PREFIX}-${tenantId}-`;
  const rest = workflowId.startsWith(prefix) ? workflowId.slice(prefix.length) : undefined;
  return rest !== undefined && GUID_PATTERN.test(rest) ? rest : undefined;
}
