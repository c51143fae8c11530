// objects.list matchGlob, matched in time linear in the name for a given pattern, whatever the pattern.
//
// A glob compiled to a backtracking RegExp can take exponential time (`**a**a**a…b` against a long name of
// `a`s), and one request would stall the server. Here the glob becomes a Thompson NFA that is simulated with
// a set of states per character: O(name × pattern) time, O(pattern) memory, no recursion (so deep `{{{…`
// cannot overflow the stack either).
//
// Syntax, as GCS documents it: `*` is any run of characters but `/`, `**` any run including `/`, `**/` zero
// or more whole directories, `?` one character but `/`, `[abc]`, `[a-z]` and `[!a-z]` (or `[^a-z]`) one
// character of (or not of) a set, `{a,b}` either alternative (alternatives nest and may hold any of these).
// A `]` right after `[` or `[!` is a member, `-` first or last is a member. Everything else is literal.

import { invalid } from "./errors.ts";

/** Longer than any glob a name (at most 1024 bytes) needs; bounds the per-name work of a listing. */
export const MAX_GLOB_LENGTH = 1024;

const SLASH = 0x2f;

// State kinds. A character state consumes one code point and goes to `next`; a split goes to `next` and
// `alt` without consuming; `MATCH` accepts.
const LITERAL = 0;
const NOT_SLASH = 1;
const ANY = 2;
const SET = 3;
const SPLIT = 4;
const MATCH = 5;

interface CharSet {
  negated: boolean;
  /** Inclusive [from, to] code point pairs. */
  ranges: number[];
}

/** A partly built piece of the NFA: its first state and the slots (state * 2 + 0 for next, + 1 for alt) still to point onward. */
interface Fragment {
  start: number;
  outs: number[];
}

export class GlobMatcher {
  readonly #kind: number[] = [];
  readonly #value: number[] = [];
  readonly #next: number[] = [];
  readonly #alt: number[] = [];
  readonly #sets: CharSet[] = [];
  readonly #start: number;
  // Scratch for matching, reused across names: state lists and the "already added in step n" marks.
  #current: Int32Array = new Int32Array(0);
  #following: Int32Array = new Int32Array(0);
  #marks: Int32Array = new Int32Array(0);
  #stack: Int32Array = new Int32Array(0);
  #step = 0;

  constructor(glob: string) {
    if (glob.length > MAX_GLOB_LENGTH)
      throw invalid(`Invalid matchGlob: longer than ${MAX_GLOB_LENGTH} characters`);
    this.#start = this.#compile(glob);
    const n = this.#kind.length;
    this.#current = new Int32Array(n);
    this.#following = new Int32Array(n);
    this.#marks = new Int32Array(n);
    this.#stack = new Int32Array(2 * n + 2);
  }

