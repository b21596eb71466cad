import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['src/**/*.unit.test.ts', 'sdk/**/*.unit.test.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'integration',
          sequence: { groupOrder: 1 },
          include: [
            'src/**/*.int.test.ts',
            'src/**/*.e2e.test.ts',
            'sdk/**/*.int.test.ts',
            'test/**/*.test.ts',
          ],
          globalSetup: ['src/test-support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          pool: 'forks',
          maxWorkers: 3,
        },
      },
    ],
  },
});
