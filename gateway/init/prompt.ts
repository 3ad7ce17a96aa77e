// Questions on a terminal, for `gateway init`: one line each, with the default in brackets and the
// choices listed; an answer that does not pass its check is asked again (5 times at most), and the
// end of the input is an error, not an endless wait.
import { createInterface } from 'node:readline/promises';

export interface Question {
  /** Shown as `text [default]: `. */
  text: string;
  default?: string | undefined;
  choices?: readonly string[] | undefined;
  /** Why the answer is refused, or undefined to take it. */
  check?: ((answer: string) => string | undefined) | undefined;
  /** An empty answer is taken as empty (no default and no choice needed). */
  optional?: boolean | undefined;
}

export interface Prompter {
  ask(q: Question): Promise<string>;
  close(): void;
}

/** Thrown when the input ends or an answer is refused too often: the command ends with exit 2. */
export class NoAnswer extends Error {
  override name = 'NoAnswer';
}

const TRIES = 5;

export function createPrompter(input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Prompter {
  const rl = createInterface({ input, output, terminal: false });
  // Lines typed ahead (or piped in) wait here for their question; readline would drop them otherwise.
  const lines: string[] = [];
  let ended = false;
  let waiter: (() => void) | undefined;
  rl.on('line', (line) => {
    // A line longer than any answer is someone's paste gone wrong: cut, never kept whole.
    lines.push(line.slice(0, 4096));
    waiter?.();
  });
  rl.on('close', () => {
    ended = true;
    waiter?.();
  });
  const nextLine = async (): Promise<string> => {
    while (lines.length === 0) {
      if (ended) throw new NoAnswer('the input ended before every question was answered');
      await new Promise<void>((resolve) => (waiter = resolve));
      waiter = undefined;
    }
    return lines.shift()!;
  };
  return {
    async ask(q) {
      const choices = q.choices && q.choices.length > 0 ? ` (${q.choices.join(', ')})` : '';
      for (let tries = 0; tries < TRIES; tries++) {
        output.write(`${q.text}${choices}${q.default !== undefined ? ` [${q.default}]` : ''}: `);
        const answer = (await nextLine()).trim() || q.default || '';
        if (answer === '' && q.optional) return '';
        const why =
          answer === ''
            ? 'an answer is needed'
            : q.choices && q.choices.length > 0 && !q.choices.includes(answer)
              ? `one of ${q.choices.join(', ')}`
              : q.check?.(answer);
        if (why === undefined) return answer;
        output.write(`  ${why}\n`);
      }
      throw new NoAnswer(`no acceptable answer to "${q.text}" in ${TRIES} tries`);
    },
    close: () => rl.close(),
  };
}
