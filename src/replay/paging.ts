/**
 * How far each page of a replay reads. Pure.
 *
 * A selection by time range alone is read by position (the primary key) within a window of
 * positions, so that every page query reads at most the window whichever index the planner
 * picks. The window starts at a few pages' worth and grows fourfold while pages come back short
 * (the selection is sparse there: few of the window's positions are selected), so that a sparse
 * stretch of the log costs few queries; it stays as it is while pages come back full.
 */

const INITIAL_PAGES = 4;
const GROWTH = 4;
/** Upper bound of a window, in positions (the planner's choice decides past a few million). */
export const MAX_WINDOW = 2 ** 40;

export function initialWindow(pageSize: number): number {
  return pageSize * INITIAL_PAGES;
}

/** The window of the next page, after a page of `got` events out of at most `pageSize`. */
export function nextWindow(window: number, got: number, pageSize: number): number {
  return got >= pageSize ? window : Math.min(MAX_WINDOW, window * GROWTH);
}

/**
 * What a page read: every selected event at or below the returned cursor is done. A full page
 * stops at its last event (more may follow in the window); a short one covered the whole window.
 */
export function pageCursor(positions: readonly number[], pageSize: number, upTo: number): number {
  return positions.length >= pageSize ? positions[positions.length - 1]! : upTo;
}
