// Package rediskv is the Redis side of tierstore: framed values under a
// key prefix in any go-redis UniversalClient, with native expiry, written
// by scripts that can publish an invalidation in the same atomic step, and
// go-redis errors mapped to tierstore's. l2 (the Redis-only store) and
// tiered both use it; the frame format and the scripts are mechanism, so
// they stay internal.
package rediskv

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tierstore/tierstore"
)

// DefaultKeyPrefix is the key prefix used when Config.KeyPrefix is empty.
const DefaultKeyPrefix = "tierstore:"

// Config configures a Client. Zero fields take the documented defaults.
type Config struct {
	Redis         redis.UniversalClient // required; never closed here
	KeyPrefix     string                // default DefaultKeyPrefix
	MaxValueBytes int                   // default tierstore.DefaultMaxValueBytes
	// Op names the caller in errors ("l2", "tiered").
	Op string
	// Runner runs the writes. Default: each on Redis's pool.
	Runner Runner
	// Reader, if set, runs the reads (see ReadAsync); default: each on
	// Redis's pool. Not the writes' Runner: a write held by a write
	// pause must not hold up the reads behind it.
	Reader Runner
}

// Call is one write: a script with its keys and arguments, or, when
// Script is nil, the command in Args.
type Call struct {
	Script *redis.Script
	Keys   []string
	Args   []any
}

// Key returns the key c writes, with the prefix: for routing in a Cluster.
func (c Call) Key() string {
	if c.Script == nil {
		key, _ := c.Args[1].(string)
		return key
	}
	return c.Keys[0]
}

// Run runs c on rdb (one round trip, or two for a script Redis has not
// cached yet).
func (c Call) Run(ctx context.Context, rdb redis.UniversalClient) *redis.Cmd {
	if c.Script == nil {
		return rdb.Do(ctx, c.Args...)
	}
	return c.Script.Run(ctx, rdb, c.Keys, c.Args...)
}

// Runner runs a Client's writes.
//
// Run sends call and returns its reply, or a Cmd failed with ctx's error
// if ctx ends first. Either way it calls done with the reply exactly once,
// when Redis has answered or the attempt has failed for good, even if ctx
// ended before (done may then run on another goroutine): done is where a
// caller learns the outcome that a cancelled caller no longer waits for.
type Runner interface {
	Run(ctx context.Context, call Call, done func(*redis.Cmd)) *redis.Cmd
}

// poolRunner runs each call on its own pooled connection.
type poolRunner struct{ rdb redis.UniversalClient }

func (p poolRunner) Run(ctx context.Context, call Call, done func(*redis.Cmd)) *redis.Cmd {
	cmd := call.Run(ctx, p.rdb)
	done(cmd)
	return cmd
}

// Client reads and writes tierstore values in Redis.
type Client struct {
	rdb      redis.UniversalClient
	runner   Runner
	reader   Runner // nil: reads on the pool
	prefix   string
	maxValue int
	op       string
}

// serverCheckTimeout bounds the version check in New: Redis need not be
// up when a store is created, and New must not stall a service's start.
const serverCheckTimeout = time.Second

// New returns a Client. If Redis answers within a second, it checks that
// the server is recent enough (CheckServer).
func New(cfg Config) (*Client, error) {
	if cfg.Op == "" {
		cfg.Op = "rediskv"
	}
	if cfg.Redis == nil {
		return nil, errors.New(cfg.Op + ": Config.Redis is nil")
	}
	if cfg.MaxValueBytes < 0 {
		return nil, errors.New(cfg.Op + ": negative MaxValueBytes")
	}
	if cfg.KeyPrefix == "" {
		cfg.KeyPrefix = DefaultKeyPrefix
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = tierstore.DefaultMaxValueBytes
	}
	ctx, cancel := context.WithTimeout(context.Background(), serverCheckTimeout)
	defer cancel()
	if err := CheckServer(ctx, cfg.Redis); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Op, err)
	}
	if cfg.Runner == nil {
		cfg.Runner = poolRunner{cfg.Redis}
	}
	return &Client{rdb: cfg.Redis, runner: cfg.Runner, reader: cfg.Reader, prefix: cfg.KeyPrefix, maxValue: cfg.MaxValueBytes, op: cfg.Op}, nil
}

// KeyPrefix returns the prefix of the keys in Redis.
func (s *Client) KeyPrefix() string { return s.prefix }

// EpochKey returns the name of the key that identifies the dataset under
// prefix (see package tracking): not a valid tierstore key, so that no
// Store can read or write it, and Keys skips it.
func EpochKey(prefix string) string { return prefix + "\x00epoch" }

