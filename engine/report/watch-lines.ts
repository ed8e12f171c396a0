// Watch mode's events as plain lines, shared by the plain reporter's output and the live view.
import { formatDiagnostic } from '../errors.ts';
import type { BuildEvent } from '../events.ts';

export interface Line {
  text: string;
  /** Goes to stderr in plain mode. */
  err?: boolean;
}

const list = (xs: string[], max = 6) => (xs.length <= max ? xs.join(', ') : `${xs.slice(0, max).join(', ')} (+${xs.length - max} more)`);

export function watchLines(e: BuildEvent): Line[] {
  switch (e.type) {
    case 'watch-ready':
      return [{ text: `hubmake: watching ${e.files} file${e.files === 1 ? '' : 's'} and ${e.directories} director${e.directories === 1 ? 'y' : 'ies'} (${e.watches} watches); waiting for changes (Ctrl-C to stop)` }];
    case 'watch-change': {
      const paths = list(e.paths, 4) + (e.more ? ` (+${e.more} more)` : '');
      const what = [e.targets.length ? `inputs of ${list(e.targets)}` : '', e.reload ? 'the targets module or its configuration' : ''].filter(Boolean).join(' and ');
      return [{ text: `hubmake: changed ${paths}: ${what}${e.queued ? '; building after the running build' : ''}` }];
    }
    case 'watch-cancel':
      return [{ text: `hubmake: cancelled ${e.target}: its inputs changed while it ran; it starts again` }];
    case 'watch-reload': {
      const parts = [`${e.targets} targets`];
      if (e.added.length) parts.push(`new: ${list(e.added)}`);
      if (e.removed.length) parts.push(`gone: ${list(e.removed)}`);
      return [{ text: `hubmake: reloaded the targets module (${parts.join('; ')})` }];
    }
    case 'watch-reload-error':
      return [
        { text: 'hubmake: the targets module failed to reload; still watching with the last good graph', err: true },
        ...e.diagnostics.map((d) => ({ text: `hubmake: error: ${formatDiagnostic(d)}`, err: true })),
      ];
    default:
      return [];
  }
}
