/*
 * Batched UDP for the DNS server (src/faces/dns/udp-batch.ts, docs/dns.md "Batched UDP").
 *
 * node:dgram hands JavaScript one datagram per callback and sends one datagram per call; for a
 * DNS server whose answer takes about a microsecond, that per-datagram path is most of the
 * cost. This addon owns a non-blocking UDP socket watched by a libuv poll handle on the Node
 * event loop. When the socket is readable it calls one JavaScript function, which receives up
 * to BATCH_MAX datagrams with one recvmmsg(2), answers them, and sends every answer with one
 * sendmmsg(2). Nothing runs off the main thread; the addon keeps no state a call can corrupt:
 * every index and length JavaScript passes is checked here.
 *
 * Linux only (recvmmsg/sendmmsg); elsewhere the module does not build and the server uses
 * node:dgram.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#define BATCH_MAX 64

/* Receive lengths JavaScript must not answer (see recv). */
#define LENGTH_TRUNCATED 0xffffffffu
#define LENGTH_BAD_SOURCE 0xfffffffeu

typedef struct socket_box socket_box;

typedef struct {
  uv_poll_t poll;
  int fd;
  int polling;
  /* Datagrams the last recv returned (the valid peer indices for send). */
  uint32_t received;
  napi_env env;
  napi_ref callback;
  napi_async_context async;
  socket_box *box;
  struct sockaddr_storage peers[BATCH_MAX];
  socklen_t peer_lengths[BATCH_MAX];
  struct mmsghdr messages[BATCH_MAX];
  struct iovec vectors[BATCH_MAX];
} udp_socket;

/* What the JavaScript external points at; outlives the socket when closed first. */
struct socket_box {
  udp_socket *socket;
};

#define CHECK(call)                                                                              \
  do {                                                                                           \
    if ((call) != napi_ok) return throw_last(env);                                               \
  } while (0)

static napi_value throw_last(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    napi_throw_error(env, "ERR_UDP_BATCH",
                     info != NULL && info->error_message != NULL ? info->error_message
                                                                  : "N-API call failed");
  }
  return NULL;
}

static napi_value throw_errno(napi_env env, const char *what, int error) {
  char message[256];
  snprintf(message, sizeof message, "%s: %s", what, strerror(error));
  napi_value code, text, exception;
  const char *name = error == EADDRINUSE      ? "EADDRINUSE"
                     : error == EADDRNOTAVAIL ? "EADDRNOTAVAIL"
                     : error == EACCES        ? "EACCES"
                     : error == EAFNOSUPPORT  ? "EAFNOSUPPORT"
                                              : "EUDPBATCH";
  napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &exception);
  napi_value errno_value;
  napi_create_int32(env, error, &errno_value);
  napi_set_named_property(env, exception, "errno", errno_value);
  napi_throw(env, exception);
  return NULL;
}

static udp_socket *socket_of(napi_env env, napi_value value) {
  socket_box *box = NULL;
  if (napi_get_value_external(env, value, (void **)&box) != napi_ok || box == NULL) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "not a batched UDP socket");
    return NULL;
  }
  if (box->socket == NULL) {
    napi_throw_error(env, "ERR_UDP_BATCH_CLOSED", "the batched UDP socket is closed");
    return NULL;
  }
  return box->socket;
}

/*
 * The arguments of a call whose first argument is an open socket: exactly `count` of them into
 * argv; NULL (with an exception pending) otherwise.
 */
static udp_socket *socket_call(napi_env env, napi_callback_info info, size_t count,
                               napi_value *argv) {
  size_t argc = count;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_last(env);
    return NULL;
  }
  if (argc != count) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "wrong number of arguments");
    return NULL;
  }
  return socket_of(env, argv[0]);
}

static void on_closed(uv_handle_t *handle) { free(handle->data); }

/*
 * Stops polling and closes the socket at once (the port is free when this returns); the memory
 * goes once libuv has let go of the handle. uv_close stops the poll and takes the descriptor out
 * of epoll synchronously, so closing the descriptor right after it cannot disturb a later socket
 * that gets the same number.
 */
