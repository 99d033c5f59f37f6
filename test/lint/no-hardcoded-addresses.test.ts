import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

/**
 * Issue 5 §2: nothing under `src/` names a host or a port except documented configuration
 * defaults. This scans the code of every `src/**\/*.ts` (comments are skipped: they document, and
 * examples there configure nothing) for host and port literals and fails on any outside the
 * allow-list below.
 *
 * What counts as a host or port literal:
 *   - an IPv4 address (`a.b.c.d`, each part ≤ 255) in a string: a whole string (except one
 *     starting `0.`, `1.` or `2.`: an ASN.1 object identifier such as X.509's `2.5.29.17`), or
 *     one followed by `:port` or preceded by `//` or `@`;
 *   - the IPv6 loopback `::1`, any `[v6]:port`, and `localhost`, anywhere in a string;
 *   - `name:port` in a string where name is an IP literal or a DNS name with a dot, and `:port`
 *     right after a template substitution (`${host}:9292`);
 *   - a port number (2–5 digits) assigned to a name ending in `port`/`PORT`.
 * Not counted: the unspecified addresses `0.0.0.0` and `::`, which name no host (they mean "any
 * interface" when binding and are refused as registered addresses), and port 0 (the OS picks).
 */

/**
 * Files that may hold address literals, each because it is where a documented default lives.
 * Keep this short: a new default belongs in src/node/config.ts.
 */
const ALLOWED: Readonly<Record<string, string>> = {
  // The node configuration's defaults: listen host, loopback hosts, every default port
  // (docs/node.md "Configuration", docs/architecture.md "Ports").
  'src/node/config.ts': 'the documented configuration defaults',
  // Ports the ACME challenge protocols fix (RFC 8555 §8.3 http-01: 80; RFC 8737 tls-alpn-01:
  // 443); configurable only so tests run unprivileged (docs/acme.md).
  'src/faces/acme/challenge-ports.ts': 'protocol-defined ACME validation ports',
};

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** One string literal (or template literal chunk) of the code, with its line. */
interface Literal {
  readonly line: number;
  readonly text: string;
}

/**
 * Splits TypeScript source into code (comments blanked, strings blanked) and its string
 * literals. A small lexer: line and block comments, '…', "…" and `…` with `${…}` (nested to any
 * depth), and regular expression literals after an operator or keyword, so `//` inside a string
 * or a regex is not taken for a comment.
 */
export function lex(source: string): { code: string; literals: Literal[] } {
  let code = '';
  const literals: Literal[] = [];
  let line = 1;
  let i = 0;
  /** Brace depth of each open `${` whose template resumes at its closing brace. */
  const templates: number[] = [];
  let depth = 0;
  let lastSignificant = '';
  const blank = (text: string): string => text.replace(/[^\n]/g, ' ');
  const readString = (quote: string): void => {
    const startLine = line;
    let j = i + 1;
    let text = '';
    while (j < source.length && source[j] !== quote) {
      if (source[j] === '\\') {
        text += source.slice(j, j + 2);
        j += 2;
        continue;
      }
      if (quote === '`' && source[j] === '$' && source[j + 1] === '{') break;
      text += source[j];
      j += 1;
    }
    literals.push({ line: startLine, text });
    const consumed = source.slice(i, Math.min(j + 1, source.length));
    if (quote === '`' && source[j] === '$') {
      templates.push(depth);
      depth += 1;
      code += blank(source.slice(i, j)) + '${';
      line += (source.slice(i, j + 2).match(/\n/g) ?? []).length;
      i = j + 2;
    } else {
      code += quote + blank(consumed.slice(1, -1)) + quote;
      line += (consumed.match(/\n/g) ?? []).length;
      i = j + 1;
    }
    lastSignificant = quote;
  };
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      const end = source.indexOf('\n', i);
      i = end < 0 ? source.length : end;
      continue;
    }
    if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end < 0 ? source.length : end + 2;
      const comment = source.slice(i, stop);
      code += blank(comment);
      line += (comment.match(/\n/g) ?? []).length;
      i = stop;
      continue;
    }
    if (c === '/' && (lastSignificant === '' || /[(,=:[!&|?{};+\-*%<>~^]$/.test(lastSignificant))) {
      // A regular expression literal: skip to its closing slash (classes may hold a slash).
      let j = i + 1;
      let inClass = false;
      while (j < source.length && source[j] !== '\n') {
        if (source[j] === '\\') j += 1;
        else if (source[j] === '[') inClass = true;
        else if (source[j] === ']') inClass = false;
        else if (source[j] === '/' && !inClass) break;
        j += 1;
      }
      code += blank(source.slice(i, j + 1));
      i = j + 1;
      lastSignificant = '/';
      continue;
    }
    if (c === "'" || c === '"' || c === '`') {
      readString(c);
      continue;
    }
    if (c === '{') depth += 1;
    if (c === '}') {
      depth -= 1;
      if (templates.length > 0 && templates[templates.length - 1] === depth) {
        templates.pop();
        code += '}';
        // Resume the template literal after the substitution.
        readString('`');
        continue;
      }
    }
    if (c === '\n') line += 1;
    if (!/\s/.test(c)) lastSignificant = /[A-Za-z0-9_$)\]]/.test(c) ? 'x' : c;
    code += c;
    i += 1;
  }
  return { code, literals };
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const IPV4 = `${OCTET}(?:\\.${OCTET}){3}`;
const UNSPECIFIED = new Set(['0.0.0.0']);
/** A whole string `0.…`, `1.…` or `2.…` is an ASN.1 object identifier (X.509's `2.5.29.17`). */
const OID = /^[0-2]\./;

