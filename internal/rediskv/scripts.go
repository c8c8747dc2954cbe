package rediskv

import (
	"strconv"

	"github.com/redis/go-redis/v9"
	"github.com/tierstore/tierstore"
)

// readScript is Read as one command: the value (false if absent), its
// PTTL in milliseconds and, with a second key, that key's value.
//
// no-writes lets Redis run it during a write pause (CLIENT PAUSE WRITE,
// which FAILOVER and manual failovers make) and on a replica.
var readScript = redis.NewScript(`#!lua flags=no-writes
local e = false
if KEYS[2] then e = redis.call('GET', KEYS[2]) end
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), e}`)

// Each write script writes and then publishes, so that a failed write
// publishes nothing and no crash or disconnect can separate the two. A
// script that stores a value then reads its key (PTTL, which every ACL of
// the store allows): on a connection with per-key tracking that read makes
// Redis report the key's next change to the writer, which keeps the value
// it wrote (its write made Redis forget every reader of the key, the
// writer included). A script, not MULTI/EXEC, because a Cluster client
// routes it whole to the key's node, where PUBLISH still reaches every
// subscriber. An expiry argument is a PXAT in Unix milliseconds, '0' for
// none (see pxat).
var (
	// setScript: ARGV[1] the frame, ARGV[2] PXAT, ARGV[3] and ARGV[4] a
	// notice to publish.
	setScript = redis.NewScript(`
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
redis.call('PTTL', KEYS[1])
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1`)
	// delScript: ARGV[1] and ARGV[2] a notice. Returns how many keys it
	// deleted.
	delScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n`)
	// touchScript: ARGV[1] PXAT, ARGV[2] and ARGV[3] a notice. Returns 0
	// if the key is absent, 1 if the expiry moved later (peers' cached
	// copies then merely expire early, so nothing is published), 2 if it
	// moved earlier (published, since peers must not serve the value past
	// the new expiry).
	touchScript = redis.NewScript(`
local cur = redis.call('PEXPIRETIME', KEYS[1])
if cur == -2 then return 0 end
if ARGV[1] == '0' then
  redis.call('PERSIST', KEYS[1])
  return 1
end
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
if cur ~= -1 and tonumber(ARGV[1]) >= cur then return 1 end
if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return 2`)
)

// Versions a script gives lie in [minVersion, maxVersion): above every
// ContentVersion, and exact in Lua's numbers (doubles), which the scripts
// compute them in. A new version is the greater of the current one + 1
// and Redis's clock in microseconds (2^53 µs is the year 2255), so that a
// key deleted and written again does not get back a version it had
// (unless that clock stepped back). A write that would leave the range
// fails, as ErrRefused: only a forged frame, or a clock past 2255, gets
// there.
const (
	minVersion tierstore.Version = 1 << 33
	maxVersion tierstore.Version = 1 << 53
)

// versionLua is the first part of a conditional script: have is the
// version of the key's frame (0 if absent; -1 if it is no frame tierstore
// wrote, which no caller can want), and the script returns 0 (a conflict)
// unless have is the version wanted, ARGV[1].
const versionLua = `
local function be(s, i, j)
  local n = 0
  for k = i, j do n = n * 256 + string.byte(s, k) end
  return n
end
local cur = redis.call('GET', KEYS[1])
local have = 0
if cur then
  local f = string.byte(cur, 1)
  if f == 0xB2 and #cur >= 13 then have = be(cur, 2, 9)
  elseif f == 0xB1 and #cur >= 5 then have = 1 + be(cur, 2, 5)
  else have = -1 end
end
if have ~= tonumber(ARGV[1]) then return 0 end
`

var (
	// setIfScript: ARGV[1] the version wanted (0: absent), ARGV[2] the
	// versioned frame with version 0, ARGV[3] PXAT, ARGV[4] and ARGV[5]
	// a notice. Returns the new version, or 0.
	setIfScript = redis.NewScript(versionLua + `
local t = redis.call('TIME')
local v = math.max(tonumber(t[1]) * 1000000 + tonumber(t[2]), ` + strconv.FormatUint(uint64(minVersion), 10) + `)
if have >= ` + strconv.FormatUint(uint64(minVersion), 10) + ` and have + 1 > v then v = have + 1 end
if v >= ` + strconv.FormatUint(uint64(maxVersion), 10) + ` then return redis.error_reply('ERR tierstore: version overflow') end
local b = {}
local x = v
for i = 8, 1, -1 do b[i] = x % 256; x = math.floor(x / 256) end
local frame = string.char(0xB2, unpack(b)) .. string.sub(ARGV[2], 10)
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], frame)
else
  redis.call('SET', KEYS[1], frame, 'PXAT', ARGV[3])
end
redis.call('PTTL', KEYS[1])
if ARGV[4] ~= '' then redis.call('PUBLISH', ARGV[4], ARGV[5]) end
return v`)
	// delIfScript: ARGV[1] the version wanted, ARGV[2] and ARGV[3] a
	// notice. Returns 1 if it deleted the key or the key was absent as
	// wanted, 0 on a conflict.
	delIfScript = redis.NewScript(versionLua + `
if cur then
  redis.call('DEL', KEYS[1])
  if ARGV[2] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
end
return 1`)
)