// MaxValueBytes returns the largest value accepted.
func (s *Client) MaxValueBytes() int { return s.maxValue }

// GetWithExpiry returns the value under key and when it expires (zero: no
// expiry) in one round trip. The expiry is measured from before the request
// was sent, less PTTL's rounding, so it is never later than the real one.
func (s *Client) GetWithExpiry(ctx context.Context, key string) ([]byte, time.Time, error) {
	r, err := s.Read(ctx, key, "")
	return r.Value, r.Expiry, err
}

// Item is a value read from Redis with what came with it.
type Item struct {
	Value   []byte
	Version tierstore.Version
	Expiry  time.Time // zero: none
	Epoch   string    // the epoch key's value ("" if absent or not read)
}

// Read returns the value under key with its version and expiry in one
// round trip and, if epochKey is not "", the value of the key epochKey in
// the same round trip: which dataset the value came from (see package
// tracking). With a Config.Reader, the read travels on the Reader's
// connection, as one script call (see ReadAsync).
func (s *Client) Read(ctx context.Context, key, epochKey string) (Item, error) {
	return s.ReadAsync(ctx, key, epochKey, nil)
}

// readPipelined is Read on a pooled connection: GET and PTTL (and GET of
// epochKey) pipelined.
func (s *Client) readPipelined(ctx context.Context, key, epochKey string) (Item, error) {
	start := time.Now()
	var get, epoch *redis.StringCmd
	var ttl *redis.Cmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		get = p.Get(ctx, s.prefix+key)
		ttl = p.Do(ctx, "pttl", s.prefix+key)
		if epochKey != "" {
			epoch = p.Get(ctx, epochKey)
		}
		return nil
	})
	if err := get.Err(); err != nil {
		return Item{}, s.WrapError(ctx, "get", key, err)
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return Item{}, s.WrapError(ctx, "get", key, err)
	}
	framed, _ := get.Bytes()
	pttl, _ := ttl.Int64()
	var e string
	if epoch != nil {
		e = epoch.Val()
	}
	return s.item(key, framed, pttl, e, start)
}

// item builds what Read returns from the framed value, its PTTL as Redis
// replies it (milliseconds; -1: no expiry, -2: gone) and the epoch, read
// at start.
func (s *Client) item(key string, framed []byte, pttl int64, epoch string, start time.Time) (Item, error) {
	value, version, ok := unframe(framed)
	if !ok {
		return Item{}, fmt.Errorf("%s: get %s: %w", s.op, s.name(key), tierstore.ErrCorrupt)
	}
	var expiry time.Time
	switch {
	case pttl == -1: // no expiry
	case pttl < 0: // expired between GET and PTTL: valid now, cache nothing
		expiry = start
	default:
		// PTTL is whole milliseconds from the server's millisecond clock,
		// so it can exceed the true remainder by up to 1ms.
		expiry = start.Add(time.Duration(pttl-1) * time.Millisecond)
	}
	return Item{Value: value, Version: version, Expiry: expiry, Epoch: epoch}, nil
}

// readScript is Read as one command: the value (false if absent), its
// PTTL in milliseconds and, with a second key, that key's value.
//
// no-writes lets Redis run it during a write pause (CLIENT PAUSE WRITE,
// which FAILOVER and manual failovers make) and on a replica.
var readScript = redis.NewScript(`#!lua flags=no-writes
local e = false
if KEYS[2] then e = redis.call('GET', KEYS[2]) end
return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1]), e}`)

// ReadAsync is Read on the Config.Reader's connection, where it joins the
// other reads' batches: no pooled connection, no round trip of its own. It
// returns when Redis has answered or ctx has ended; done, if not nil, is
// called exactly once with the outcome, when Redis has answered, also if
// ctx ended first (see Runner), possibly on the Runner's goroutine: it
// must not block. A read refused before it was sent (ctx already done,
// an invalid key) is an outcome too. Without a Reader it reads on a
// pooled connection, and done runs before it returns.
func (s *Client) ReadAsync(ctx context.Context, key, epochKey string, done func(Item, error)) (Item, error) {
	if err := s.checkKey(ctx, key); err != nil || s.reader == nil {
		var r Item
		if err == nil {
			r, err = s.readPipelined(ctx, key, epochKey)
		}
		if done != nil {
			done(r, err)
		}
		return r, err
	}
	start := time.Now()
	keys := []string{s.prefix + key}
	if epochKey != "" {
		keys = append(keys, epochKey)
	}
	parse := func(ctx context.Context, cmd *redis.Cmd) (Item, error) {
		reply, err := cmd.Slice()
		if err != nil {
			return Item{}, s.WrapError(ctx, "get", key, err)
		}
		if len(reply) != 3 {
			return Item{}, fmt.Errorf("%s: get %s: %d fields in the read script's reply: %w", s.op, s.name(key), len(reply), tierstore.ErrRefused)
		}
		if reply[0] == nil {
			return Item{}, tierstore.ErrNotFound
		}
		framed, _ := reply[0].(string)
		pttl, _ := reply[1].(int64)
		epoch, _ := reply[2].(string)
		return s.item(key, []byte(framed), pttl, epoch, start)
	}
	cmd := s.reader.Run(ctx, Call{Script: readScript, Keys: keys}, func(cmd *redis.Cmd) {
		if done != nil {
			// The caller may have left: the outcome is Redis's, not ctx's.
			done(parse(context.Background(), cmd))
		}
	})
	return parse(ctx, cmd)
}