static void close_socket(udp_socket *s) {
  if (s->callback != NULL) {
    napi_delete_reference(s->env, s->callback);
    s->callback = NULL;
  }
  if (s->async != NULL) {
    napi_async_destroy(s->env, s->async);
    s->async = NULL;
  }
  if (s->box != NULL) s->box->socket = NULL;
  s->box = NULL;
  uv_close((uv_handle_t *)&s->poll, on_closed);
  close(s->fd);
  s->fd = -1;
}

static void finalize_box(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  socket_box *box = data;
  if (box->socket != NULL) close_socket(box->socket);
  free(box);
}

static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)status;
  (void)events;
  udp_socket *s = handle->data;
  if (s->callback == NULL) return;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value callback, receiver, result;
  if (napi_get_reference_value(env, s->callback, &callback) == napi_ok && callback != NULL &&
      napi_get_global(env, &receiver) == napi_ok) {
    napi_status called = napi_make_callback(env, s->async, receiver, callback, 0, NULL, &result);
    if (called == napi_pending_exception) {
      napi_value exception;
      if (napi_get_and_clear_last_exception(env, &exception) == napi_ok) {
        napi_fatal_exception(env, exception);
      }
    }
  }
  napi_close_handle_scope(env, scope);
}

/* open(host: string, port: number, ipv6: boolean) -> socket (bound, not yet polling) */
static napi_value udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 3) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "open(host, port, ipv6)");
    return NULL;
  }
  char host[INET6_ADDRSTRLEN + 1];
  size_t host_length = 0;
  CHECK(napi_get_value_string_utf8(env, argv[0], host, sizeof host, &host_length));
  uint32_t port = 0;
  CHECK(napi_get_value_uint32(env, argv[1], &port));
  bool ipv6 = false;
  CHECK(napi_get_value_bool(env, argv[2], &ipv6));
  if (port > 65535) {
    napi_throw_range_error(env, "ERR_UDP_BATCH", "port out of range");
    return NULL;
  }

  struct sockaddr_storage address;
  socklen_t address_length;
  memset(&address, 0, sizeof address);
  if (ipv6) {
    struct sockaddr_in6 *a = (struct sockaddr_in6 *)&address;
    a->sin6_family = AF_INET6;
    a->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1) {
      napi_throw_type_error(env, "ERR_UDP_BATCH", "not an IPv6 address literal");
      return NULL;
    }
    address_length = sizeof *a;
  } else {
    struct sockaddr_in *a = (struct sockaddr_in *)&address;
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) {
      napi_throw_type_error(env, "ERR_UDP_BATCH", "not an IPv4 address literal");
      return NULL;
    }
    address_length = sizeof *a;
  }

  int fd = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, "socket", errno);
  if (bind(fd, (struct sockaddr *)&address, address_length) != 0) {
    int error = errno;
    close(fd);
    return throw_errno(env, "bind", error);
  }

  udp_socket *s = calloc(1, sizeof *s);
  socket_box *box = calloc(1, sizeof *box);
  uv_loop_t *loop = NULL;
  if (s == NULL || box == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok ||
      uv_poll_init(loop, &s->poll, fd) != 0) {
    free(s);
    free(box);
    close(fd);
    napi_throw_error(env, "ERR_UDP_BATCH", "cannot watch the socket");
    return NULL;
  }
  s->fd = fd;
  s->env = env;
  s->box = box;
  s->poll.data = s;
  box->socket = s;
  for (int i = 0; i < BATCH_MAX; i++) {
    s->messages[i].msg_hdr.msg_iov = &s->vectors[i];
    s->messages[i].msg_hdr.msg_iovlen = 1;
  }
  napi_value external;
  if (napi_create_external(env, box, finalize_box, NULL, &external) != napi_ok) {
    close_socket(s);
    free(box);
    return throw_last(env);
  }
  return external;
}

