#!/usr/bin/env bash
# A throwaway CA and certificates for the secured compose cluster (deploy/docker-compose.secure.yml)
# or any TLS test: PEM files only, as Runnel's ssl.keystore.type=PEM reads them.
#
#   deploy/make-ca.sh <out-dir> [node ...]
#
# Writes to <out-dir>:
#   ca.crt, ca.key                  the nodes' CA: the truststore of every node (its RPC) and of
#                                   clients (to check the listeners' certificates)
#   <node>.pem                      key + certificate + CA for each node (ssl.keystore.location);
#                                   its subjectAltNames: the node name, localhost, 127.0.0.1
#   client-ca.crt, client-ca.key    a second CA, for client certificates only: a listener that asks
#                                   clients for one (ssl.client.auth) trusts it, the RPC never does
#   client.pem, client.crt/.key     a client certificate (CN=client) from client-ca, for mTLS and kcat/kafkajs
# The two CAs keep a client certificate out of the RPC between roles, which lets in any certificate
# its truststore (ca.crt) signed and has no other authentication (docs/security.md).
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

# ca <name> <CN>: a self-signed CA, made once (a rerun issues more certificates from it)
ca() {
  [ -f "$1.key" ] && return
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days "$days" \
    -subj "/CN=$2" -keyout "$1.key" -out "$1.crt" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
}
ca ca runnel-throwaway-ca
ca client-ca runnel-throwaway-client-ca

# issue <ca> <name> <subject> <extendedKeyUsage> [subjectAltName]
issue() {
  local ca="$1"; shift
  local name="$1" subject="$2" eku="$3" san="${4:-}"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -z "$san" ] || echo "subjectAltName=$san"
  } > "$name.ext"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out "$name.key"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -sha256 -days "$days" \
    -extfile "$name.ext" -out "$name.crt" 2>/dev/null
  cat "$name.key" "$name.crt" "$ca.crt" > "$name.pem"
  rm -f "$name.csr" "$name.ext"
  chmod 644 "$name.pem" "$name.key"  # read by the container's unprivileged user
}

for node in "${nodes[@]}"; do
  # Nodes present their certificate as servers (listeners, RPC) and as RPC clients.
  issue ca "$node" "/O=runnel/CN=$node" "serverAuth,clientAuth" "DNS:$node,DNS:localhost,IP:127.0.0.1"
done
issue client-ca client "/O=runnel/CN=client" "clientAuth"
echo "$out: ca.crt, ${nodes[*]/%/.pem}, client-ca.crt, client.pem"
