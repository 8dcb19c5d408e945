/**
 * Ports of the test stacks. Each stack has fixed base ports (see test/globalSetup.ts,
 * test/faults.e2e.test.ts and test/stack.test.ts); `TEST_PORT_OFFSET` (an integer, default 0) shifts all of
 * them, so two checkouts can run their suites on one machine at once, e.g. `TEST_PORT_OFFSET=100 npm test`.
 */

/** The offset from `TEST_PORT_OFFSET`. @throws Error naming the variable when it is not an integer 0-9999. */
export function testPortOffset(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.TEST_PORT_OFFSET ?? '0';
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 9999) throw new Error(`TEST_PORT_OFFSET=${JSON.stringify(raw)}: must be an integer 0-9999`);
  return n;
}

/** `base` shifted by {@link testPortOffset}. */
export function testPort(base: number): number {
  return base + testPortOffset();
}
