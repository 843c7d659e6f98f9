package postgres

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidIdentifier(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"greptime_metakv", "_x", "a1", "A$b", "x" + strings.Repeat("y", 62)} {
		require.NoError(t, ValidIdentifier(ok), ok)
	}
	for _, bad := range []string{"", "1a", "$a", "a-b", "a b", `a"b`, "é", "a.b", "x" + strings.Repeat("y", 63)} {
		require.Error(t, ValidIdentifier(bad), bad)
	}
}

// A non-ASCII character is named as the character, not as its first byte.
func TestValidIdentifierNamesRunes(t *testing.T) {
	t.Parallel()
	err := ValidIdentifier("ümlaut")
	require.EqualError(t, err, `invalid identifier "ümlaut": character 'ü' at byte 0 (expected ASCII letters, digits, _ or $, not starting with a digit or $)`)
	err = ValidIdentifier("meta€")
	require.ErrorContains(t, err, `character '€' at byte 4`)
	require.NotContains(t, err.Error(), "â")
}
