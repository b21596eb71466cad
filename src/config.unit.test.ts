import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    expect(loadConfig({})).toMatchObject({
      port: 8230,
      host: '0.0.0.0',
      databaseUrl: undefined,
      dataDir: './data',
      logLevel: 'info',
      batchMaxEvents: 1000,
      bodyLimitBytes: 10 * 1024 * 1024,
    });
  });
  it('reports every bad value with its name', () => {
    try {
      loadConfig({ PORT: 'abc', BATCH_MAX_EVENTS: '0', LOG_LEVEL: 'loud', DATABASE_URL: 'mysql://x' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      const message = (error as Error).message;
      for (const name of ['PORT', 'BATCH_MAX_EVENTS', 'LOG_LEVEL', 'DATABASE_URL'])
        expect(message).toContain(name);
    }
  });
  it('is frozen', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });
});