  #state(kind: number, value = 0): number {
    this.#kind.push(kind);
    this.#value.push(value);
    this.#next.push(-1);
    this.#alt.push(-1);
    return this.#kind.length - 1;
  }

  #patch(outs: readonly number[], target: number): void {
    for (const slot of outs) {
      if (slot % 2 === 0) this.#next[slot / 2] = target;
      else this.#alt[(slot - 1) / 2] = target;
    }
  }

  #empty(): Fragment {
    const s = this.#state(SPLIT);
    return { start: s, outs: [2 * s] };
  }

  #append(seq: Fragment, piece: Fragment): void {
    this.#patch(seq.outs, piece.start);
    seq.outs = piece.outs;
  }

  #char(kind: number, value = 0): Fragment {
    const s = this.#state(kind, value);
    return { start: s, outs: [2 * s] };
  }

  /** Zero or more of one character state: `*` and `**`. */
  #repeat(kind: number): Fragment {
    const loop = this.#state(SPLIT);
    const step = this.#state(kind);
    this.#next[loop] = step;
    this.#next[step] = loop;
    return { start: loop, outs: [2 * loop + 1] };
  }

  /** `**​/`: nothing, or any characters ending in `/`. */
  #directories(): Fragment {
    const skip = this.#state(SPLIT);
    const loop = this.#state(SPLIT);
    const any = this.#state(ANY);
    const slash = this.#state(LITERAL, SLASH);
    this.#next[skip] = loop;
    this.#next[loop] = any;
    this.#alt[loop] = slash;
    this.#next[any] = loop;
    return { start: skip, outs: [2 * skip + 1, 2 * slash] };
  }

  #alternation(alternatives: readonly Fragment[]): Fragment {
    const outs: number[] = [];
    for (const a of alternatives) outs.push(...a.outs);
    let start = alternatives.at(-1)!.start;
    for (let i = alternatives.length - 2; i >= 0; i--) {
      const split = this.#state(SPLIT);
      this.#next[split] = alternatives[i]!.start;
      this.#alt[split] = start;
      start = split;
    }
    return { start, outs };
  }

  #compile(glob: string): number {
    const fail = () => invalid(`Invalid matchGlob: ${glob}`);
    const cps = Array.from(glob, (ch) => ch.codePointAt(0)!);
    // Open braces: the sequence being built around each, and the alternatives finished inside it.
    const open: { outer: Fragment; alternatives: Fragment[] }[] = [];
    let seq = this.#empty();
    for (let i = 0; i < cps.length; i++) {
      const c = cps[i]!;
      if (c === 0x2a /* * */) {
        if (cps[i + 1] === 0x2a) {
          i++;
          if (cps[i + 1] === SLASH) {
            i++;
            this.#append(seq, this.#directories());
          } else this.#append(seq, this.#repeat(ANY));
        } else this.#append(seq, this.#repeat(NOT_SLASH));
      } else if (c === 0x3f /* ? */) this.#append(seq, this.#char(NOT_SLASH));
      else if (c === 0x5b /* [ */) {
        const set: CharSet = { negated: false, ranges: [] };
        let j = i + 1;
        if (cps[j] === 0x21 /* ! */ || cps[j] === 0x5e /* ^ */) {
          set.negated = true;
          j++;
        }
        const first = j;
        for (;;) {
          const from = cps[j];
          if (from === undefined) throw fail();
          if (from === 0x5d /* ] */ && j > first) break;
          if (cps[j + 1] === 0x2d /* - */ && cps[j + 2] !== undefined && cps[j + 2] !== 0x5d) {
            const to = cps[j + 2]!;
            if (to < from) throw fail();
            set.ranges.push(from, to);
            j += 3;
          } else {
            set.ranges.push(from, from);
            j++;
          }
        }
        this.#sets.push(set);
        this.#append(seq, this.#char(SET, this.#sets.length - 1));
        i = j;
      } else if (c === 0x7b /* { */) {
        open.push({ outer: seq, alternatives: [] });
        seq = this.#empty();
      } else if (c === 0x2c /* , */ && open.length > 0) {
        open.at(-1)!.alternatives.push(seq);
        seq = this.#empty();
      } else if (c === 0x7d /* } */ && open.length > 0) {
        const { outer, alternatives } = open.pop()!;
        alternatives.push(seq);
        this.#append(outer, this.#alternation(alternatives));
        seq = outer;
      } else this.#append(seq, this.#char(LITERAL, c));
    }
    if (open.length > 0) throw fail();
    this.#patch(seq.outs, this.#state(MATCH));
    return seq.start;
  }

  #accepts(state: number, c: number): boolean {
    switch (this.#kind[state]) {
      case LITERAL:
        return c === this.#value[state];
      case NOT_SLASH:
        return c !== SLASH;
      case ANY:
        return true;
      default: {
        const { negated, ranges } = this.#sets[this.#value[state]!]!;
        let member = false;
        for (let k = 0; k < ranges.length && !member; k += 2) member = c >= ranges[k]! && c <= ranges[k + 1]!;
        return member !== negated;
      }
    }
  }

  /** Adds `state` and everything it reaches without consuming to `list`; returns the new length, negated if MATCH was reached. */
  #close(list: Int32Array, length: number, state: number): number {
    const stack = this.#stack;
    let top = 0;
    let matched = false;
    stack[top++] = state;
    while (top > 0) {
      const s = stack[--top]!;
      if (s < 0 || this.#marks[s] === this.#step) continue;
      this.#marks[s] = this.#step;
      const kind = this.#kind[s];
      if (kind === SPLIT) {
        stack[top++] = this.#alt[s]!;
        stack[top++] = this.#next[s]!;
      } else if (kind === MATCH) matched = true;
      else list[length++] = s;
    }
    return matched ? -length - 1 : length;
  }

  test(name: string): boolean {
    // Marks hold step numbers; start over long before the counter could wrap.
    if (this.#step > 2 ** 30) {
      this.#marks.fill(0);
      this.#step = 0;
    }
    this.#step++;
    let current = this.#current;
    let following = this.#following;
    let length = this.#close(current, 0, this.#start);
    let matched = length < 0;
    if (matched) length = -length - 1;
    for (const ch of name) {
      if (length === 0) return false;
      const c = ch.codePointAt(0)!;
      this.#step++;
      let nextLength = 0;
      matched = false;
      for (let k = 0; k < length; k++) {
        const s = current[k]!;
        if (!this.#accepts(s, c)) continue;
        nextLength = this.#close(following, nextLength, this.#next[s]!);
        if (nextLength < 0) {
          matched = true;
          nextLength = -nextLength - 1;
        }
      }
      const swap = current;
      current = following;
      following = swap;
      length = nextLength;
    }
    return matched;
  }
}
