/**
 * Proves, at start-up, that a `connectionConfig` pattern used in a URL host admits nothing but
 * one host label (`^[A-Za-z0-9-]{1,63}$`). Regular-expression inclusion is not decidable in
 * general for JavaScript's syntax, so this reads a plain subset — literals, `[...]` classes of
 * letters, digits and `-`, `\d`, groups, `|`, and the quantifiers `? * + {n} {n,} {n,m}` — and
 * computes which characters and lengths it can produce. Anything outside the subset is refused
 * as "cannot be shown to stay one label". Values are checked against the label rule again at
 * connect and on every resolution, so this is a second wall, not the only one.
 */

interface Shape {
  min: number;
  max: number;
}

class Unsupported extends Error {}

const isLabelChar = (c: number) =>
  (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x2d;

function labelRange(from: number, to: number): boolean {
  const inside = (lo: number, hi: number) => from >= lo && to <= hi;
  return (
    from <= to && (inside(0x30, 0x39) || inside(0x41, 0x5a) || inside(0x61, 0x7a) || (from === 0x2d && to === 0x2d))
  );
}

/** Reads the pattern's source; `pos` moves along it. */
class Reader {
  pos = 0;
  constructor(readonly src: string) {}
  peek(): string | undefined {
    return this.src[this.pos];
  }
  eat(s: string): boolean {
    if (this.src.startsWith(s, this.pos)) {
      this.pos += s.length;
      return true;
    }
    return false;
  }
}

function disjunction(r: Reader): Shape {
  let shape = alternative(r);
  while (r.eat('|')) {
    const next = alternative(r);
    shape = { min: Math.min(shape.min, next.min), max: Math.max(shape.max, next.max) };
  }
  return shape;
}

function alternative(r: Reader): Shape {
  const shape = { min: 0, max: 0 };
  for (let c = r.peek(); c !== undefined && c !== '|' && c !== ')'; c = r.peek()) {
    if (r.eat('^') || r.eat('$')) continue;
    const one = quantified(r, atom(r));
    shape.min += one.min;
    shape.max += one.max;
  }
  return shape;
}

function atom(r: Reader): Shape {
  const c = r.peek();
  if (c === '(') {
    r.pos++;
    if (r.eat('?')) {
      if (!(r.eat(':') || namedGroup(r))) throw new Unsupported('lookarounds');
    }
    const inner = disjunction(r);
    if (!r.eat(')')) throw new Unsupported('an unclosed group');
    return inner;
  }
  if (c === '[') return characterClass(r);
  if (c === '\\') {
    r.pos++;
    const code = escapedChar(r, false);
    if (code === 'digit') return { min: 1, max: 1 };
    if (!isLabelChar(code)) throw new Unsupported('a character outside a host label');
    return { min: 1, max: 1 };
  }
  if (c === undefined || '.*+?{}]'.includes(c)) throw new Unsupported(c === '.' ? '.' : `"${c}"`);
  r.pos += c.length;
  if (!isLabelChar(c.charCodeAt(0))) throw new Unsupported('a character outside a host label');
  return { min: 1, max: 1 };
}

function namedGroup(r: Reader): boolean {
  if (!r.eat('<') || r.peek() === '=' || r.peek() === '!') return false;
  const end = r.src.indexOf('>', r.pos);
  if (end === -1) return false;
  r.pos = end + 1;
  return true;
}

/** After a backslash: `\d`, `\-`, `\uXXXX` or an escaped letter-or-digit; anything else is unsupported. */
function escapedChar(r: Reader, inClass: boolean): number | 'digit' {
  const c = r.peek();
  r.pos++;
  if (c === 'd') return 'digit';
  if (c === '-') return 0x2d;
  if (c === 'u' && /^[0-9A-Fa-f]{4}/.test(r.src.slice(r.pos, r.pos + 4))) {
    const code = parseInt(r.src.slice(r.pos, r.pos + 4), 16);
    r.pos += 4;
    return code;
  }
  throw new Unsupported(inClass ? `\\${c} in a class` : `\\${c}`);
}

function characterClass(r: Reader): Shape {
  r.pos++;
  if (r.eat('^')) throw new Unsupported('a negated class');
  let any = false;
  while (!r.eat(']')) {
    const from = classAtom(r);
    if (from === undefined) throw new Unsupported('an unclosed class');
    if (r.peek() === '-' && r.src[r.pos + 1] !== ']') {
      r.pos++;
      const to = classAtom(r);
      if (from === 'digit' || to === 'digit' || to === undefined) throw new Unsupported('a range with \\d');
      if (!labelRange(from, to)) throw new Unsupported('a range beyond letters, digits or -');
    } else if (from !== 'digit' && !isLabelChar(from)) {
      throw new Unsupported('a character outside a host label');
    }
    any = true;
  }
  if (!any) throw new Unsupported('an empty class');
  return { min: 1, max: 1 };
}

function classAtom(r: Reader): number | 'digit' | undefined {
  const c = r.peek();
  if (c === undefined) return undefined;
  if (c === '\\') {
    r.pos++;
    return escapedChar(r, true);
  }
  r.pos++;
  return c.charCodeAt(0);
}

function quantified(r: Reader, shape: Shape): Shape {
  let min = 1;
  let max = 1;
  if (r.eat('*')) [min, max] = [0, Infinity];
  else if (r.eat('+')) [min, max] = [1, Infinity];
  else if (r.eat('?')) [min, max] = [0, 1];
  else if (r.peek() === '{') {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(r.src.slice(r.pos));
    if (!m) throw new Unsupported('"{"');
    r.pos += m[0].length;
    min = Number(m[1]);
    max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
  } else return shape;
  r.eat('?');
  return { min: shape.min * min, max: shape.max === 0 || max === 0 ? 0 : shape.max * max };
}

/**
 * Why `pattern` (matched against a whole value) could admit something that is not one host
 * label, or undefined when it cannot.
 */
export function hostPatternProblem(pattern: string): string | undefined {
  const why = 'is used in a URL host, so it must admit only 1 to 63 letters, digits or hyphens';
  let shape: Shape;
  try {
    const r = new Reader(pattern);
    shape = disjunction(r);
    if (r.pos !== pattern.length) throw new Unsupported(`"${pattern[r.pos]}"`);
  } catch (err) {
    if (!(err instanceof Unsupported)) throw err;
    return `${why}, written with literals, [A-Za-z0-9-] classes, \\d, groups, | and quantifiers (it has ${err.message})`;
  }
  if (shape.min < 1) return `${why} (it admits the empty string)`;
  if (shape.max > 63) return `${why} (it admits more than 63 characters: bound it, e.g. {1,63})`;
  return undefined;
}
