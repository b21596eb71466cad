import { describe, expect, it } from 'vitest';
import { initialWindow, MAX_WINDOW, nextWindow, pageCursor } from './paging.js';

describe('replay paging', () => {
  it('starts with a window of a few pages', () => {
    expect(initialWindow(1000)).toBe(4000);
  });

  it('keeps the window while pages come back full and grows it while they come back short', () => {
    expect(nextWindow(4000, 1000, 1000)).toBe(4000);
    expect(nextWindow(4000, 999, 1000)).toBe(16_000);
    expect(nextWindow(4000, 0, 1000)).toBe(16_000);
    expect(nextWindow(MAX_WINDOW / 2, 0, 1000)).toBe(MAX_WINDOW);
  });

  it('moves the cursor to the last event of a full page, past the whole window otherwise', () => {
    expect(pageCursor([11, 12, 15], 3, 100)).toBe(15);
    expect(pageCursor([11, 12], 3, 100)).toBe(100);
    expect(pageCursor([], 3, 100)).toBe(100);
  });
});
