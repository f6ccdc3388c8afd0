-- Version 3: a session's CSRF token is derived from its secret (`people::csrf_token`) and no
-- longer stored; a token keeps the person who created it (NULL: the operator or a token), so
-- that disabling the person revokes it.
ALTER TABLE sessions DROP COLUMN csrf;
ALTER TABLE tokens ADD COLUMN created_by TEXT;