/* address(socket) -> port number the socket is bound to */
static napi_value udp_port(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  udp_socket *s = socket_call(env, info, 1, argv);
  if (s == NULL) return NULL;
  struct sockaddr_storage address;
  socklen_t length = sizeof address;
  if (getsockname(s->fd, (struct sockaddr *)&address, &length) != 0) {
    return throw_errno(env, "getsockname", errno);
  }
  uint16_t port = address.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&address)->sin6_port
                                                : ((struct sockaddr_in *)&address)->sin_port;
  napi_value result;
  CHECK(napi_create_uint32(env, ntohs(port), &result));
  return result;
}

/* start(socket, callback): calls callback() whenever the socket is readable */
static napi_value udp_start(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  udp_socket *s = socket_call(env, info, 2, argv);
  if (s == NULL) return NULL;
  napi_valuetype type;
  CHECK(napi_typeof(env, argv[1], &type));
  if (type != napi_function || s->polling) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "start(socket, callback) once per socket");
    return NULL;
  }
  napi_value resource, name;
  CHECK(napi_create_object(env, &resource));
  CHECK(napi_create_string_utf8(env, "hypermesh:udp-batch", NAPI_AUTO_LENGTH, &name));
  CHECK(napi_async_init(env, resource, name, &s->async));
  CHECK(napi_create_reference(env, argv[1], 1, &s->callback));
  if (uv_poll_start(&s->poll, UV_READABLE, on_readable) != 0) {
    napi_throw_error(env, "ERR_UDP_BATCH", "cannot poll the socket");
    return NULL;
  }
  s->polling = 1;
  return NULL;
}

static int get_buffer(napi_env env, napi_value value, uint8_t **data, size_t *length) {
  bool is_buffer = false;
  if (napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, (void **)data, length) != napi_ok) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "expected a Buffer");
    return 0;
  }
  return 1;
}

static int get_uint32_array(napi_env env, napi_value value, uint32_t **data, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *raw = NULL;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, length, &raw, NULL, NULL) != napi_ok ||
      type != napi_uint32_array) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "expected a Uint32Array");
    return 0;
  }
  *data = raw;
  return 1;
}

/*
 * recv(socket, buffer, slot, lengths) -> count
 * Reads up to min(BATCH_MAX, buffer.length / slot, lengths.length) datagrams; datagram i is at
 * buffer[i * slot] with lengths[i] bytes. A datagram longer than `slot` gets LENGTH_TRUNCATED,
 * one from port 0 (which cannot be answered) LENGTH_BAD_SOURCE. 0 when nothing is waiting.
 */
static napi_value udp_recv(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  udp_socket *s = socket_call(env, info, 4, argv);
  if (s == NULL) return NULL;
  uint8_t *buffer;
  size_t buffer_length;
  uint32_t slot;
  uint32_t *lengths;
  size_t lengths_count;
  if (!get_buffer(env, argv[1], &buffer, &buffer_length)) return NULL;
  CHECK(napi_get_value_uint32(env, argv[2], &slot));
  if (!get_uint32_array(env, argv[3], &lengths, &lengths_count)) return NULL;
  if (slot == 0) {
    napi_throw_range_error(env, "ERR_UDP_BATCH", "slot must be positive");
    return NULL;
  }
  size_t max = buffer_length / slot;
  if (max > lengths_count) max = lengths_count;
  if (max > BATCH_MAX) max = BATCH_MAX;
  for (size_t i = 0; i < max; i++) {
    s->vectors[i].iov_base = buffer + i * slot;
    s->vectors[i].iov_len = slot;
    s->messages[i].msg_hdr.msg_name = &s->peers[i];
    s->messages[i].msg_hdr.msg_namelen = sizeof s->peers[i];
    s->messages[i].msg_hdr.msg_control = NULL;
    s->messages[i].msg_hdr.msg_controllen = 0;
    s->messages[i].msg_hdr.msg_flags = 0;
  }
  int count;
  do {
    count = max == 0 ? 0 : recvmmsg(s->fd, s->messages, (unsigned int)max, MSG_DONTWAIT, NULL);
  } while (count < 0 && errno == EINTR);
  if (count < 0) count = 0; /* EAGAIN, or an error report (ICMP) that consumed no datagram */
  s->received = (uint32_t)count;
  for (int i = 0; i < count; i++) {
    struct msghdr *h = &s->messages[i].msg_hdr;
    s->peer_lengths[i] = h->msg_namelen;
    uint16_t port = s->peers[i].ss_family == AF_INET6
                        ? ((struct sockaddr_in6 *)&s->peers[i])->sin6_port
                        : ((struct sockaddr_in *)&s->peers[i])->sin_port;
    if (h->msg_flags & MSG_TRUNC) {
      lengths[i] = LENGTH_TRUNCATED;
    } else if (port == 0 || h->msg_namelen == 0) {
      lengths[i] = LENGTH_BAD_SOURCE;
    } else {
      lengths[i] = s->messages[i].msg_len;
    }
  }
  napi_value result;
  CHECK(napi_create_int32(env, count, &result));
  return result;
}

