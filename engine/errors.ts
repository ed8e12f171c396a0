// Declaration and usage errors are values with a target, a field and a hint, so that the same
// error reads well on a terminal, in JSON and in a summary. Both end a build with exit 2.

export interface Diagnostic {
  /** The target the problem belongs to, when there is one. */
  target?: string;
  /** The spec field (e.g. `outputs[1]`) or option at fault. */
  field?: string;
  message: string;
  /** What to do about it. */
  hint?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = [d.target && `target '${d.target}'`, d.field && `field '${d.field}'`].filter(Boolean).join(', ');
  return `${where ? `${where}: ` : ''}${d.message}${d.hint ? `\n  hint: ${d.hint}` : ''}`;
}

/** A problem in the targets module or the command line: exit 2, nothing changed on disk. */
export class DeclarationError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic | Diagnostic[]) {
    const list = Array.isArray(diagnostics) ? diagnostics : [diagnostics];
    super(list.map(formatDiagnostic).join('\n'));
    this.name = 'DeclarationError';
    this.diagnostics = list;
  }
}

