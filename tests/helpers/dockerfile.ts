// A Dockerfile read as a container engine reads it: stages and their instructions.

export interface Instruction {
  line: number;
  op: string;
  args: string;
}

/** Instructions by stage: continuation lines joined, comments and parser directives dropped. */
export function parseDockerfile(text: string): Array<{ from: string; name?: string; instructions: Instruction[] }> {
  const stages: Array<{ from: string; name?: string; instructions: Instruction[] }> = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!;
    const start = n + 1;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.trimEnd().endsWith('\\')) {
      line = `${line.trimEnd().slice(0, -1)} `;
      n++;
      // Comment lines inside a continued instruction are dropped, as the engine does.
      while (n < lines.length && /^\s*#/.test(lines[n]!)) n++;
      line += (lines[n] ?? '').trim();
    }
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile:${start}: not an instruction: ${line}`);
    const op = m[1]!.toUpperCase();
    const args = m[2]!.trim();
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args);
      if (!f) throw new Error(`Dockerfile:${start}: FROM ${args}`);
      stages.push({ from: f[1]!, ...(f[2] ? { name: f[2] } : {}), instructions: [] });
      continue;
    }
    if (stages.length === 0) throw new Error(`Dockerfile:${start}: ${op} before FROM`);
    stages.at(-1)!.instructions.push({ line: start, op, args });
  }
  return stages;
}
