import { falcon1024 } from '@noble/post-quantum/falcon.js';
import type { FalconBackend, FalconKeyPair } from './falcon.js';
import {
  FalconError,
  FalconErrorCode,
  assertFalconSecretKey,
  isWellFormedFalconVerifyInput,
} from './falcon.js';

/*
 * FALCON-1024 over noble's pure-JavaScript implementation. `falcon1024.sign` returns the
 * unpadded detached Round-3 signature (0x3A || nonce || compressed), the same bytes PQClean
 * produces, so the two backends interoperate without conversion (tested both ways). Everything
 * runs on the calling thread; noble is the cross-check, not the fast path.
 *
 * Values imported from falcon.ts are only used inside functions (falcon.ts imports this module).
 */
export class NobleFalcon implements FalconBackend {
  readonly name = 'noble';

  async generateKeyPair(): Promise<FalconKeyPair> {
    try {
      const { publicKey, secretKey } = falcon1024.keygen();
      return { publicKey, secretKey };
    } catch (error) {
      throw operationFailed('key generation', error);
    }
  }

  async sign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
    assertFalconSecretKey(secretKey);
    try {
      return falcon1024.sign(message, secretKey);
    } catch (error) {
      throw operationFailed('signing', error);
    }
  }

  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (!isWellFormedFalconVerifyInput(signature, message, publicKey)) return false;
    try {
      return falcon1024.verify(signature, message, publicKey);
    } catch {
      return false;
    }
  }
}

function operationFailed(operation: string, error: unknown): FalconError {
  return new FalconError(
    FalconErrorCode.OPERATION_FAILED,
    `noble FALCON-1024 ${operation} failed: ${(error as Error).message}`,
    { operation },
    { cause: error },
  );
}

export function createNobleFalcon(): NobleFalcon {
  return new NobleFalcon();
}

/**
 * The FALCON-1024 public key that belongs to `secretKey` (recomputed as h = g/f mod q).
 * Used to check that a stored key pair is consistent. Throws `INVALID_SECRET_KEY` on a key that
 * does not decode.
 */
export function falconPublicKeyFromSecretKey(secretKey: Uint8Array): Uint8Array {
  assertFalconSecretKey(secretKey);
  try {
    return falcon1024.getPublicKey(secretKey);
  } catch (error) {
    throw new FalconError(
      FalconErrorCode.INVALID_SECRET_KEY,
      `FALCON-1024 secret key does not decode: ${(error as Error).message}`,
      {},
      { cause: error },
    );
  }
}
