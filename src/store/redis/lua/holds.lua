-- Whether a user has a live session in an organisation, and by this group's clock when.
-- KEYS: the group's keys. ARGV: the common ones (see prelude.lua), then the user and the
-- organisation. Returns {now, '1' or '0'}.
return {string.format('%d', NOW), seated(ARGV[8], ARGV[9]) and '1' or '0'}
