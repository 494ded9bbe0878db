package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// KeyPrefix starts every API key, so that secret scanners recognise them.
const KeyPrefix = "tl_"

// keyBytes is the entropy of a key: 256 bits, 43 base64url characters.
const keyBytes = 32

var keyEncoding = base64.RawURLEncoding.Strict()

// keyLen is the length of a whole key.
var keyLen = len(KeyPrefix) + keyEncoding.EncodedLen(keyBytes)

// NewSecret returns a new API key: tl_ and 256 random bits in base64url.
func NewSecret() string {
	var b [keyBytes]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	return KeyPrefix + keyEncoding.EncodeToString(b[:])
}

// LooksLikeKey reports whether s has an API key's shape (it may still be
// unknown). The check runs in time independent of the secret's characters.
func LooksLikeKey(s string) bool {
	if len(s) != keyLen || !strings.HasPrefix(s, KeyPrefix) {
		return false
	}
	var b [keyBytes + 1]byte
	n, err := keyEncoding.Decode(b[:], []byte(s[len(KeyPrefix):]))
	return err == nil && n == keyBytes
}

// ValidateSecret checks a secret given from outside (BOOTSTRAP_ADMIN_KEY);
// the message never repeats it.
func ValidateSecret(s string) error {
	if !LooksLikeKey(s) {
		return fmt.Errorf("%w: an API key is %s followed by 43 base64url characters (256 bits); make one with `tokend keys generate-secret`", ErrInvalid, KeyPrefix)
	}
	return nil
}

// hashKey is what the database and the caches hold of a key.
func hashKey(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }
