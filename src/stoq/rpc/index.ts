/** STOQ's typed RPC layer: service definitions, server, client, message streams, framing. */
export { type CallOptions } from './call-guard.js';
export { type MessageChannel } from './channel.js';
export { RpcClient, createClient, type RpcClientOptions, type SessionSource } from './client.js';
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  FRAME_PREFIX_BYTES,
  FrameDecoder,
  decodePayload,
  encodeFrame,
  encodeFrames,
  encodePayload,
} from './framing.js';
export { DEFAULT_RPC_LIMITS, resolveRpcLimits, type RpcLimits } from './limits.js';
export { stderrLogger, type RpcLogger } from './log.js';
export { RpcServer, type RpcServerOptions } from './server.js';
export {
  defineService,
  isAllowed,
  messageStream,
  oneWay,
  serverStream,
  unary,
  wireMethodName,
  type Allow,
  type CallContext,
  type HandlerFor,
  type MessageStreamHandler,
  type MessageStreamMethod,
  type MethodDefinition,
  type MethodsOfKind,
  type OneWayHandler,
  type OneWayMethod,
  type RequestOf,
  type ResponseOf,
  type ServerStreamHandler,
  type ServerStreamMethod,
  type ServiceDefinition,
  type ServiceHandlers,
  type UnaryHandler,
  type UnaryMethod,
} from './service.js';
export { METHOD_KINDS, OK, type MethodKind, type StatusCode } from './wire.js';
