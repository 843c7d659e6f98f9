package config

import (
	"net/url"
	"regexp"
	"strings"
)

// passwordKV matches a password in a key=value DSN, quoted ('...' with \'
// escapes) or bare.
var passwordKV = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// SanitizeStoreAddr masks the password of a store address, in URL form
// (postgres://user:secret@host/db, ?password=secret) or key=value form
// (host=h password=secret), so it can be printed or logged. An address that
// cannot be parsed is masked whole rather than risk showing a secret.
func SanitizeStoreAddr(addr string) string {
	const mask = "*****"
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil {
			return mask
		}
		if u.User != nil {
			if _, ok := u.User.Password(); ok {
				u.User = url.UserPassword(u.User.Username(), mask)
			}
		}
		q := u.Query()
		for k := range q {
			if strings.EqualFold(k, "password") {
				q.Set(k, mask)
			}
		}
		u.RawQuery = q.Encode()
		// url escapes '*'; show the mask as written.
		return strings.ReplaceAll(u.String(), url.QueryEscape(mask), mask)
	}
	return passwordKV.ReplaceAllString(addr, "${1}"+mask)
}

// SanitizeStoreAddrs applies SanitizeStoreAddr to each address.
func SanitizeStoreAddrs(addrs []string) []string {
	out := make([]string, len(addrs))
	for i, a := range addrs {
		out[i] = SanitizeStoreAddr(a)
	}
	return out
}
