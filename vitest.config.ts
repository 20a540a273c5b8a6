import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Checks every AWS action the tests called against docs/iam-policy.json when the run ends.
    globalSetup: ['test/support/aws-actions.ts'],
    // Tests start their own moto_server and talk to the machine's RabbitMQ and PostgreSQL:
    // generous timeouts, and one file per worker so ports and queues never collide. Three workers on the
    // two cores of the CI machine: much of a file's time is spent waiting (emulated clouds' pending
    // states, slow hosts, simulated days), and two left a core idle about half the run.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 3,
  },
});
