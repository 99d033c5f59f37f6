import { concatBytes, fromBase64, toBase64 } from '../../crypto/bytes.js';
import { sha256 } from '../../crypto/hash.js';
import { CtError, CtErrorCode } from './errors.js';

/**
 * C2SP signed notes (https://c2sp.org/signed-note): a text ending in a newline, a blank line,
 * then lines `— <key name> base64(uint32 key ID || signature)`. Verifiers ignore lines from
 * keys they do not know, which is what lets one checkpoint carry signatures of several types.
 */
export const MAX_NOTE_SIGNATURES = 100; // Go's note.Open refuses more than 100
/** A FALCON-1024 line is about 1.9 KB; 100 lines of any kind fit comfortably. */
export const MAX_NOTE_BYTES = 262_144;
export const MAX_KEY_NAME_LENGTH = 255;

/** Signature type identifier bytes (signed-note §"Signature types"). */
export const NOTE_SIGNATURE_TYPE = {
  ed25519: 0x01,
  rfc6962TreeHead: 0x05,
  /** "Reserved for signature types without an identifier byte", followed by a longer identifier. */
  extended: 0xff,
} as const;

export interface NoteSignature {
  readonly name: string;
  /** The uint32 key ID (big-endian first four bytes of the decoded signature). */
  readonly keyId: number;
  /** The signature bytes after the key ID. */
  readonly signature: Uint8Array;
}

export interface SignedNote {
  /** The note text, including its final newline. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

const encoder = new TextEncoder();
const EM_DASH_PREFIX = '\u2014 ';

function malformed(message: string, detail: Record<string, unknown> = {}): CtError {
  return new CtError(CtErrorCode.MALFORMED_NOTE, message, detail);
}

/**
 * Bidirectional formatting characters (Unicode UAX #9: the embeddings, overrides and isolates
 * U+202A–U+202E and U+2066–U+2069, and the marks U+061C, U+200E, U+200F): printed, they reorder
 * what a terminal shows around them.
 */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/u;

/**
 * Key names (and checkpoint origins): non-empty, no Unicode spaces, no '+' (signed-note), and —
 * stricter than the format, since the CLI prints names a node serves — no control characters
 * (`\p{Cc}`: C0, DEL, C1, whose CSI U+009B starts a terminal escape) and no bidi controls.
 */
export function isValidKeyName(name: unknown): name is string {
  return (
    typeof name === 'string' &&
    name.length > 0 &&
    name.length <= MAX_KEY_NAME_LENGTH &&
    !/[\s+]/u.test(name) &&
    !/\p{Cc}/u.test(name) &&
    !BIDI_CONTROLS.test(name)
  );
}

/** key ID = SHA-256(key name || 0x0A || signature type || key material)[:4], big-endian. */
export function noteKeyId(name: string, type: number, keyMaterial: Uint8Array): number {
  const digest = sha256(concatBytes(encoder.encode(`${name}\n`), Uint8Array.of(type), keyMaterial));
  return new DataView(digest.buffer, digest.byteOffset, 4).getUint32(0);
}

function signatureLine(sig: NoteSignature): string {
  const body = new Uint8Array(4 + sig.signature.length);
  new DataView(body.buffer).setUint32(0, sig.keyId);
  body.set(sig.signature, 4);
  return `${EM_DASH_PREFIX}${sig.name} ${toBase64(body)}\n`;
}

/** The note text, a blank line and one line per signature. */
export function formatSignedNote(text: string, signatures: readonly NoteSignature[]): string {
  if (!text.endsWith('\n')) throw malformed('note text must end with a newline');
  return `${text}\n${signatures.map(signatureLine).join('')}`;
}

/**
 * Parses a signed note strictly: valid UTF-8 text without control characters other than
 * newline, separated from its signature lines by the last blank line; each line well formed.
 * A note with zero signature lines is malformed, as in Go's note.Open.
 */
export function parseSignedNote(note: unknown): SignedNote {
  if (typeof note !== 'string') throw malformed('a signed note must be a string');
  if (encoder.encode(note).length > MAX_NOTE_BYTES) {
    throw malformed(`signed note exceeds ${MAX_NOTE_BYTES} bytes`);
  }
  if (/[\u0000-\u0009\u000b-\u001f]|\p{Cs}/u.test(note)) {
    throw malformed('signed note contains control characters or invalid UTF-16');
  }
  const split = note.lastIndexOf('\n\n');
  if (split < 0) throw malformed('signed note has no blank line before its signatures');
  const text = note.slice(0, split + 1);
  const block = note.slice(split + 2);
  if (block.length === 0 || !block.endsWith('\n')) {
    throw malformed('signed note has no signature lines, or they do not end with a newline');
  }
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) {
    throw new CtError(
      CtErrorCode.TOO_MANY_SIGNATURES,
      `signed note has ${lines.length} signatures, the limit is ${MAX_NOTE_SIGNATURES}`,
      { count: lines.length },
    );
  }
  const signatures = lines.map((line, i) => {
    if (!line.startsWith(EM_DASH_PREFIX)) throw malformed(`signature line ${i} lacks "— "`);
    const rest = line.slice(EM_DASH_PREFIX.length);
    const space = rest.indexOf(' ');
    const name = space < 0 ? '' : rest.slice(0, space);
    if (!isValidKeyName(name)) throw malformed(`signature line ${i} has an invalid key name`);
    let bytes: Uint8Array;
    try {
      bytes = fromBase64(rest.slice(space + 1));
    } catch {
      throw malformed(`signature line ${i} is not canonical base64`);
    }
    if (bytes.length < 5) throw malformed(`signature line ${i} is shorter than a key ID`);
    const keyId = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0);
    return { name, keyId, signature: bytes.slice(4) };
  });
  return { text, signatures };
}
