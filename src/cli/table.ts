/**
 * A table as the command line prints it: columns aligned with two spaces, the first left-aligned and the rest (counts
 * and offsets) right-aligned, the header in bold where the terminal shows colours.
 */
import type { Terminal } from './terminal.js';

export function table(out: Terminal, header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 1 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return `${[out.paint('bold', line(header)), ...rows.map(line)].join('\n')}\n`;
}
