export type Format = 'table' | 'json' | 'csv';

/** Writes rows as an aligned table, a JSON array, or CSV (RFC 4180 quoting), to stdout. */
export function printRows(rows: Record<string, unknown>[], columns: string[], format: Format): void {
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const cells = rows.map((row) => columns.map((column) => text(row[column])));
  if (format === 'csv') {
    const lines = [columns, ...cells].map((line) => line.map(csvField).join(','));
    process.stdout.write(`${lines.join('\n')}\n`);
    return;
  }
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const widths = columns.map((column, i) =>
    Math.max(column.length, ...cells.map((line) => (line[i] as string).length)),
  );
  const render = (line: string[]) =>
    line
      .map((cell, i) => cell.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${[render(columns.map((c) => c.toUpperCase())), ...cells.map(render)].join('\n')}\n`);
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A progress bar on stderr (stdout stays clean for redirection); silent when stderr is not a terminal. */
export function progress(label: string, total: number): { tick(done: number): void; end(): void } {
  const tty = process.stderr.isTTY === true;
  const draw = (done: number) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
  };
  return {
    // Not a terminal (a CI log, a pipe): one line per step instead of redrawing.
    tick: (done) => (tty ? draw(done) : process.stderr.write(`${label}: ${done}/${total}\n`)),
    end: () => {
      if (tty) process.stderr.write('\n');
    },
  };
}
