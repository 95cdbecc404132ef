package agents

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams returns the parameters new hashes get: OWASP's Password
// Storage Cheat Sheet's argon2id configuration of 19 MiB, 2 passes, 1
// thread (about 0.1 s on one core).
func DefaultParams() Params { return Params{Memory: 19456, Time: 2, Threads: 1} }

// Bounds of the parameters a stored hash may have. Below the minimum is
// weaker than any of OWASP's argon2id configurations (the weakest is 7 MiB
// with 5 passes); above the maximum, a tampered agents file could make
// every login allocate gigabytes or spin for minutes.
const (
	minMemory     = 7168
	minMemoryTime = 7168 * 5 // memory × passes, OWASP's weakest
	maxMemory     = 1 << 20  // 1 GiB
	maxTime       = 16
	maxThreads    = 16
	saltLen       = 16
	keyLen        = 32
	minSaltLen    = 16
	minKeyLen     = 16
	maxSaltKeyLen = 64
)

// ErrBadHash is the error of a password hash that is not a well-formed
// argon2id hash in the PHC string format with acceptable parameters. The
// wrapping error says what is wrong, never the hash itself.
var ErrBadHash = errors.New("not a valid argon2id password hash")

var b64 = base64.RawStdEncoding

// hash is a parsed PHC string.
type hash struct {
	params    Params
	salt, key []byte
}

// HashPassword returns password's argon2id hash with a random salt and
// the given parameters, in the PHC string format
// "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>" (unpadded base64).
func HashPassword(password string, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC string
// encoded, comparing in constant time. It returns an error wrapping
// ErrBadHash when encoded is not a valid argon2id hash.
func VerifyPassword(encoded, password string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	return h.verify(password), nil
}

// CheckHash returns an error wrapping ErrBadHash when encoded is not a
// valid argon2id hash: the agents file is checked with it when loaded.
func CheckHash(encoded string) error {
	_, err := parseHash(encoded)
	return err
}

func (h *hash) verify(password string) bool {
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.Memory, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1
}

// check says whether p is within the accepted bounds.
func (p Params) check() error {
	switch {
	case p.Memory < minMemory || uint64(p.Memory)*uint64(p.Time) < minMemoryTime:
		return fmt.Errorf("%w: parameters m=%d,t=%d are weaker than OWASP's minimum", ErrBadHash, p.Memory, p.Time)
	case p.Memory > maxMemory:
		return fmt.Errorf("%w: memory m=%d KiB is over the limit of %d", ErrBadHash, p.Memory, maxMemory)
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("%w: passes t=%d are not within 1..%d", ErrBadHash, p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("%w: threads p=%d are not within 1..%d", ErrBadHash, p.Threads, maxThreads)
	case p.Memory < 8*uint32(p.Threads):
		return fmt.Errorf("%w: memory m=%d KiB is less than 8 KiB per thread", ErrBadHash, p.Memory)
	}
	return nil
}

// parseHash parses and checks a PHC string. Its errors name the part
// that is wrong, not its value.
func parseHash(encoded string) (*hash, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return nil, fmt.Errorf("%w: want $argon2id$v=19$m=…,t=…,p=…$salt$hash", ErrBadHash)
	}
	if parts[1] != "argon2id" {
		return nil, fmt.Errorf("%w: the algorithm is not argon2id", ErrBadHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return nil, fmt.Errorf("%w: the version is not v=%d", ErrBadHash, argon2.Version)
	}
	var h hash
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return nil, fmt.Errorf("%w: the parameters are not m=…,t=…,p=…", ErrBadHash)
	}
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		n, err := strconv.ParseUint(v, 10, 32)
		if !ok || err != nil || v != strconv.FormatUint(n, 10) {
			return nil, fmt.Errorf("%w: the parameters are not m=…,t=…,p=… in decimal", ErrBadHash)
		}
		switch name {
		case "m":
			h.params.Memory = uint32(n)
		case "t":
			h.params.Time = uint32(n)
		case "p":
			if n > maxThreads {
				return nil, fmt.Errorf("%w: threads p=%d are not within 1..%d", ErrBadHash, n, maxThreads)
			}
			h.params.Threads = uint8(n)
		}
	}
	if err := h.params.check(); err != nil {
		return nil, err
	}
	var err error
	if h.salt, err = b64.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < minSaltLen || len(h.salt) > maxSaltKeyLen {
		return nil, fmt.Errorf("%w: the salt is not %d to %d bytes of unpadded base64", ErrBadHash, minSaltLen, maxSaltKeyLen)
	}
	if h.key, err = b64.Strict().DecodeString(parts[5]); err != nil || len(h.key) < minKeyLen || len(h.key) > maxSaltKeyLen {
		return nil, fmt.Errorf("%w: the hash is not %d to %d bytes of unpadded base64", ErrBadHash, minKeyLen, maxSaltKeyLen)
	}
	return &h, nil
}
