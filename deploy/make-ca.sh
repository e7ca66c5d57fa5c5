#!/usr/bin/env bash
# A throwaway CA and certificates for the secured compose cluster (deploy/docker-compose.secure.yml)
# or any TLS test: PEM files only, as Runnel's ssl.keystore.type=PEM reads them.
#
#   deploy/make-ca.sh <out-dir> [node ...]
#
# Writes to <out-dir>:
#   ca.crt, ca.key                  the CA (ssl.truststore.location of every node and client)
#   <node>.pem                      key + certificate + CA for each node (ssl.keystore.location);
#                                   its subjectAltNames: the node name, localhost, 127.0.0.1
#   client.pem, client.crt/.key     a client certificate (CN=client), for mTLS and kcat/kafkajs
# Nodes default to the compose file's services: controller broker-1 broker-2 broker-3 coordinator.
# Keys are unencrypted EC P-256 (PKCS#8), valid 365 days. Never use these in production.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <out-dir> [node ...]" >&2; exit 2; }
out="$1"; shift
nodes=("$@")
[ ${#nodes[@]} -gt 0 ] || nodes=(controller broker-1 broker-2 broker-3 coordinator)
command -v openssl >/dev/null || { echo "$0: openssl is required (Debian: apt-get install openssl)" >&2; exit 1; }
mkdir -p "$out"
cd "$out"
days=365

if [ ! -f ca.key ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$days" \
    -subj "/CN=runnel-throwaway-ca" -keyout ca.key -out ca.crt \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
fi

# issue <name> <subject> <extendedKeyUsage> [subjectAltName]
issue() {
  local name="$1" subject="$2" eku="$3" san="${4:-}"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$name.ext"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$name.key"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -sha256 -days "$days" \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  cat "$name.key" "$name.crt" ca.crt > "$name.pem"
  rm -f "$name.csr" "$name.ext"
  chmod 644 "$name.pem" "$name.key"  # read by the container's unprivileged user
}

for node in "${nodes[@]}"; do
  # Nodes present their certificate as servers (listeners, RPC) and as RPC clients.
  issue "$node" "/O=runnel/CN=$node" "serverAuth,clientAuth" "DNS:$node,DNS:localhost,IP:127.0.0.1"
done
issue client "/O=runnel/CN=client" "clientAuth"
echo "$out: ca.crt, ${nodes[*]/%/.pem}, client.pem"
