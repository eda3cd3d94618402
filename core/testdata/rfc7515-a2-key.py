#!/usr/bin/env python3
"""Writes the RSA key of RFC 7515 Appendix A.2 as PKCS#1 and PKCS#8 DER.

The RFC gives the key as JWK members; dp, dq and qi are derived here, the DER is
built by hand (PKCS#1) and converted with openssl (PKCS#8). The outputs are test
fixtures only: this key is public and must never sign anything real.
"""
import base64, subprocess

def b64u(s):
    return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")

n = b64u("ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ")
e = b64u("AQAB")
d = b64u("Eq5xpGnNCivDflJsRQBXHx1hdR1k6Ulwe2JZD50LpXyWPEAeP88vLNO97IjlA7_GQ5sLKMgvfTeXZx9SE-7YwVol2NXOoAJe46sui395IW_GO-pWJ1O0BkTGoVEn2bKVRUCgu-GjBVaYLU6f3l9kJfFNS3E0QbVdxzubSu3Mkqzjkn439X0M_V51gfpRLI9JYanrC4D4qAdGcopV_0ZHHzQlBjudU2QvXt4ehNYTCBr6XCLQUShb1juUO1ZdiYoFaFQT5Tw8bGUl_x_jTj3ccPDVZFD9pIuhLhBOneufuBiB4cS98l2SR_RQyGWSeWjnczT0QU91p1DhOVRuOopznQ")
p = b64u("4BzEEOtIpmVdVEZNCqS7baC4crd0pqnRH_5IB3jw3bcxGn6QLvnEtfdUdiYrqBdss1l58BQ3KhooKeQTa9AB0Hw_Py5PJdTJNPY8cQn7ouZ2KKDcmnPGBY5t7yLc1QlQ5xHdwW1VhvKn-nXqhJTBgIPgtldC-KDV5z-y2XDwGUc")
q = b64u("uQPEfgmVtjL0Uyyx88GZFF1fOunH3-7cepKmtH4pxhtCoHqpWmT8YAmZxaewHgHAjLYsp1ZSe7zFYHj7C6ul7TjeLQeZD_YwD66t62wDmpe_HlB-TnBA-njbglfIsRLtXlnDzQkv5dTltRJ11BKBBypeeF6689rjcJIDEz9RWdc")
assert p * q == n

def length(n):
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw

def integer(v):
    raw = v.to_bytes(v.bit_length() // 8 + 1, "big")  # keeps a leading 0 for the sign bit
    return b"\x02" + length(len(raw)) + raw

fields = [0, n, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)]
body = b"".join(integer(v) for v in fields)
der = b"\x30" + length(len(body)) + body
open("rfc7515-a2-rsa.pkcs1.der", "wb").write(der)
subprocess.run(["openssl", "pkcs8", "-topk8", "-nocrypt", "-inform", "DER", "-in", "rfc7515-a2-rsa.pkcs1.der",
                "-outform", "DER", "-out", "rfc7515-a2-rsa.pkcs8.der"], check=True)