/** The host/port literals in one string literal. */
export function addressLiterals(text: string): string[] {
  const found: string[] = [];
  const whole = new RegExp(`^${IPV4}$`);
  if (whole.test(text) && !UNSPECIFIED.has(text) && !OID.test(text)) found.push(text);
  for (const match of text.matchAll(new RegExp(`(?:\\/\\/|@)(${IPV4})(?![\\d.])`, 'g'))) {
    if (!UNSPECIFIED.has(match[1]!)) found.push(match[1]!);
  }
  for (const match of text.matchAll(/(?<![\w:])::1(?![\w:])/g)) found.push(match[0]);
  for (const match of text.matchAll(/\blocalhost\b/gi)) found.push(match[0]);
  for (const match of text.matchAll(/\[[0-9a-f:.]*:[0-9a-f:.]*\]:\d{1,5}\b/gi)) {
    found.push(match[0]);
  }
  for (const match of text.matchAll(
    new RegExp(`(?<![\\w.-])(${IPV4}|[a-z0-9-]+(?:\\.[a-z0-9-]+)+):(\\d{2,5})(?![\\w.])`, 'gi'),
  )) {
    if (!UNSPECIFIED.has(match[1]!)) found.push(match[0]);
  }
  // `${host}:9292`: a template chunk that starts with a port after a substitution.
  const afterSubstitution = /^:(\d{2,5})(?![\w.])/.exec(text);
  if (afterSubstitution !== null) found.push(afterSubstitution[0]);
  return found;
}

/**
 * Port numbers given to a name ending in `port`: assigned (`port: 9292`, `DNS_PORT = 53`) or as
 * a fallback (`x.port ?? 80`, `x.port || 80`).
 */
export function portLiterals(code: string): { line: number; text: string }[] {
  const found: { line: number; text: string }[] = [];
  const lines = code.split('\n');
  const patterns = [
    /\b\w*port\s*[:=]\s*(\d{2,5})\b/gi,
    /\b\w*port\s*(?:\?\?|\|\|)\s*(\d{2,5})\b/gi,
  ];
  lines.forEach((text, index) => {
    for (const pattern of patterns) {
      for (const match of text.matchAll(pattern)) {
        found.push({ line: index + 1, text: match[0] });
      }
    }
  });
  return found;
}

describe('no hard-coded addresses under src/', () => {
  it('the scanner finds what it should and nothing else', () => {
    assert.deepEqual(addressLiterals('127.0.0.1'), ['127.0.0.1']);
    assert.deepEqual(addressLiterals('http://10.1.2.3/x'), ['10.1.2.3']);
    assert.deepEqual(addressLiterals('dial ::1 now'), ['::1']);
    assert.deepEqual(addressLiterals('[::1]:9292'), ['::1', '[::1]:9292']);
    assert.deepEqual(addressLiterals('see localhost'), ['localhost']);
    assert.deepEqual(addressLiterals('example.com:8080'), ['example.com:8080']);
    assert.deepEqual(addressLiterals('0.0.0.0'), []);
    assert.deepEqual(addressLiterals('2.5.4.3.1'), []);
    assert.deepEqual(addressLiterals('sha256:1234'), []);
    assert.deepEqual(addressLiterals(':9292/metrics'), [':9292']);
    assert.deepEqual(addressLiterals('::ffff:a.b.c.d'), []);
    const { code, literals } = lex(
      "const a = 'http://x'; // 127.0.0.1\nconst r = /\\/\\//; const t = `a${`b${1}`}c`; /* ::1 */",
    );
    assert.ok(!code.includes('127.0.0.1') && !code.includes('::1'));
    assert.deepEqual(
      literals.map((l) => l.text),
      ['http://x', 'a', 'b', '', 'c'],
    );
    assert.deepEqual(
      portLiterals('listen({ port: 9292 }); const DNS_PORT = 53; x.port = 0').map((p) => p.text),
      ['port: 9292', 'DNS_PORT = 53'],
    );
    assert.deepEqual(
      portLiterals(
        'a(o.http01Port ?? 80); b(o.port || 8080); c(o.port ?? 0); d(checkUint(o.port, 16))',
      ).map((p) => p.text),
      ['http01Port ?? 80', 'port || 8080'],
    );
  });

  it('src/ names hosts and ports only in the allow-listed files of documented defaults', () => {
    const offences: string[] = [];
    for (const file of sourceFiles(path.join(root, 'src'))) {
      const relative = path.relative(root, file).split(path.sep).join('/');
      if (relative in ALLOWED) continue;
      const { code, literals } = lex(readFileSync(file, 'utf8'));
      for (const literal of literals) {
        for (const text of addressLiterals(literal.text)) {
          offences.push(`${relative}:${literal.line}: ${JSON.stringify(text)}`);
        }
      }
      for (const port of portLiterals(code)) {
        offences.push(`${relative}:${port.line}: ${port.text}`);
      }
    }
    assert.deepEqual(
      offences,
      [],
      'take these from src/node/config.ts (or make them configuration):\n' + offences.join('\n'),
    );
  });

  it('every allow-listed file exists', () => {
    for (const file of Object.keys(ALLOWED)) {
      assert.ok(readFileSync(path.join(root, file), 'utf8').length > 0, file);
    }
  });
});