// Keys calls fn for each key under the prefix, without the prefix, using
// SCAN (on every master, for a Cluster client). fn is never called
// concurrently.
func (s *Client) Keys(ctx context.Context, fn func(key string) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var mu sync.Mutex
	stopped := false
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, globEscape(s.prefix)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			key := strings.TrimPrefix(iter.Val(), s.prefix)
			if tierstore.CheckKey(key) != nil {
				continue // not a value (EpochKey), or not one a Store could have written
			}
			mu.Lock()
			if !stopped && !fn(key) {
				stopped = true
			}
			done := stopped
			mu.Unlock()
			if done {
				return nil
			}
		}
		return iter.Err()
	}
	var err error
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, s.rdb)
	}
	if err != nil {
		return s.WrapError(ctx, "keys", "", err)
	}
	return nil
}

// globEscape escapes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Notice is a pub/sub message to publish in the same atomic Redis step as
// a write. The zero Notice publishes nothing.
type Notice struct {
	Channel string
	Payload []byte
}

// Each script writes and then publishes, so that a failed write publishes
// nothing and no crash or disconnect can separate the two. A script, not
// MULTI/EXEC, because a Cluster client routes it whole to the key's node,
// where PUBLISH still reaches every subscriber.
var (
	setScript = redis.NewScript(`
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], ARGV[1])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
return 1`)
	delScript = redis.NewScript(`
local n = redis.call('DEL', KEYS[1])
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return n`)
	// Returns 0 if the key is absent, 1 if the expiry moved later (peers'
	// cached copies then merely expire early, so nothing is published),
	// 2 if it moved earlier (published, since peers must not serve the
	// value past the new expiry).
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
	// versioned frame with version 0, ARGV[3] PXAT ('0': none), ARGV[4]
	// and ARGV[5] a notice to publish. Returns the new version, or 0.
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

var framePool = sync.Pool{New: func() any { return new([]byte) }}

// SetAndPublish stores value under key until expiry (zero: none) and
// publishes n in the same atomic step. An expiry that is not in the
// future deletes the key instead. done, if not nil, gets the outcome once
// Redis has answered (see Runner), also when SetAndPublish returned
// early because ctx ended. It is not called when the arguments were
// refused before any Runner saw them (invalid key, too large, ctx already
// done on entry); a Runner may still call it with ctx's error for a write
// it never sent.
func (s *Client) SetAndPublish(ctx context.Context, key string, value []byte, expiry time.Time, n Notice, done func(error)) error {
	if err := s.checkKey(ctx, key); err != nil {
		return err
	}
	if len(value) > s.maxValue {
		return fmt.Errorf("%s: set %s: %d bytes, limit %d: %w", s.op, s.name(key), len(value), s.maxValue, tierstore.ErrTooLarge)
	}
	pxat := "0"
	if !expiry.IsZero() {
		ms := expiry.UnixMilli()
		if ms <= time.Now().UnixMilli() {
			_, err := s.DeleteAndPublish(ctx, key, n, done)
			return err
		}
		pxat = strconv.FormatInt(ms, 10)
	}
	buf := framePool.Get().(*[]byte)
	*buf = appendFrame((*buf)[:0], value)
	call := Call{setScript, []string{s.prefix + key}, []any{*buf, pxat, n.Channel, n.Payload}}
	if n.Channel == "" {
		// Nothing to publish: a plain SET, which, unlike a script's,
		// Redis attributes to the connection that sent it (see package
		// tracking on NOLOOP).
		call = Call{Args: []any{"set", s.prefix + key, *buf}}
		if pxat != "0" {
			call.Args = append(call.Args, "pxat", pxat)
		}
	}
	err := s.runner.Run(ctx, call, func(cmd *redis.Cmd) {
		if cap(*buf) <= 64<<10 { // do not pin huge buffers
			framePool.Put(buf)
		}
		if done != nil {
			done(cmd.Err())
		}
	}).Err()
	if err != nil {
		return s.WrapError(ctx, "set", key, err)
	}
	return nil
}

// DeleteAndPublish removes key and publishes n in the same atomic step. It
// reports whether the key existed. done is as for SetAndPublish.
func (s *Client) DeleteAndPublish(ctx context.Context, key string, n Notice, done func(error)) (existed bool, err error) {
	if err := s.checkKey(ctx, key); err != nil {
		return false, err
	}
	call := Call{delScript, []string{s.prefix + key}, []any{n.Channel, n.Payload}}
	if n.Channel == "" {
		call = Call{Args: []any{"del", s.prefix + key}}
	}
	deleted, err := s.runner.Run(ctx, call, outcome(done)).Int()
	if err != nil {
		return false, s.WrapError(ctx, "delete", key, err)
	}
	return deleted > 0, nil
}

// SetIf stores value under key until expiry (zero: none) only if the
// key's version is want (tierstore.NoVersion: absent), and publishes n in
// the same atomic step; it returns the new version, or an error wrapping
// tierstore.ErrConflict and writes nothing. An expiry that is not in the
// future deletes the key instead, under the same condition (DeleteIf).
// done is as for SetAndPublish, with the new version (0 after a delete).
func (s *Client) SetIf(ctx context.Context, key string, value []byte, expiry time.Time, want tierstore.Version, n Notice, done func(tierstore.Version, error)) (tierstore.Version, error) {
	if err := s.checkKey(ctx, key); err != nil {
		return 0, err
	}
	if len(value) > s.maxValue {
		return 0, fmt.Errorf("%s: set %s: %d bytes, limit %d: %w", s.op, s.name(key), len(value), s.maxValue, tierstore.ErrTooLarge)
	}
	pxat := "0"
	if !expiry.IsZero() {
		ms := expiry.UnixMilli()
		if ms <= time.Now().UnixMilli() {
			var del func(error)
			if done != nil {
				del = func(err error) { done(0, err) }
			}
			return 0, s.DeleteIf(ctx, key, want, n, del)
		}
		pxat = strconv.FormatInt(ms, 10)
	}
	frame := appendFrameV2(make([]byte, 0, frameHeaderV2+len(value)), value, 0)
	call := Call{setIfScript, []string{s.prefix + key}, []any{uint64(want), frame, pxat, n.Channel, n.Payload}}
	v, err := conditional(s.runner.Run(ctx, call, func(cmd *redis.Cmd) {
		if done != nil {
			done(conditional(cmd))
		}
	}))
	if err != nil {
		return 0, s.conditionalError(ctx, "set", key, err)
	}
	return v, nil
}

// DeleteIf removes key only if its version is want, and publishes n in
// the same atomic step; otherwise it returns an error wrapping
// tierstore.ErrConflict. want tierstore.NoVersion succeeds if the key is
// absent, deleting nothing. done is as for SetAndPublish.
func (s *Client) DeleteIf(ctx context.Context, key string, want tierstore.Version, n Notice, done func(error)) error {
	if err := s.checkKey(ctx, key); err != nil {
		return err
	}
	call := Call{delIfScript, []string{s.prefix + key}, []any{uint64(want), n.Channel, n.Payload}}
	_, err := conditional(s.runner.Run(ctx, call, func(cmd *redis.Cmd) {
		if done != nil {
			_, err := conditional(cmd)
			done(err)
		}
	}))
	if err != nil {
		return s.conditionalError(ctx, "delete", key, err)
	}
	return nil
}

// conditional reads a conditional script's reply: the new version (1
// from delIfScript), or a conflict (0) as tierstore.ErrConflict.
func conditional(cmd *redis.Cmd) (tierstore.Version, error) {
	v, err := cmd.Int64()
	switch {
	case err != nil:
		return 0, err
	case v == 0:
		return 0, tierstore.ErrConflict
	}
	return tierstore.Version(v), nil
}

// conditionalError names the key of a conditional write's error: a
// conflict as it is, any other through WrapError.
func (s *Client) conditionalError(ctx context.Context, op, key string, err error) error {
	if errors.Is(err, tierstore.ErrConflict) {
		return fmt.Errorf("%s: %s %s: %w", s.op, op, s.name(key), err)
	}
	return s.WrapError(ctx, op, key, err)
}

// TouchAndPublish sets the expiry of key (zero: none) without rewriting its
// value, and publishes n in the same atomic step if the expiry moved
// earlier; it reports whether it did. An expiry that is not in the future
// deletes the key (and publishes). It returns tierstore.ErrNotFound if the
// key is absent, whatever the expiry. done is as for SetAndPublish.
func (s *Client) TouchAndPublish(ctx context.Context, key string, expiry time.Time, n Notice, done func(error)) (published bool, err error) {
	if err := s.checkKey(ctx, key); err != nil {
		return false, err
	}
	pxat := "0"
	if !expiry.IsZero() {
		ms := expiry.UnixMilli()
		if ms <= time.Now().UnixMilli() {
			existed, err := s.DeleteAndPublish(ctx, key, n, done)
			if err == nil && !existed {
				return true, tierstore.ErrNotFound
			}
			return true, err
		}
		pxat = strconv.FormatInt(ms, 10)
	}
	call := Call{touchScript, []string{s.prefix + key}, []any{pxat, n.Channel, n.Payload}}
	res, err := s.runner.Run(ctx, call, outcome(done)).Int()
	if err != nil {
		return false, s.WrapError(ctx, "touch", key, err)
	}
	if res == 0 {
		return false, tierstore.ErrNotFound
	}
	return res == 2, nil
}

// outcome adapts done (which may be nil) to a Runner's callback.
func outcome(done func(error)) func(*redis.Cmd) {
	return func(cmd *redis.Cmd) {
		if done != nil {
			done(cmd.Err())
		}
	}
}

func (s *Client) checkKey(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return tierstore.CheckKey(key)
}

// name identifies a key in errors and logs without revealing it: the prefix
// and a short hash of the key, enough to correlate reports.
func (s *Client) name(key string) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return fmt.Sprintf("%skey#%08x", s.prefix, h.Sum32())
}

