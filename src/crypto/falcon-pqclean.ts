import { createRequire } from 'node:module';
import type { FalconBackend, FalconKeyPair } from './falcon.js';
import {
  FalconError,
  FalconErrorCode,
  assertFalconSecretKey,
  isWellFormedFalconVerifyInput,
} from './falcon.js';

/*
 * FALCON-1024 over PQClean (`pqclean` npm package): a native addon when it compiled at install
 * time, else the same C code compiled to WebAssembly. PQClean's `crypto_sign_signature` emits
 * the detached Round-3 format (0x3A || nonce || compressed) that falcon.ts specifies, so no
 * conversion is needed.
 *
 * Values imported from falcon.ts are only used inside functions: falcon.ts imports this module
 * for its factory, and the cycle is safe only while nothing here runs at load time.
 */

const ALGORITHM = 'falcon-1024';

/** The parts of the pqclean module used here (it ships no type declarations). */
interface PqcleanSignPrivateKey {
  sign(message: Uint8Array): Promise<ArrayBuffer>;
  export(): ArrayBuffer;
}

interface PqcleanSignPublicKey {
  export(): ArrayBuffer;
}

interface PqcleanClassicSign {
  verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean;
}

interface PqcleanModule {
  Sign: new (algorithm: string) => PqcleanClassicSign;
  sign: {
    PrivateKey: new (algorithm: string, material: Uint8Array) => PqcleanSignPrivateKey;
    generateKeyPair(
      algorithm: string,
    ): Promise<{ publicKey: PqcleanSignPublicKey; privateKey: PqcleanSignPrivateKey }>;
  };
}

/**
 * Which build to load: `installed` is what `require('pqclean')` picks (native when the addon
 * built, WebAssembly otherwise); `wasm` forces the WebAssembly build, for cross-checks.
 */
export type PqcleanBuild = 'installed' | 'wasm';

const require = createRequire(import.meta.url);

function loadModule(build: PqcleanBuild): PqcleanModule {
  try {
    return require(build === 'wasm' ? 'pqclean/wasm/index.js' : 'pqclean') as PqcleanModule;
  } catch (error) {
    throw new FalconError(
      FalconErrorCode.BACKEND_UNAVAILABLE,
      `pqclean could not be loaded: ${(error as Error).message}`,
      { build },
      { cause: error },
    );
  }
}

/**
 * The native addon's classes are C++ functions (`[native code]`); the WebAssembly build's are
 * JavaScript classes. pqclean exposes no other flag saying which one it loaded.
 */
function isNative(module: PqcleanModule): boolean {
  return Function.prototype.toString.call(module.Sign).includes('[native code]');
}

/**
 * Signing and key generation use pqclean's key-centric API, which runs on libuv's thread pool
 * (native) or a worker thread (WebAssembly), so the ~8 ms signature does not block the event
 * loop. Verification uses the classic API's synchronous `verify`, as the interface requires.
 */
export class PqcleanFalcon implements FalconBackend {
  readonly name: string;
  readonly #module: PqcleanModule;
  readonly #classic: PqcleanClassicSign;

  constructor(module: PqcleanModule) {
    this.#module = module;
    this.#classic = new module.Sign(ALGORITHM);
    this.name = isNative(module) ? 'pqclean-native' : 'pqclean-wasm';
  }

  async generateKeyPair(): Promise<FalconKeyPair> {
    try {
      const { publicKey, privateKey } = await this.#module.sign.generateKeyPair(ALGORITHM);
      return {
        publicKey: new Uint8Array(publicKey.export()),
        secretKey: new Uint8Array(privateKey.export()),
      };
    } catch (error) {
      throw operationFailed('key generation', error);
    }
  }

  async sign(message: Uint8Array, secretKey: Uint8Array): Promise<Uint8Array> {
    assertFalconSecretKey(secretKey);
    try {
      const key = new this.#module.sign.PrivateKey(ALGORITHM, secretKey);
      return new Uint8Array(await key.sign(message));
    } catch (error) {
      throw operationFailed('signing', error);
    }
  }

  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
    if (!isWellFormedFalconVerifyInput(signature, message, publicKey)) return false;
    try {
      return this.#classic.verify(publicKey, message, signature) === true;
    } catch {
      return false;
    }
  }
}

function operationFailed(operation: string, error: unknown): FalconError {
  return new FalconError(
    FalconErrorCode.OPERATION_FAILED,
    `pqclean ${operation} failed: ${(error as Error).message}`,
    { operation },
    { cause: error },
  );
}

/** Loads pqclean; throws `BACKEND_UNAVAILABLE` when it cannot be loaded. */
export function createPqcleanFalcon(build: PqcleanBuild = 'installed'): PqcleanFalcon {
  const module = loadModule(build);
  try {
    return new PqcleanFalcon(module);
  } catch (error) {
    throw new FalconError(
      FalconErrorCode.BACKEND_UNAVAILABLE,
      `pqclean has no ${ALGORITHM}: ${(error as Error).message}`,
      { build },
      { cause: error },
    );
  }
}
