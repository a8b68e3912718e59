// Plain text for a terminal, shared by every command's output: rows of cells in aligned columns.

/** Columns padded to their widest cell, two spaces apart; `align` per column, left by default. */
export function textTable(rows: string[][], align: Array<'l' | 'r'> = []): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) => r.map((cell, c) => (align[c] === 'r' ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd())
    .join('\n');
}