// WrapError is Wrap for op on key, named as this client names it.
func (s *Client) WrapError(ctx context.Context, op, key string, err error) error {
	return Wrap(ctx, s.op+": "+op+" "+s.name(key), err)
}

// deadlineError is the error of a call whose context deadline passed
// while it waited for Redis: tierstore.ErrUnavailable and
// context.DeadlineExceeded, with cause (which may be nil) in the text.
func deadlineError(what string, cause error) error {
	if cause == nil || errors.Is(cause, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", what, tierstore.ErrUnavailable, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %w: %w (%v)", what, tierstore.ErrUnavailable, context.DeadlineExceeded, cause)
}

// Wrap turns a go-redis error into tierstore's: what is prefixes the
// message ("l2: get tierstore:key#1a2b3c4d").
//
//   - redis.Nil is tierstore.ErrNotFound, unwrapped;
//   - a cancelled context is context.Canceled: the caller went away;
//   - an expired context deadline is tierstore.ErrUnavailable and
//     context.DeadlineExceeded: Redis did not answer in time;
//   - an error reply is ErrCorrupt (WRONGTYPE), ErrUnavailable (a server
//     that cannot serve for now) or ErrRefused (anything else: a
//     misconfiguration a retry will not fix; credentials refused say
//     "auth");
//   - anything else (the network, the pool) is ErrUnavailable.
func Wrap(ctx context.Context, what string, err error) error {
	if errors.Is(err, redis.Nil) {
		return tierstore.ErrNotFound
	}
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("%s: %w", what, context.Canceled)
	}
	// With ContextTimeoutEnabled the socket's deadline is the context's,
	// so the read can time out an instant before ctx.Err() reports it:
	// a passed deadline is the cause whichever fired first.
	if deadline, ok := ctx.Deadline(); ok && !time.Now().Before(deadline) {
		return deadlineError(what, err)
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		code, _, _ := strings.Cut(reply.Error(), " ")
		switch code {
		case "WRONGTYPE":
			return fmt.Errorf("%s: %w: %w", what, tierstore.ErrCorrupt, err)
		case "LOADING", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN", "READONLY", "BUSY", "MOVED", "ASK", "NOREPLICAS":
			return fmt.Errorf("%s: %w: %w", what, tierstore.ErrUnavailable, err)
		case "NOAUTH", "WRONGPASS":
			return fmt.Errorf("%s: auth: %w: %w", what, tierstore.ErrRefused, err)
		default:
			return fmt.Errorf("%s: %w: %w", what, tierstore.ErrRefused, err)
		}
	}
	return fmt.Errorf("%s: %w: %w", what, tierstore.ErrUnavailable, err)
}
