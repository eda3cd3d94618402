-- The DID an access or refresh token speaks for, so that every session of one
-- person can be ended at once (`atlogin logout`).
ALTER TABLE atlogin_records ADD COLUMN subject TEXT;

CREATE INDEX atlogin_records_subject ON atlogin_records (subject) WHERE subject IS NOT NULL;