/*
 * send(socket, buffer, plan, count) -> sent
 * plan holds `count` triples (datagram index from the last recv, offset, length): each sends
 * buffer[offset, offset + length) to the source of that datagram. Returns how many were sent;
 * the rest were refused by the kernel (a full send buffer, an unreachable peer).
 */
static napi_value udp_send(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  udp_socket *s = socket_call(env, info, 4, argv);
  if (s == NULL) return NULL;
  uint8_t *buffer;
  size_t buffer_length;
  uint32_t *plan;
  size_t plan_length;
  uint32_t count;
  if (!get_buffer(env, argv[1], &buffer, &buffer_length)) return NULL;
  if (!get_uint32_array(env, argv[2], &plan, &plan_length)) return NULL;
  CHECK(napi_get_value_uint32(env, argv[3], &count));
  if (count > BATCH_MAX || (size_t)count * 3 > plan_length) {
    napi_throw_range_error(env, "ERR_UDP_BATCH", "send plan out of range");
    return NULL;
  }
  for (uint32_t i = 0; i < count; i++) {
    uint32_t peer = plan[i * 3], offset = plan[i * 3 + 1], length = plan[i * 3 + 2];
    if (peer >= s->received || s->peer_lengths[peer] == 0 || offset > buffer_length ||
        length > buffer_length - offset) {
      napi_throw_range_error(env, "ERR_UDP_BATCH", "send plan entry out of range");
      return NULL;
    }
    s->vectors[i].iov_base = buffer + offset;
    s->vectors[i].iov_len = length;
    s->messages[i].msg_hdr.msg_name = &s->peers[peer];
    s->messages[i].msg_hdr.msg_namelen = s->peer_lengths[peer];
    s->messages[i].msg_hdr.msg_control = NULL;
    s->messages[i].msg_hdr.msg_controllen = 0;
    s->messages[i].msg_hdr.msg_flags = 0;
  }
  uint32_t done = 0, failed = 0;
  while (done < count) {
    int sent = sendmmsg(s->fd, s->messages + done, count - done, MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) break;
      done++; /* this datagram's destination refused it; go on with the next */
      failed++;
      continue;
    }
    done += (uint32_t)sent;
  }
  napi_value result;
  CHECK(napi_create_uint32(env, done - failed, &result));
  return result;
}

/* close(socket): stops polling and closes the socket (idempotent) */
static napi_value udp_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  socket_box *box = NULL;
  if (argc != 1 || napi_get_value_external(env, argv[0], (void **)&box) != napi_ok ||
      box == NULL) {
    napi_throw_type_error(env, "ERR_UDP_BATCH", "not a batched UDP socket");
    return NULL;
  }
  if (box->socket != NULL) close_socket(box->socket);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor properties[] = {
      {"open", NULL, udp_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"port", NULL, udp_port, NULL, NULL, NULL, napi_enumerable, NULL},
      {"start", NULL, udp_start, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recv", NULL, udp_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"send", NULL, udp_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"close", NULL, udp_close, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof properties / sizeof properties[0],
                             properties) != napi_ok) {
    return NULL;
  }
  napi_value batch;
  if (napi_create_uint32(env, BATCH_MAX, &batch) == napi_ok) {
    napi_set_named_property(env, exports, "batchMax", batch);
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
