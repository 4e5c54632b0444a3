#!/usr/bin/env bash
# Makes the self-signed test certificate this example names, in certs/:
# api.pem (certificate, names localhost and api.example.test) and api.key
# (its private key). Never committed (certs/.gitignore). Does nothing when
# a certificate valid for another day is already there.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p certs
if [ -f certs/api.pem ] && [ -f certs/api.key ] &&
  openssl x509 -in certs/api.pem -noout -checkend 86400 >/dev/null 2>&1; then
  exit 0
fi
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout certs/api.key -out certs/api.pem -days 365 \
  -subj "/CN=api.example.test" \
  -addext "subjectAltName=DNS:localhost,DNS:api.example.test" 2>/dev/null
chmod 600 certs/api.key
echo "made examples/tls/certs/api.pem and api.key"
