export const FORMATS = ['table', 'csv', 'json'] as const;
export type Format = (typeof FORMATS)[number];

type Row = Record<string, unknown>;

/** `serialNumber` -> `SERIAL NUMBER`: table headers read as words. CSV and JSON keep the member names. */
export function columnLabel(column: string): string {
  return column.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toUpperCase();
}

/** A list (`fleet devices list`): an aligned table, CSV (RFC 4180 quoting) or a JSON array. */
export function printList(rows: Row[], columns: string[], format: Format): Promise<void> {
  if (format === 'json') return write(`${JSON.stringify(rows, null, 2)}\n`);
  if (format === 'csv') return write(csv(rows, columns));
  if (rows.length === 0) return write('(none)\n');
  return write(table(rows, columns));
}

/** One thing (`fleet devices get`): a one-row table, CSV, or a JSON object. */
export function printObject(row: Row, columns: string[], format: Format): Promise<void> {
  if (format === 'json') return write(`${JSON.stringify(row, null, 2)}\n`);
  return format === 'csv' ? write(csv([row], columns)) : write(table([row], columns));
}

function csv(rows: Row[], columns: string[]): string {
  const lines = [columns, ...rows.map((row) => columns.map((column) => text(row[column])))];
  return `${lines.map((line) => line.map(csvField).join(',')).join('\n')}\n`;
}

function table(rows: Row[], columns: string[]): string {
  const cells = rows.map((row) => columns.map((column) => text(row[column])));
  const labels = columns.map(columnLabel);
  const widths = labels.map((label, i) =>
    Math.max(label.length, ...cells.map((line) => (line[i] as string).length)),
  );
  return `${[labels, ...cells].map((line) => alignedLine(line, widths)).join('\n')}\n`;
}

function alignedLine(cells: string[], widths: number[]): string {
  return cells
    .map((cell, i) => cell.padEnd(widths[i] ?? 0))
    .join('  ')
    .trimEnd();
}

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/**
 * Resolves once the text is handed to the operating system: a token counts as delivered only then.
 * A closed or failing stdout (EPIPE, a full disk) rejects (main.ts keeps it from being an unhandled
 * 'error' event).
 */
export function write(chunk: string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(chunk, (error) => (error ? reject(error) : resolve()));
  });
}

/**
 * Rows written as they arrive, so that whatever was written stays usable if the run stops: CSV rows
 * after one header line; a JSON array with one element per line, closed by `close()` on every exit
 * the CLI controls (a run killed outright leaves the array open, each element still on a line of its
 * own); a table whose column widths are fixed up front.
 */
export class StreamingRows {
  private started = false;

  constructor(
    private readonly format: Format,
    private readonly columns: string[],
    /** For tables: the widest value each column will hold. */
    private readonly widths: number[] = [],
  ) {}

  async add(rows: Row[]): Promise<void> {
    if (rows.length === 0) return;
    const lines = rows.map((row) => this.line(row));
    const separator = this.format === 'json' ? ',\n' : '\n';
    const head = this.started ? (this.format === 'json' ? ',\n' : '') : this.head();
    await write(`${head}${lines.join(separator)}${this.format === 'json' ? '' : '\n'}`);
    this.started = true;
  }

  /** Ends the output: closes the JSON array; a CSV with no rows still gets its header. */
  async close(): Promise<void> {
    if (this.format === 'json') await write(this.started ? '\n]\n' : '[]\n');
    else if (this.format === 'csv' && !this.started) await write(`${this.columns.join(',')}\n`);
  }

  private head(): string {
    if (this.format === 'json') return '[\n';
    if (this.format === 'csv') return `${this.columns.join(',')}\n`;
    return `${alignedLine(this.columns.map(columnLabel), this.tableWidths())}\n`;
  }

  private line(row: Row): string {
    if (this.format === 'json') return JSON.stringify(row);
    const cells = this.columns.map((column) => text(row[column]));
    if (this.format === 'csv') return cells.map(csvField).join(',');
    return alignedLine(cells, this.tableWidths());
  }

  private tableWidths(): number[] {
    return this.columns.map((column, i) => Math.max(columnLabel(column).length, this.widths[i] ?? 0));
  }
}

/** A progress bar on stderr (stdout stays clean for redirection); one line per step when not a terminal. */
export function progress(label: string, total: number): { tick(done: number): void; end(): void } {
  const tty = process.stderr.isTTY === true;
  let drawn = false;
  const draw = (done: number) => {
    const width = 30;
    const filled = Math.round((done / total) * width);
    process.stderr.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`);
    drawn = true;
  };
  return {
    tick: (done) => (tty ? draw(done) : process.stderr.write(`${label}: ${done}/${total}\n`)),
    end: () => {
      if (tty && drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}
