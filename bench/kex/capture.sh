#!/usr/bin/env bash
# Which TLS key-exchange group do STOQ's transports negotiate? Captures one QUIC and one
# TLS-over-TCP handshake on loopback with tshark and prints the groups each ClientHello offers
# and the key share the ServerHello picks. Needs root (capture on lo) and tshark.
# Usage: bash bench/kex/capture.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v tshark >/dev/null || { echo "tshark is missing (apt-get install tshark)" >&2; exit 2; }
quic_port=$((40000 + RANDOM % 10000))
tls_port=$((quic_port + 1))
pcap=$(mktemp --suffix=.pcap)
chmod 666 "$pcap"
trap 'rm -f "$pcap"' EXIT
tshark -q -i lo -f "udp port $quic_port or tcp port $tls_port" -w "$pcap" 2>/dev/null &
capture=$!
# wait until tshark has opened the interface
for _ in $(seq 1 50); do [ -s "$pcap" ] && break; sleep 0.1; done
node --import tsx bench/kex/handshake.ts "$quic_port" "$tls_port" >/dev/null
sleep 1
kill "$capture"; wait "$capture" 2>/dev/null || true

names() {
  # IANA TLS Supported Groups registry names for the codes that appear here.
  sed -e 's/\b29\b\|0x001d/x25519/g' -e 's/\b23\b\|0x0017/secp256r1/g' -e 's/\b24\b\|0x0018/secp384r1/g' \
      -e 's/\b25\b\|0x0019/secp521r1/g' -e 's/\b30\b\|0x001e/x448/g' -e 's/\b256\b\|0x0100/ffdhe2048/g' \
      -e 's/\b257\b\|0x0101/ffdhe3072/g' -e 's/\b4588\b\|0x11ec/X25519MLKEM768/g'
}
for proto in quic tls; do
  if [ "$proto" = quic ]; then filter="quic && tls.handshake"; else filter="tcp.port == $tls_port && tls.handshake"; fi
  echo "== $proto"
  tshark -r "$pcap" -Y "$filter && tls.handshake.type == 1" -T fields \
    -e tls.handshake.extensions_supported_group 2>/dev/null | head -1 | names | sed 's/^/  ClientHello supported groups: /'
  tshark -r "$pcap" -Y "$filter && tls.handshake.type == 1" -T fields \
    -e tls.handshake.extensions_key_share_group 2>/dev/null | head -1 | names | sed 's/^/  ClientHello key shares:       /'
  tshark -r "$pcap" -Y "$filter && tls.handshake.type == 2" -T fields \
    -e tls.handshake.extensions_key_share_group -e tls.handshake.ciphersuite 2>/dev/null | head -1 | names | sed 's/^/  ServerHello key share, cipher suite: /'
done
