-- Fluent Bit Lua filter on Fluent Bit's own log (input alias fluentbit_self): turns the tail
-- plugin's long-line warnings into `line_too_long` dead letters, drops every other log line.
--
-- Why: a line longer than the tail input's Buffer_Max_Size never reaches the normalizers (with
-- Skip_Long_Lines On Fluent Bit skips it; Off would stop tailing the file). Fluent Bit warns
-- once per file ("file=... have long lines. Skipping long lines."), not once per line, so these
-- dead letters say "this file lost at least one line", with the file name.

-- Input aliases in fluent-bit.yaml / fluent-bit.conf -> source.
local SOURCES = {
  vault_audit = "vault", cloudtrail = "cloudtrail", kubernetes_audit = "kubernetes",
}

-- in_tail's messages (Skip_Long_Lines On: the line is skipped; Off: the whole file is dropped).
local SKIPPED_LINE = "%[input:tail:([^%]]+)%] file=(.-) have long lines%. Skipping long lines%."
local SKIPPED_FILE = "%[input:tail:([^%]]+)%] file=(.-) requires a larger buffer size"

local function dead_letter(alias, file)
  return { dead_letter = "line_too_long", source = SOURCES[alias] or alias, file = file }
end

function cb_filter(tag, timestamp, record)
  local line = record.log
  if type(line) ~= "string" then return -1, timestamp, record end
  local alias, file = line:match(SKIPPED_LINE)
  if not alias then alias, file = line:match(SKIPPED_FILE) end
  if not alias then return -1, timestamp, record end
  return 2, timestamp, dead_letter(alias, file)
end
