// Package seal encrypts small secrets at rest (webhook secrets) with
// AES-256-GCM under the server's --secret-key.
//
// A sealed value is "v1:" + base64(nonce ‖ ciphertext ‖ tag). The version
// prefix lets a later key rotation tell old values from new ones.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// KeySize is the length of a key: AES-256.
const KeySize = 32

// ErrOpen is returned when a sealed value cannot be decrypted: it was sealed
// under another key, or it was altered.
var ErrOpen = errors.New("seal: cannot decrypt value (wrong --secret-key or corrupted data)")

// Key seals and opens values. The zero Key is not usable; make one with
// NewKey or ParseKey.
type Key struct {
	aead cipher.AEAD
}

// NewKey returns a Key for 32 raw bytes.
func NewKey(raw []byte) (*Key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("seal: key must be %d bytes, got %d", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Key{aead: aead}, nil
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) key
// of 32 bytes, as given to --secret-key.
func ParseKey(s string) (*Key, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(s); err == nil {
			return NewKey(raw)
		}
	}
	return nil, errors.New("seal: key must be base64")
}

// GenerateKey returns a fresh random key in the base64 form ParseKey reads.
func GenerateKey() string {
	var raw [KeySize]byte
	rand.Read(raw[:])
	return base64.StdEncoding.EncodeToString(raw[:])
}

const prefix = "v1:"

// Seal encrypts plaintext. The empty string seals to the empty string, so
// "no secret" stays visible as such in the store.
func (k *Key) Seal(plaintext string) string {
	if plaintext == "" {
		return ""
	}
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	rand.Read(nonce)
	out := k.aead.Seal(nonce, nonce, []byte(plaintext), nil)
	return prefix + base64.RawStdEncoding.EncodeToString(out)
}

// Open decrypts a value made by Seal, or returns ErrOpen.
func (k *Key) Open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	if !strings.HasPrefix(sealed, prefix) {
		return "", ErrOpen
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed[len(prefix):])
	if err != nil || len(raw) < k.aead.NonceSize()+k.aead.Overhead() {
		return "", ErrOpen
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], nil)
	if err != nil {
		return "", ErrOpen
	}
	return string(plain), nil
}
