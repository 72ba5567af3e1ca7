package vigil

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// MinSecretLength is the shortest system secret accepted, in bytes.
const MinSecretLength = 32

// Keyring holds the system secrets, newest first, and the keys derived from
// each: one to encrypt personal data, one for blind indexes, one for code
// MACs and one for the audit chain. New data always uses the newest secret;
// older ones still open, find and verify what they made, so secrets rotate
// by prepending a new one.
type Keyring struct {
	keys []derived
}

type derived struct {
	id    [8]byte
	aead  cipher.AEAD
	index []byte
	code  []byte
	audit []byte
}

// NewKeyring derives keys from the given secrets, newest first.
func NewKeyring(secrets ...string) (*Keyring, error) {
	if len(secrets) == 0 {
		return nil, errors.New("keyring: no secret given")
	}
	k := &Keyring{}
	for i, s := range secrets {
		if len(s) < MinSecretLength {
			return nil, fmt.Errorf("keyring: secret %d is %d bytes long, need at least %d", i+1, len(s), MinSecretLength)
		}
		d, err := derive([]byte(s))
		if err != nil {
			return nil, err
		}
		k.keys = append(k.keys, d)
	}
	return k, nil
}

func derive(secret []byte) (derived, error) {
	var d derived
	key := func(info string) ([]byte, error) {
		return hkdf.Key(sha256.New, secret, nil, "vigil/v1/"+info, 32)
	}
	enc, err := key("encrypt")
	if err != nil {
		return d, err
	}
	block, err := aes.NewCipher(enc)
	if err != nil {
		return d, err
	}
	if d.aead, err = cipher.NewGCM(block); err != nil {
		return d, err
	}
	if d.index, err = key("index"); err != nil {
		return d, err
	}
	if d.code, err = key("code"); err != nil {
		return d, err
	}
	if d.audit, err = key("audit"); err != nil {
		return d, err
	}
	id, err := key("id")
	if err != nil {
		return d, err
	}
	copy(d.id[:], id)
	return d, nil
}

const sealVersion = 1

// Seal encrypts plaintext with the newest key (AES-256-GCM). The output
// names the key, so Open finds it after a rotation.
func (k *Keyring) Seal(plaintext []byte) []byte {
	d := k.keys[0]
	out := make([]byte, 1+len(d.id), 1+len(d.id)+d.aead.NonceSize()+len(plaintext)+d.aead.Overhead())
	out[0] = sealVersion
	copy(out[1:], d.id[:])
	nonce := make([]byte, d.aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		panic(fmt.Sprintf("keyring: crypto/rand failed: %v", err)) // the OS is broken; nothing safe to do
	}
	out = append(out, nonce...)
	return d.aead.Seal(out, nonce, plaintext, out[:1+len(d.id)])
}

// ErrUnsealable is returned by Open for data no key in the ring can open.
var ErrUnsealable = errors.New("keyring: cannot open sealed data (unknown key or tampered)")

// Open decrypts what Seal produced with any key of the ring.
func (k *Keyring) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < 9 || sealed[0] != sealVersion {
		return nil, ErrUnsealable
	}
	for _, d := range k.keys {
		if subtle.ConstantTimeCompare(sealed[1:9], d.id[:]) != 1 {
			continue
		}
		ns := d.aead.NonceSize()
		if len(sealed) < 9+ns {
			return nil, ErrUnsealable
		}
		pt, err := d.aead.Open(nil, sealed[9:9+ns], sealed[9+ns:], sealed[:9])
		if err != nil {
			return nil, ErrUnsealable
		}
		return pt, nil
	}
	return nil, ErrUnsealable
}

// Index is the blind index of a normalized value under the newest key.
func (k *Keyring) Index(value string) []byte { return mac(k.keys[0].index, value) }

// Indexes is the blind index of value under every key, newest first: a
// lookup matches rows written before a rotation too.
func (k *Keyring) Indexes(value string) [][]byte {
	out := make([][]byte, len(k.keys))
	for i, d := range k.keys {
		out[i] = mac(d.index, value)
	}
	return out
}

// CodeHash is the MAC of a code bound to the verification and generation it
// was issued for, under the newest key.
func (k *Keyring) CodeHash(verificationID string, generation int, code string) []byte {
	return mac(k.keys[0].code, codeInput(verificationID, generation, code))
}

// CheckCode compares code against hash in constant time under every key.
func (k *Keyring) CheckCode(verificationID string, generation int, code string, hash []byte) bool {
	in := codeInput(verificationID, generation, code)
	ok := 0
	for _, d := range k.keys {
		ok |= subtle.ConstantTimeCompare(mac(d.code, in), hash)
	}
	return ok == 1
}

func codeInput(verificationID string, generation int, code string) string {
	return fmt.Sprintf("%s\x00%d\x00%s", verificationID, generation, code)
}

// AuditMAC keys the audit chain with the newest key: a database dump alone
// cannot recompute the chain after editing a row.
func (k *Keyring) AuditMAC(data []byte) []byte {
	h := hmac.New(sha256.New, k.keys[0].audit)
	h.Write(data)
	return h.Sum(nil)
}

// CheckAuditMAC reports whether sum is the audit MAC of data under any key.
func (k *Keyring) CheckAuditMAC(data, sum []byte) bool {
	for _, d := range k.keys {
		h := hmac.New(sha256.New, d.audit)
		h.Write(data)
		if hmac.Equal(h.Sum(nil), sum) {
			return true
		}
	}
	return false
}

func mac(key []byte, value string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(value))
	return h.Sum(nil)
}

// TokenHash is how link and device tokens are stored: SHA-256. The tokens
// carry 256 random bits, so no key is needed.
func TokenHash(token string) []byte {
	sum := sha256.Sum256([]byte(token))
	return sum[:]
}
