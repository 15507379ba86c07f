package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// checker tells whether a password is the configured one.
type checker func(password string) bool

// newChecker builds the check for a plain password or a hash; a hash that
// cannot be read is an error at start, not a console nobody can enter.
func newChecker(plain, hash string) (checker, error) {
	switch {
	case hash != "":
		return parseHash(hash)
	case plain != "":
		want := sha256.Sum256([]byte(plain))
		return func(p string) bool {
			got := sha256.Sum256([]byte(p)) // same length whatever is typed: a constant-time compare
			return subtle.ConstantTimeCompare(got[:], want[:]) == 1
		}, nil
	}
	return nil, errors.New("no password configured")
}

// CheckHash reports whether hash is a bcrypt or argon2id hash this package reads.
func CheckHash(hash string) error {
	_, err := parseHash(hash)
	return err
}

func parseHash(hash string) (checker, error) {
	switch {
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("bcrypt hash: %w", err)
		}
		return func(p string) bool { return bcrypt.CompareHashAndPassword([]byte(hash), []byte(p)) == nil }, nil
	case strings.HasPrefix(hash, "$argon2id$"):
		return parseArgon2id(hash)
	}
	return nil, errors.New("not a bcrypt ($2b$...) or argon2id ($argon2id$...) hash")
}

// parseArgon2id reads the PHC string form that the argon2 reference tool
// and most libraries write: $argon2id$v=19$m=65536,t=3,p=4$<salt>$<key>,
// salt and key in unpadded standard base64.
func parseArgon2id(hash string) (checker, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 {
		return nil, errors.New("argon2id hash: want $argon2id$v=19$m=...,t=...,p=...$salt$key")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return nil, fmt.Errorf("argon2id hash: version %q, want v=%d", parts[2], argon2.Version)
	}
	var mem, time uint32
	var threads uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &time, &threads); err != nil || mem == 0 || time == 0 || threads == 0 {
		return nil, fmt.Errorf("argon2id hash: parameters %q, want m=...,t=...,p=...", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return nil, fmt.Errorf("argon2id hash: salt: %w", err)
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("argon2id hash: key: %v", err)
	}
	return func(p string) bool {
		got := argon2.IDKey([]byte(p), salt, time, mem, threads, uint32(len(key)))
		return subtle.ConstantTimeCompare(got, key) == 1
	}, nil
}
