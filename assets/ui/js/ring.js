// A bounded ring of timestamped rows (one time column and N value columns) kept in typed
// arrays, so thousands of agents' last minutes cost little memory and no garbage.

export class Ring {
  /** `columns` value columns, at most `capacity` rows. */
  constructor(capacity, columns) {
    this.capacity = capacity;
    this.times = new Float64Array(capacity);
    this.values = Array.from({ length: columns }, () => new Float32Array(capacity));
    this.start = 0;
    this.length = 0;
  }

  /** The time of the oldest row, or Infinity when empty. */
  get first() {
    return this.length ? this.times[this.start] : Infinity;
  }

  /** The time of the newest row, or -Infinity when empty. */
  get last() {
    return this.length ? this.times[(this.start + this.length - 1) % this.capacity] : -Infinity;
  }

  /** Appends a row (`NaN` for a missing value), dropping the oldest when full. */
  push(time, row) {
    const index = (this.start + this.length) % this.capacity;
    this.times[index] = time;
    row.forEach((value, column) => {
      this.values[column][index] = value ?? NaN;
    });
    if (this.length < this.capacity) this.length += 1;
    else this.start = (this.start + 1) % this.capacity;
  }

  /** Drops rows older than `time`. */
  trim(time) {
    while (this.length && this.times[this.start] < time) {
      this.start = (this.start + 1) % this.capacity;
      this.length -= 1;
    }
  }

  /**
   * uPlot data, oldest first: `[times in seconds, ...columns]` with null for missing values.
   * `columns` picks which value columns (all when omitted).
   */
  toPlot(columns = this.values.map((_, i) => i)) {
    const xs = new Array(this.length);
    const ys = columns.map(() => new Array(this.length));
    for (let i = 0; i < this.length; i += 1) {
      const index = (this.start + i) % this.capacity;
      xs[i] = this.times[index] / 1000;
      columns.forEach((column, c) => {
        const value = this.values[column][index];
        ys[c][i] = Number.isNaN(value) ? null : value;
      });
    }
    return [xs, ...ys];
  }
}
