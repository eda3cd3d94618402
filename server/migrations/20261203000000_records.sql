-- Everything atlogin keeps between requests, one row per item.
--
-- kind       what the row is: an authorization request, an upstream login,
--            a code, an access or refresh token, a client assertion's jti
-- key        its key within the kind; codes and tokens go by their SHA-256
-- family     for access and refresh tokens, the code they descend from, so a
--            replayed code or refresh token can end them all at once
-- payload    the item as JSON
-- used       set once when a code or refresh token is redeemed (the
--            compare-and-set that makes them single-use)
-- expires_at seconds since the Unix epoch; expired rows are swept
CREATE TABLE atlogin_records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    family TEXT,
    payload TEXT NOT NULL,
    used BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);

CREATE INDEX atlogin_records_expiry ON atlogin_records (expires_at);

CREATE INDEX atlogin_records_family ON atlogin_records (family) WHERE family IS NOT NULL;
