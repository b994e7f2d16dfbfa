/**
 * What an output stream of the command line is: a person's terminal (progress bars, colours) or a pipe or a log
 * (plain lines, no escape codes). Colours follow the usual conventions: NO_COLOR turns them off, FORCE_COLOR on
 * (FORCE_COLOR=0 or false off), TERM=dumb off; otherwise a terminal gets them and a pipe does not.
 */
import { styleText } from 'node:util';

export interface OutputStream {
  write(text: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

type Style = 'bold' | 'dim' | 'red' | 'green' | 'yellow' | 'cyan';

export class Terminal {
  /** A person's terminal: progress is redrawn in place. */
  readonly interactive: boolean;
  readonly colour: boolean;

  constructor(
    readonly stream: OutputStream,
    env: NodeJS.ProcessEnv = process.env,
  ) {
    this.interactive = stream.isTTY === true && env.TERM !== 'dumb';
    const force = env.FORCE_COLOR;
    if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') this.colour = false;
    // As Node reads it: set (even empty) is on, unless 0 or false.
    else if (force !== undefined) this.colour = force !== '0' && force !== 'false';
    else this.colour = this.interactive;
  }

  /** `text` in `style` where colours are on; as it is otherwise. */
  paint(style: Style, text: string): string {
    // Decided here, for the stream this writes to (styleText would look at stdout).
    return this.colour ? styleText(style, text, { validateStream: false }) : text;
  }

  write(text: string): void {
    this.stream.write(text);
  }
}

export const stdoutTerminal = (): Terminal => new Terminal(process.stdout);
export const stderrTerminal = (): Terminal => new Terminal(process.stderr);
