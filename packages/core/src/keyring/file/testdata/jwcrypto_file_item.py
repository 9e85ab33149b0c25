"""aws-vault file-backend items through an independent JOSE implementation (python3-jwcrypto).

fileKeyring.test.ts runs this to check, in both directions, that what the file backend writes is a
JWE another implementation opens, and that it opens a JWE another implementation made:

  JWCRYPTO_PASSPHRASE=... /usr/bin/python3 jwcrypto_file_item.py decrypt < FILE
      prints {"header": <protected header>, "payload": <plaintext>} as JSON
  JWCRYPTO_PASSPHRASE=... /usr/bin/python3 jwcrypto_file_item.py encrypt CREATED < PLAINTEXT
      prints a compact JWE: alg PBES2-HS256+A128KW, enc A256GCM, a protected header that also
      carries `created` (aws-vault puts Go's time.Now().String() there); jwcrypto picks p2c 8192,
      the count aws-vault (jose2go's default) uses, and a random 16-byte p2s

The passphrase comes in the environment, never as an argument (arguments are visible to every user
in /proc). Debian: apt-get install python3-jwcrypto (scripts/setup.sh does).
"""
import json
import os
import sys

from jwcrypto import jwa, jwe, jwk

# Newer jwcrypto releases cap p2c when decrypting; the file backend writes 600,000 (see
# FILE_KEYRING_PBES2_COUNT). Raise the cap to jose2go's own (1,300,000) where there is one.
if hasattr(jwa, 'default_max_pbkdf2_iterations'):
    jwa.default_max_pbkdf2_iterations = 1_300_000

ALG = 'PBES2-HS256+A128KW'
ENC = 'A256GCM'


def main() -> None:
    key = jwk.JWK.from_password(os.environ['JWCRYPTO_PASSPHRASE'])
    data = sys.stdin.buffer.read()
    if sys.argv[1] == 'decrypt':
        token = jwe.JWE()
        token.deserialize(data.decode('ascii').strip(), key=key)
        header = json.loads(token.objects['protected'])
        print(json.dumps({'header': header, 'payload': token.payload.decode('utf-8')}))
    elif sys.argv[1] == 'encrypt':
        protected = {'alg': ALG, 'enc': ENC, 'created': sys.argv[2]}
        token = jwe.JWE(data, protected=json.dumps(protected))
        token.add_recipient(key)
        sys.stdout.write(token.serialize(compact=True))
    else:
        sys.exit(f'usage: {sys.argv[0]} decrypt|encrypt CREATED')


main()
