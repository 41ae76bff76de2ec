-- Whether a user has a live session in an organisation, and the group's newest event then.
-- KEYS: the group's keys. ARGV: the common ones (see prelude.lua), then the user and the
-- organisation. Returns {event id, '1' or '0'}.
return {newest_event(), seated(ARGV[8], ARGV[9]) and '1' or '0'}
