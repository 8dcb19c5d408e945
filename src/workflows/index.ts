/**
 * Workflow entry point for the worker bundle (`workflowsPath`): every workflow type the workers serve.
 */
export { requestCancellation, trainPipeline } from './trainPipeline';
export { processVideo } from './processVideo';
export { trackSegment } from './trackSegment';
