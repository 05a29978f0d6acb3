#!/usr/bin/env bash
# Regenerates the test PKI of the tunnel's unit tests (valid for 100 years): a cluster CA with two node
# certificates, and a foreign CA with one certificate that the cluster must refuse.
set -euo pipefail
cd "$(dirname "$0")"
key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
ca() { openssl req -x509 "${key[@]}" -days 36500 -keyout "$1.key" -out "$1.crt" -subj "/CN=$1" \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null; }
leaf() { openssl req -x509 "${key[@]}" -days 36500 -keyout "$1.key" -out "$1.crt" -subj "/CN=$1" -CA "$2.crt" -CAkey "$2.key" \
  -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
  -addext extendedKeyUsage=serverAuth,clientAuth -addext "subjectAltName=DNS:$1,DNS:localhost,IP:127.0.0.1" 2>/dev/null; }
ca cluster-ca
leaf node-a cluster-ca
leaf node-b cluster-ca
ca foreign-ca
leaf intruder foreign-ca
rm -f cluster-ca.key foreign-ca.key
