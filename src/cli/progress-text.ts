/** How progress reads, in a bar or a plain line: counts with separators, durations in a readable unit. */

const count = new Intl.NumberFormat('en-US');

export const formatCount = (n: number): string => count.format(n);

/** 75 s → "1 min 15 s". */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** "replay r-1: 12,000 of 100,000 records (12%), 8,900 records/s, about 10 s left". */
export function progressLine(label: string, unit: string, done: number, total: number, rate: number | undefined, secondsLeft: number | undefined): string {
  const percent = total > 0 ? Math.floor((done / total) * 100) : 100;
  const parts = [`${label}: ${count.format(done)} of ${count.format(total)} ${unit} (${percent}%)`];
  if (rate !== undefined) parts.push(`${count.format(Math.round(rate))} ${unit}/s`);
  if (secondsLeft !== undefined && done < total) parts.push(`about ${duration(secondsLeft)} left`);
  return parts.join(', ');
}
