#!/usr/bin/env bash
# Makes the test PKI for the TLS specs in DIR (made fresh each run; nothing is committed):
#   ca.pem/ca.key            the test root CA
#   server.pem/server.key    localhost + 127.0.0.1 + ::1, signed by the CA
#   wrongname.pem/.key       only example.com, signed by the CA
#   expired.pem/.key         localhost, signed by the CA, valid 2020-2021
#   selfsigned.pem/.key      localhost, self-signed
#   unknown.pem/.key         localhost, signed by another CA (other-ca.pem)
#   client.pem/client.key    a client certificate signed by the CA
#   capath/                  ca.pem in an `openssl rehash` directory
set -euo pipefail
dir=${1:?usage: make_pki.sh DIR}
mkdir -p "$dir"
cd "$dir"
q() { "$@" >/dev/null 2>&1 || { echo "make_pki: failed: $*" >&2; "$@"; exit 1; }; }
key() { q openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }

mkca() { # name subject
  key "$1.key"
  q openssl req -x509 -new -key "$1.key" -sha256 -days 3650 -subj "$2" -out "$1.pem" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}
mkca ca "/CN=lev-http test CA"
mkca other-ca "/CN=lev-http other CA"

leaf() { # name san ca [extra openssl-ca args...]
  local name=$1 san=$2 ca=$3
  shift 3
  key "$name.key"
  q openssl req -new -key "$name.key" -subj "/CN=${name}" -out "$name.csr"
  printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\n' \
    "$san" >"$name.ext"
  q openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -CAcreateserial \
    -days 825 -sha256 -extfile "$name.ext" -out "$name.pem" "$@"
}
leaf server "DNS:localhost,IP:127.0.0.1,IP:::1" ca
leaf wrongname "DNS:example.com" ca
leaf unknown "DNS:localhost,IP:127.0.0.1" other-ca
leaf client "DNS:client.test" ca

# Expired: `openssl ca` can set explicit start and end dates in the past.
mkdir -p ca-db && : >ca-db/index.txt && echo 1000 >ca-db/serial
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
database = ca-db/index.txt
serial = ca-db/serial
new_certs_dir = ca-db
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[ext]
subjectAltName = DNS:localhost,IP:127.0.0.1
basicConstraints = CA:FALSE
CNF
key expired.key
q openssl req -new -key expired.key -subj "/CN=expired" -out expired.csr
q openssl ca -batch -config ca.cnf -extensions ext -startdate 20200101000000Z \
  -enddate 20210101000000Z -in expired.csr -out expired.pem -notext

key selfsigned.key
q openssl req -x509 -new -key selfsigned.key -sha256 -days 825 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -out selfsigned.pem

mkdir -p capath && cp ca.pem capath/ && q openssl rehash capath
echo "$dir"
