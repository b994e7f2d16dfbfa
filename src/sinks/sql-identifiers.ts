/** Identifiers are validated by the config schema and always quoted; values only ever travel as parameters. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `schema.table` or `table` → quoted, with the schema defaulting to the connection's search path. */
export function quoteTable(name: string): string {
  return name.split('.').map(quoteIdentifier).join('.');
}
