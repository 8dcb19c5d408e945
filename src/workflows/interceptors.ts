/**
 * Workflow interceptors of every pipeline workflow (bundled through `workflowInterceptorModules`, see
 * `bundlePipelineWorkflows` in src/workers/worker.ts): guard the workflows against payloads they cannot decode.
 *
 * The SDK decodes a signal's arguments, and a workflow's input, synchronously while it applies the
 * activation, before any handler or interceptor of the inbound chain runs (`signalWorkflow` and
 * `startWorkflow` in @temporalio/workflow lib/internals.js). A payload the payload converter rejects (an
 * unknown `encoding` such as `binary/garbage`, malformed JSON) therefore fails the workflow task, and since the
 * payload is in the history, every retry fails the same way: the execution stays Running and answers no
 * query. `workflowFailureErrorTypes` / `failureExceptionTypes` do not apply there (they cover errors thrown by
 * the workflow function and its handlers). The internals interceptor below sees the activation first:
 *
 * - a signal with an undecodable argument is dropped from the activation, with a warning in the worker log;
 * - an undecodable workflow input is replaced by `{ [UNDECODABLE_PAYLOAD_KEY]: reason }`, which the workflow's
 *   input validation refuses as InvalidInput (src/validation.ts), so the start fails once.
 *
 * Both are deterministic (they depend on the recorded payloads only), so replays take the same decisions.
 * Payloads are checked with the SDK's default payload converter, which is the one these workers use.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { log, type ActivateInput, type Next, type WorkflowInterceptorsFactory, type WorkflowInternalsInterceptor } from '@temporalio/workflow';
import { UNDECODABLE_PAYLOAD_KEY } from '../validation';

/** Why `payloads` cannot be decoded by the default payload converter, or `undefined` when they can. */
export function undecodableReason(payloads: Payload[] | null | undefined): string | undefined {
  for (const [i, p] of (payloads ?? []).entries()) {
    try {
      defaultPayloadConverter.fromPayload(p);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return `argument ${i}: ${message.slice(0, 200)}`;
    }
  }
  return undefined;
}

/** Drops undecodable signals and marks an undecodable workflow input (see the module comment). */
class UndecodablePayloadGuard implements WorkflowInternalsInterceptor {
  activate(input: ActivateInput, next: Next<WorkflowInternalsInterceptor, 'activate'>): void {
    const jobs = input.activation.jobs;
    if (jobs) {
      for (let i = jobs.length - 1; i >= 0; i--) {
        const signal = jobs[i].signalWorkflow;
        if (signal) {
          const reason = undecodableReason(signal.input as Payload[] | null | undefined);
          if (reason !== undefined) {
            log.warn('signal dropped: its payload cannot be decoded', { signalName: signal.signalName, reason, sender: signal.identity });
            jobs.splice(i, 1);
          }
        }
        const start = jobs[i]?.initializeWorkflow;
        if (start) {
          const reason = undecodableReason(start.arguments as Payload[] | null | undefined);
          if (reason !== undefined) {
            log.warn('workflow input cannot be decoded; the workflow will refuse it', { reason });
            start.arguments = [defaultPayloadConverter.toPayload({ [UNDECODABLE_PAYLOAD_KEY]: reason })];
          }
        }
      }
    }
    next(input);
  }
}

/** Interceptor factory the SDK calls for each workflow execution. */
export const interceptors: WorkflowInterceptorsFactory = () => ({ internals: [new UndecodablePayloadGuard()] });
